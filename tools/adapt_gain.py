"""Measure image-specific adaptation (ADAPT_STEPS) per domain: PSNR gain over bicubic and CPU time.

Each held-out image is degraded by the scale (the evaluation's degradation),
then super-resolved from that LR image alone: the network as shipped, and
the network adapted to the LR image for each step count, each with every
ISE count. The adaptation runs once per image and step count and serves
all ISE counts. One CPU thread, float32, so the seconds are CPU seconds.

    .venv/bin/python tools/adapt_gain.py --steps 0,150 --ise 0,5
    .venv/bin/python tools/adapt_gain.py --domains aerial --steps 150 --lr 5e-5 --no-guard

Domains: ``aerial`` (the OSBS file and the validation rows of three NEON
images, x4 aerial weights), ``landsat`` (Landsat 8 validation rows, the
weights ``auto`` picks), ``cross`` (the same rows as B4/B3/B2 natural colour
through the aerial weights), ``sentinel2`` (Sentinel-2 validation rows, the sentinel2
weights a run on the 10 m raster uses). Needs ``make data``.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))


def images(domain: str):
    """(name, HR array, HR pixel size m, weights, rgb) of a domain's held-out images.

    Whole validation bands (up to 2048 columns), not the evaluation's
    256 x 512 crops: the adaptation learns from the extent it is given.
    """
    from evaluate_shipped import PACKED, read_raster
    packed = np.load(PACKED)

    def val(prefix):
        return [(k.split("/")[1] + " validation rows", packed[k][:, :, :2048])
                for k in sorted(packed.files) if k.startswith(prefix) and k.endswith("/val")]
    if domain == "aerial":
        osbs = ("OSBS_029 (held-out file)", read_raster(ROOT / "resources/sample/NEON_OSBS_029.tif"))
        return [(n, a, 0.1, "aerial", True) for n, a in [osbs] + val("aerial/")]
    if domain == "landsat":
        return [(n, a, 30.0, "auto", False) for n, a in val("landsat/")]
    if domain == "cross":
        return [(n + " as B4, B3, B2", a[[2, 1, 0]], 30.0, "aerial", True) for n, a in val("landsat/")]
    if domain == "sentinel2":
        return [(n, a, 10.0, "sentinel2", False) for n, a in val("sentinel2/")]
    raise SystemExit(f"unknown domain {domain}")


def measure(hr, scale, px, weights, rgb, steps_list, ise_list, trajectory=None, **adapt_kw):
    """{(steps, ise): psnr} plus {'bicubic': psnr} and {steps: (cpu s, report)} for one image.

    ``trajectory``, a list, receives (step, held-out loss, PSNR at ISE 0) at every check.
    """
    import torch
    from backend.adapt import adapt_engine
    from backend.arrays import ArrayReader, ArrayWriter
    from backend.engine import build_engine, engine_config
    from backend.evaluate import crop_to_multiple
    from backend.metrics import data_range, psnr
    from backend.normalise import SAMPLE_PIXELS, compute_stats, valid_mask
    from backend.resample import degrade
    from backend.tiling import Window, plan_tiles, run_tiles
    torch.set_num_threads(1)
    hr = crop_to_multiple(hr, scale)
    lr = degrade(torch.from_numpy(hr.astype(np.float64))[None], scale, hr.dtype)[0].numpy().astype(hr.dtype)
    c, h, w = lr.shape
    reader = ArrayReader(lr)
    region = Window(0, 0, w, h)
    sample = reader.read_sample(region, SAMPLE_PIXELS)
    stats = compute_stats(sample, valid_mask(sample, reader.nodata), lr.dtype.kind in "iu")
    ranges = [data_range(hr[b], hr.dtype) for b in range(c)]

    def score(engine, n):
        engine.ise_iterations = n
        writer = ArrayWriter((c, h * scale, w * scale), lr.dtype)
        run_tiles(reader, writer, plan_tiles(region, w, h, max(w, h), engine.safe_margin), engine)
        return float(np.mean([psnr(writer.array[b], hr[b], ranges[b], scale) for b in range(c)]))

    out, costs = {}, {}
    base = engine_config("bicubic", scale, stats, c, rgb, lr.dtype, reader.nodata, device="cpu")
    out["bicubic"] = score(build_engine(base), 0)
    config = engine_config("dganet", scale, stats, c, rgb, lr.dtype, reader.nodata, device="cpu",
                           weights=weights, pixel_size_m=px * scale, precision="fp32", threads=1)
    for steps in steps_list:
        engine = build_engine(config)
        if steps:
            def check(step, loss, net):
                if trajectory is not None:
                    kept, engine.net = engine.net, net
                    trajectory.append((step, loss, score(engine, 0) - out["bicubic"]))
                    engine.net = kept
            t0 = time.process_time()
            report = adapt_engine(engine, reader, region, steps, on_check=check, **adapt_kw)
            costs[steps] = (time.process_time() - t0, report)
        for n in ise_list:
            out[(steps, n)] = score(engine, n)
    out["weights"] = engine.weight_set
    return out, costs


def main() -> None:
    """Print one table row per image and step count, and the domain means."""
    from backend.errors import SuperResError
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--domains", default="aerial,landsat,cross,sentinel2")
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--steps", default="0,150")
    p.add_argument("--ise", default="0,5")
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--side", type=int, default=None, help="LR side of the pairs' input")
    p.add_argument("--no-guard", action="store_true", help="train every step and keep the last network")
    p.add_argument("--trajectory", action="store_true",
                   help="also print the held-out loss and the true PSNR gain at every check")
    args = p.parse_args()
    steps_list = [int(v) for v in args.steps.split(",")]
    ise_list = [int(v) for v in args.ise.split(",")]
    kw = {k: v for k, v in (("lr", args.lr), ("batch", args.batch), ("lr_side", args.side)) if v is not None}
    kw["guard"] = not args.no_guard
    print(f"x{args.scale}, adaptation settings {kw or 'default'}; gain over bicubic in dB, "
          "\"net\" is the network as shipped (steps 0)")
    head = " | ".join(f"steps {s} ISE {n}" for s in steps_list for n in ise_list)
    print(f"| image | weights | bicubic dB | {head} | CPU s | what the guard did |")
    print("|---|---|---|" + "---|" * (len(steps_list) * len(ise_list)) + "---|---|")
    for domain in args.domains.split(","):
        gains = []
        for name, hr, px, weights, rgb in images(domain):
            trajectory = [] if args.trajectory else None
            try:
                res, costs = measure(hr, args.scale, px, weights, rgb, steps_list, ise_list, trajectory, **kw)
            except SuperResError as exc:
                print(f"| {domain}: {name} | skipped: {exc} |", flush=True)
                continue
            g = [res[(s, n)] - res["bicubic"] for s in steps_list for n in ise_list]
            gains.append(g)
            cpu = ", ".join(f"{c:.1f}" for c, _ in costs.values())
            what = "; ".join(f"{r.steps_run} run, kept step {r.kept_step}" for _, r in costs.values())
            print(f"| {domain}: {name} | {res['weights']} | {res['bicubic']:.2f} | "
                  + " | ".join(f"{v:+.3f}" for v in g) + f" | {cpu} | {what} |", flush=True)
            if trajectory:
                print("    step, held-out loss, gain (dB): " + "; ".join(
                    f"{s_} {loss:.5f} {gain:+.3f}" for s_, loss, gain in trajectory), flush=True)
        if not gains:
            continue
        mean = np.mean(gains, axis=0)
        print(f"| **{domain}, mean** | | | " + " | ".join(f"**{v:+.3f}**" for v in mean) + " | | |", flush=True)


if __name__ == "__main__":
    main()
