"""`make bench`: end-to-end throughput against the bare network and GDAL, in one run.

Units: output pixel positions per second (Mpx/s), file to file: input opened
to output closed. Ratios are what matter: every figure in one table comes
from the same run on the same machine. Speed goals live here, not in tests.

    make bench            # the default run (about 5 minutes on 2 cores)
    make bench FULL=1     # adds every model and scale on a 512 x 512 crop, and Dask's
                          # speed-up with 2 local worker processes

Writes build/bench/bench.md and bench.json beside the printed table.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from osgeo import gdal, osr  # noqa: E402

gdal.UseExceptions()   # chosen, as GDAL 3.13 asks (else a FutureWarning) and GDAL 4 does anyway

from backend.allocator import retained_heap  # noqa: E402
from backend.engine import available_cores, bf16_supported  # noqa: E402
from backend.job import SuperResolveJob, run_job  # noqa: E402
from backend.torch_support import torch  # noqa: E402

OUT = ROOT / "build" / "bench"
AERIAL_SRC = ROOT / "data" / "aerial" / "NEON_YELL_528000_4978000.png"
LANDSAT_SRC = [ROOT / "data" / "landsat" / f"LC08_224077_20200518_{b}.tif" for b in ("B4", "B3", "B2")]
SAMPLE = ROOT / "resources" / "sample" / "NEON_OSBS_029.tif"
LANDSAT_CROP = ROOT / "tests" / "data" / "landsat_b2b3b4_128.tif"


def cpu_name() -> str:
    """The CPU model as /proc/cpuinfo names it."""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def mosaic(array: np.ndarray, size: int) -> np.ndarray:
    """A (C, size, size) mosaic of ``array`` mirrored end to end (real pixels, no seams)."""
    c, h, w = array.shape
    ry, rx = -(-size // h), -(-size // w)
    rows = [array[:, ::-1] if i % 2 else array for i in range(ry)]
    tall = np.concatenate(rows, axis=1)
    cols = [tall[:, :, ::-1] if j % 2 else tall for j in range(rx)]
    return np.ascontiguousarray(np.concatenate(cols, axis=2)[:, :size, :size])


def write_tif(path: Path, array: np.ndarray, gt, epsg: int, rgb: bool) -> Path:
    """A tiled GeoTIFF of (C, H, W) ``array`` (Byte or UInt16)."""
    gtype = gdal.GDT_Byte if array.dtype == np.uint8 else gdal.GDT_UInt16
    ds = gdal.GetDriverByName("GTiff").Create(str(path), array.shape[2], array.shape[1], array.shape[0],
                                              gtype, ["TILED=YES", "COMPRESS=DEFLATE"])
    ds.SetGeoTransform(gt)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    ds.SetProjection(srs.ExportToWkt())
    for i in range(array.shape[0]):
        band = ds.GetRasterBand(i + 1)
        band.WriteArray(array[i])
        if rgb:
            band.SetColorInterpretation((gdal.GCI_RedBand, gdal.GCI_GreenBand, gdal.GCI_BlueBand)[i])
    ds = None
    return path


def aerial_input(size: int) -> Path:
    """A size x size RGB Byte mosaic of the training imagery (the sample if data/ is absent)."""
    path = OUT / f"aerial_{size}.tif"
    if not path.exists():
        src = AERIAL_SRC if AERIAL_SRC.exists() else SAMPLE
        arr = gdal.Open(str(src)).ReadAsArray()[:3]
        write_tif(path, mosaic(arr, size), (528000.0, 0.1, 0, 4978000.0, 0, -0.1), 32612, True)
    return path


def landsat_input(size: int) -> Path:
    """A size x size 3-band UInt16 Landsat mosaic (B4, B3, B2; a test crop if data/ is absent)."""
    path = OUT / f"landsat_{size}.tif"
    if not path.exists():
        if all(p.exists() for p in LANDSAT_SRC):
            # inside the scene's collar: rows and columns with data in every band
            arr = np.stack([gdal.Open(str(p)).ReadAsArray()[300:1300, 400:1600] for p in LANDSAT_SRC])
        else:
            arr = gdal.Open(str(LANDSAT_CROP)).ReadAsArray()
        write_tif(path, mosaic(arr, size), (300000.0, 30.0, 0, 7000000.0, 0, -30.0), 32621, False)
    return path


def bare_network(scale: int = 4, size: int = 256, reps: int = 3) -> dict:
    """dganet's own throughput on a size^2 RGB tile: fp32, fp32 channels-last, bf16 channels-last.

    With the heap kept as in a run (``retained_heap``), so the ratio compares like with like.
    """
    from backend.registry import get_model
    net = get_model("dganet").build(3, scale).eval()
    x = torch.rand(1, 3, size, size)
    out = {}
    # bf16 too where it is emulated: the table then shows why auto leaves it
    variants = [("fp32", False, False), ("fp32 + channels_last", True, False), ("bf16 + channels_last", True, True)]
    for name, cl, bf in variants:
        n = net.to(memory_format=torch.channels_last if cl else torch.contiguous_format)
        xi = x.contiguous(memory_format=torch.channels_last) if cl else x.contiguous()
        with retained_heap(), torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf):
            n(xi)
            times = []
            for _ in range(reps):
                t = time.perf_counter()
                n(xi)
                times.append(time.perf_counter() - t)
        out[name] = size * size * scale * scale / float(np.median(times)) / 1e6
    return out


def timed_run(src: Path, thread: bool = False, **kw) -> dict:
    """One file-to-file run; Mpx/s of output and the run's own log.

    ``thread`` runs it in a new thread, as QGIS's tasks do (glibc then
    allocates from a thread arena, whose heaps hold at most 64 MiB).
    """
    dst = OUT / "out.tif"
    log, done = [], []
    job = SuperResolveJob(str(src), str(dst), overwrite=True, **kw)
    t = time.perf_counter()
    if thread:
        worker = threading.Thread(target=lambda: done.append(run_job(job, log=log.append)))
        worker.start()
        worker.join()
        res = done[0]
    else:
        res = run_job(job, log=log.append)
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "mpx_s": res.width * res.height / seconds / 1e6, "tiles": res.tiles,
            "tile_size": res.tile_size, "margin": res.margin, "precision": res.precision,
            "overhead": next((line.split("(")[1].split("%")[0] for line in log if line.startswith("Tiles:")), "")}


def gdalwarp_cubic(src: Path, scale: int) -> dict:
    """``gdalwarp -r cubic`` to the same grid, same compression, file to file."""
    ds = gdal.Open(str(src))
    w, h = ds.RasterXSize * scale, ds.RasterYSize * scale
    dst = OUT / "warp.tif"
    t = time.perf_counter()
    subprocess.run(["gdalwarp", "-q", "-overwrite", "-r", "cubic", "-ts", str(w), str(h), "-co", "TILED=YES",
                    "-co", "COMPRESS=ZSTD", "-co", "ZSTD_LEVEL=1", "-co", "PREDICTOR=2",
                    "-wo", "NUM_THREADS=ALL_CPUS", "-multi", str(src), str(dst)], check=True)
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "mpx_s": w * h / seconds / 1e6}


def gdal_write_rate(src: Path, scale: int = 4, tile: int = 1024) -> dict:
    """Mpx/s at which the pipeline's own writer stores an output the size of ``src`` x ``scale``.

    The content is ``src`` upsampled by bicubic (real texture, so compression
    works as hard as on a result); tiles of ``tile``^2 as the engine hands
    them over, with the output's creation options: compression on one
    thread (a CPU run) and on all cores (a GPU run). A file-to-file run can
    never pass this figure. The best of two writes each.
    """
    import tempfile
    from backend.raster_io import BandInfo, GdalWriter
    from backend.tiling import Window
    arr = gdal.Open(str(src)).ReadAsArray()
    up = torch.nn.functional.interpolate(torch.from_numpy(arr[None].astype(np.float32)), scale_factor=scale,
                                         mode="bicubic", align_corners=False)[0]
    up = up.clamp(0, 255).round().to(torch.uint8).numpy()
    c, h, w = up.shape
    bands = [BandInfo("", gdal.GCI_RedBand + i, None, None, None, "") for i in range(c)]
    out = {}
    for name, threads in (("one thread", False), ("all cores", True)):
        for _ in range(2):
            with tempfile.TemporaryDirectory(dir=OUT) as tmp:
                t = time.perf_counter()
                writer = GdalWriter(str(Path(tmp) / "w.tif"), w, h, (0, 1, 0, 0, 0, -1), "", gdal.GDT_Byte,
                                    bands, [None] * c, compress_threads=threads)
                for y in range(0, h, tile):
                    for x in range(0, w, tile):
                        writer.write(Window(x, y, min(tile, w - x), min(tile, h - y)), up[:, y:y + tile, x:x + tile])
                writer.commit(True)
                out[name] = max(out.get(name, 0.0), w * h / (time.perf_counter() - t) / 1e6)
    return out


def peak_rss_mib(src: Path, scale: int, model: str = "dganet") -> float:
    """Peak resident memory of a fresh CLI run (MiB), measured by a wrapper process."""
    code = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    cmd = [sys.executable, "-c", code, sys.executable, "-m", "backend", "superresolve", str(src),
           str(OUT / "rss.tif"), "--model", model, "--scale", str(scale), "--overwrite"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=True)
    return int(proc.stdout.strip().splitlines()[-1]) / 1024


def bf16_psnr_effect() -> list:
    """PSNR of bf16 against fp32 inference on the committed evaluation crops (dB, difference)."""
    from backend.evaluate import evaluate_file
    rows = []
    for crop, scale in (("osbs_rgb_128.tif", 4), ("landsat_b2b3b4_128.tif", 4), ("rgbn_suba_64.tif", 2)):
        path = str(ROOT / "tests" / "data" / crop)
        a = evaluate_file(path, scale, ["dganet"], [0, 5], device="cpu", precision="fp32")
        b = evaluate_file(path, scale, ["dganet"], [0, 5], device="cpu", precision="bf16")
        for ra, rb in zip(a, b):
            rows.append({"crop": crop, "scale": scale, "ise": ra.ise, "fp32": ra.psnr, "bf16": rb.psnr,
                         "diff": rb.psnr - ra.psnr})
    return rows


def dask_speedup() -> dict:
    """dganet x2 on the 1024^2 mosaic, here and on a local cluster of 2 worker processes."""
    src = aerial_input(1024)
    here = timed_run(src, model="dganet", scale=2, ise_iterations=0)
    cluster = timed_run(src, model="dganet", scale=2, ise_iterations=0, dask="local:2")
    return {"here": here, "local:2": cluster, "speedup": here["seconds"] / cluster["seconds"]}


def full_table() -> list:
    """Every model and scale with weights, ISE 0 and 5, on a 512^2 aerial crop."""
    from backend.registry import MODELS
    src = aerial_input(512)
    rows = []
    for spec in MODELS:
        for scale in spec.available_scales():
            for ise in (0, 5):
                r = timed_run(src, model=spec.name, scale=scale, ise_iterations=ise)
                rows.append({"model": spec.name, "scale": scale, "ise": ise, **r})
                print(f"| {spec.name} | x{scale} | {ise} | {r['mpx_s']:.2f} |", flush=True)
    return rows


def main() -> None:
    """Run the benchmark and print a markdown report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="every model and scale as well")
    parser.add_argument("--size", type=int, default=2048, help="side of the headline mosaic")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    report = {"date": time.strftime("%Y-%m-%d %H:%M"), "cpu": cpu_name(), "cores": available_cores(),
              "bf16": bf16_supported("cpu"), "torch": torch.__version__, "gdal": gdal.__version__}
    lines = [f"# make bench, {report['date']}", "",
             f"- CPU: {report['cpu']}, {report['cores']} cores available; native bf16: "
             f"{'yes' if report['bf16'] else 'no'}; torch {report['torch']}, GDAL {report['gdal']}"]
    print("\n".join(lines), flush=True)

    bare = bare_network()
    best_name = max(bare, key=bare.get)
    report["bare"] = bare
    line = "- Bare dganet x4, 256^2 RGB tile: " + ", ".join(f"{k} {v:.2f}" for k, v in bare.items()) + " Mpx/s"
    lines.append(line)
    print(line, flush=True)
    from backend import calibrate
    t = time.perf_counter()
    probe = calibrate.measure("cpu", calibrate.candidates("cpu"))
    probe_s = time.perf_counter() - t
    auto = calibrate.calibrate("cpu")
    report["calibration"] = {"probe": probe, "probe_seconds": probe_s, "auto": auto.describe(), "cached": auto.cached}
    line = (f"- auto's calibration probe ({calibrate.PROBE_SIDE}^2 tile, {probe_s:.1f} s): "
            + ", ".join(f"{k} {v:.2f}" for k, v in probe.items()) + f" Mpx/s; auto runs {auto.describe()}"
            + (" (cached)" if auto.cached else ""))
    lines.append(line)
    print(line, flush=True)

    aerial, landsat = aerial_input(args.size), landsat_input(args.size // 2)
    headline, threaded, ise5 = ("dganet x4, ISE 0, aerial RGB Byte", "the same in a worker thread, as QGIS runs it",
                                "dganet x4, ISE 5, aerial RGB Byte")
    runs = [(headline, aerial, dict(model="dganet", scale=4, ise_iterations=0)),
            (threaded, aerial, dict(model="dganet", scale=4, ise_iterations=0, thread=True)),
            (ise5, aerial, dict(model="dganet", scale=4, ise_iterations=5)),
            ("dganet x4, ISE 0, Landsat 3-band UInt16 (1-band weights)", landsat,
             dict(model="dganet", scale=4, ise_iterations=0))]
    table = ["", "| run | input | Mpx/s | seconds | vs bare best | vs gdalwarp -r cubic | tiles (size, margin, extra px) |",
             "|---|---|---|---|---|---|---|"]
    print("\n".join(table), flush=True)
    warp = {}
    results = {}
    for name, src, kw in runs:
        r = timed_run(src, **kw)
        if src not in warp:
            warp[src] = gdalwarp_cubic(src, 4)
        results[name] = r
        ds = gdal.Open(str(src))
        row = (f"| {name} | {ds.RasterXSize}^2 x {ds.RasterCount} | {r['mpx_s']:.2f} | {r['seconds']:.1f} | "
               f"{r['mpx_s'] / bare[best_name]:.2f} | {r['mpx_s'] / warp[src]['mpx_s']:.3f} | "
               f"{r['tiles']} ({r['tile_size']} px, {r['margin']} px, {r['overhead']}%) |")
        table.append(row)
        print(row, flush=True)
    for src, w in warp.items():
        row = f"| gdalwarp -r cubic x4 | {src.name} | {w['mpx_s']:.2f} | {w['seconds']:.1f} | | 1 | |"
        table.append(row)
        print(row, flush=True)
    lines += table
    i0, i5 = results[headline], results[ise5]
    report["runs"] = results
    # the bare network on the headline's own tiles (core + trimmed margin): what is left
    # between it and the pipeline is the margin's cost and everything outside the network
    side = i0["tile_size"] + 2 * (i0["margin"] - 8)
    same = bare_network(size=side, reps=2)
    report["bare_at_tile"] = {"side": side, **same}
    report["gdalwarp"] = {str(k.name): v for k, v in warp.items()}
    summary = [
        "",
        f"- Headline end to end / bare network best ({best_name}): "
        f"**{i0['mpx_s'] / bare[best_name]:.2f}** (target >= 0.8)",
        f"- The same in a worker thread, as QGIS runs it: {results[threaded]['mpx_s'] / bare[best_name]:.2f}",
        f"- ISE 5 costs {i5['seconds'] / i0['seconds']:.2f} x ISE 0 (target <= 1.3)",
        f"- The bare network on the headline's own {side}^2 tiles: {same[best_name]:.2f} Mpx/s of the "
        f"tiles' output; the headline keeps {i0['mpx_s'] / same[best_name]:.2f} of it "
        f"(the margins' share is {i0['overhead']}% extra pixels)",
    ]
    print("\n".join(summary), flush=True)
    lines += summary

    write = gdal_write_rate(aerial)
    report["gdal_write_mpx_s"] = write
    line = (f"- GDAL write rate, the headline's output ({args.size * 4}^2 x 3 Byte) through the pipeline's "
            f"writer: {write['one thread']:.0f} Mpx/s compressing on one thread, as beside a CPU run "
            f"(the headline uses {i0['mpx_s'] / write['one thread']:.3f} of it); {write['all cores']:.0f} "
            f"on all cores, as beside a GPU run. A file-to-file run stays below it")
    lines.append(line)
    print(line, flush=True)

    small, big = aerial_input(1024), aerial_input(2048)
    rss = {"1024": peak_rss_mib(small, 2), "2048": peak_rss_mib(big, 2)}
    report["rss_mib"] = rss
    line = (f"- Peak RSS, dganet x2 CLI run: {rss['1024']:.0f} MiB at 1024^2, {rss['2048']:.0f} MiB at "
            f"2048^2 (4x the pixels): ratio **{rss['2048'] / rss['1024']:.2f}** (target <= 1.1)")
    lines.append(line)
    print(line, flush=True)

    if report["bf16"]:
        effect = bf16_psnr_effect()
        report["bf16_psnr"] = effect
        worst = max(abs(r["diff"]) for r in effect)
        line = (f"- bf16 against fp32 PSNR on the committed crops (dganet, ISE 0 and 5): largest "
                f"difference {worst:.4f} dB (limit 0.02) over {len(effect)} rows")
        lines.append(line)
        print(line, flush=True)

    if args.full:
        lines += ["", "| model | scale | ISE | Mpx/s (512^2 aerial) |", "|---|---|---|---|"]
        print("\n".join(lines[-2:]), flush=True)
        full = full_table()
        report["full"] = full
        lines += [f"| {r['model']} | x{r['scale']} | {r['ise']} | {r['mpx_s']:.2f} |" for r in full]
        d = dask_speedup()
        report["dask"] = d
        line = (f"- Dask, dganet x2 on 1024^2: {d['here']['mpx_s']:.2f} Mpx/s here, {d['local:2']['mpx_s']:.2f} "
                f"on 2 local worker processes (1 thread each): speed-up {d['speedup']:.2f} "
                f"(the cluster's start is included)")
        lines.append(line)
        print(line, flush=True)
    lines.append(f"\nBenchmark time: {time.perf_counter() - start:.0f} s")
    print(lines[-1])
    (OUT / "bench.md").write_text("\n".join(lines) + "\n")
    (OUT / "bench.json").write_text(json.dumps(report, indent=1))
    print(f"Wrote {OUT / 'bench.md'}")


if __name__ == "__main__":
    os.environ.setdefault("GDAL_PAM_ENABLED", "NO")
    main()
