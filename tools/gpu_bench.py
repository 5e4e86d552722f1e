"""The pipeline's speed on a GPU machine, beside the bare network, in one script (no GDAL needed).

    python3 tools/gpu_bench.py --out $OUT              # on the lent GPU (4096^2 mosaic)
    .venv/bin/python tools/gpu_bench.py --size 256 --device cpu --out /tmp   # a quick check here

The input is a 4096^2 RGB aerial mosaic of the shipped sample (read with
tifffile, or GDAL where present), memory-mapped; the output is a memmap too.
It measures ``super_resolve_array`` (the same tile pipeline as files:
device-side pre- and post-processing, batches, reader and writer threads)
for dganet x4 with ISE 0 and 5 and for bicubic, and the bare network on
batches of 512^2 tiles in fp32, in bf16 + channels-last and, unless
``--no-compile``, the same through ``torch.compile`` (issue 19 asks whether
it measurably helps), all in the same process. It also times the
image-specific adaptation (``ADAPT_STEPS``, issue 18) on a 1024^2 crop.
Units: Mpx/s of output. Results go to stdout and to ``gpu_bench.json``,
rewritten after every measurement so that a call cut short keeps what it had.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SAMPLE = ROOT / "resources" / "sample" / "NEON_OSBS_029.tif"


def read_sample() -> np.ndarray:
    """The shipped sample as (3, H, W) uint8, with tifffile or GDAL."""
    try:
        import tifffile
        arr = tifffile.imread(str(SAMPLE))
        arr = np.moveaxis(arr, -1, 0) if arr.shape[-1] in (3, 4) else arr
    except ImportError:
        from osgeo import gdal
        gdal.UseExceptions()
        arr = gdal.Open(str(SAMPLE)).ReadAsArray()
    return np.ascontiguousarray(arr[:3]).astype(np.uint8)


def mosaic(array: np.ndarray, size: int) -> np.ndarray:
    """A (C, size, size) mosaic of ``array`` mirrored end to end."""
    c, h, w = array.shape
    rows = [array[:, ::-1] if i % 2 else array for i in range(-(-size // h))]
    tall = np.concatenate(rows, axis=1)
    cols = [tall[:, :, ::-1] if j % 2 else tall for j in range(-(-size // w))]
    return np.concatenate(cols, axis=2)[:, :size, :size]


def sync(device: str) -> None:
    """Wait for the device."""
    import torch
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def bare(device: str, scale: int, tile: int, batch: int, reps: int = 5) -> dict:
    """dganet's own throughput on (batch, 3, tile, tile): fp32 and bf16 + channels-last."""
    import torch
    from backend.registry import get_model
    net = get_model("dganet").build(3, scale).eval().to(device)
    x = torch.rand(batch, 3, tile, tile, device=device)
    out = {}
    for name, bf in (("fp32", False), ("bf16 + channels_last", True)):
        n = net.to(memory_format=torch.channels_last if bf else torch.contiguous_format)
        xi = x.contiguous(memory_format=torch.channels_last) if bf else x
        dev_type = "cuda" if device.startswith("cuda") else "cpu"
        with torch.inference_mode(), torch.autocast(dev_type, dtype=torch.bfloat16, enabled=bf):
            n(xi)
            sync(device)
            t = time.perf_counter()
            for _ in range(reps):
                n(xi)
            sync(device)
        out[name] = batch * tile * tile * scale * scale * reps / (time.perf_counter() - t) / 1e6
    return out


def compiled(device: str, scale: int, tile: int, batch: int, reps: int = 5) -> dict:
    """The bf16 + channels-last network through ``torch.compile``: its compile time and Mpx/s."""
    import torch
    from backend.registry import get_model
    net = get_model("dganet").build(3, scale).eval().to(device).to(memory_format=torch.channels_last)
    x = torch.rand(batch, 3, tile, tile, device=device).contiguous(memory_format=torch.channels_last)
    dev_type = "cuda" if device.startswith("cuda") else "cpu"
    try:
        fast = torch.compile(net)
        with torch.inference_mode(), torch.autocast(dev_type, dtype=torch.bfloat16):
            t = time.perf_counter()
            fast(x)
            sync(device)
            compile_s = time.perf_counter() - t
            t = time.perf_counter()
            for _ in range(reps):
                fast(x)
            sync(device)
    except Exception as exc:  # noqa: BLE001 - a compiler missing or failing is a result here
        return {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"}
    return {"compile_s": compile_s,
            "mpx_s": batch * tile * tile * scale * scale * reps / (time.perf_counter() - t) / 1e6}


def adaptation(array, device: str, steps: int) -> dict:
    """dganet x4 with ``ADAPT_STEPS`` on ``array``: the adaptation's own log line and seconds."""
    from backend.job import super_resolve_array
    log = []
    t = time.perf_counter()
    super_resolve_array(np.ascontiguousarray(array), 4, "dganet", 0, rgb=True, device=device,
                        adapt_steps=steps, log=log.append)
    line = next((entry for entry in log if entry.startswith("Adaptation:")), "")
    seconds = float(line.rsplit(";", 1)[-1].strip().rstrip(" s")) if line else float("nan")
    return {"steps": steps, "input": list(array.shape), "adapt_seconds": seconds,
            "run_seconds": time.perf_counter() - t, "log": line}


def pipeline(array, device: str, scale: int, model: str, ise: int, folder: Path) -> dict:
    """``super_resolve_array`` from a memmap to a memmap; Mpx/s of output."""
    from backend.job import super_resolve_array
    c, h, w = array.shape
    out = np.lib.format.open_memmap(str(folder / f"out_{model}_{ise}.npy"), mode="w+", dtype=np.uint8,
                                    shape=(c, h * scale, w * scale))
    log = []
    t = time.perf_counter()
    super_resolve_array(array, scale, model, ise, rgb=True, device=device, out=out, log=log.append)
    out.flush()
    seconds = time.perf_counter() - t
    tiles = next((line for line in log if line.startswith("Tiles:")), "")
    return {"seconds": seconds, "mpx_s": h * w * scale * scale / seconds / 1e6, "tiles": tiles}


def main() -> None:
    """Run and report."""
    import torch
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", default=".", help="folder for gpu_bench.json")
    parser.add_argument("--adapt", type=int, default=150, help="adaptation steps to time (0: skip)")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile measurement")
    args = parser.parse_args()
    report = {"date": time.strftime("%Y-%m-%d %H:%M"), "device": args.device, "torch": torch.__version__,
              "size": args.size}
    if args.device.startswith("cuda"):
        report["gpu"] = torch.cuda.get_device_name(0)
    Path(args.out).mkdir(parents=True, exist_ok=True)

    def record(key: str, value) -> None:
        report[key] = value
        print(key, json.dumps(value), flush=True)
        (Path(args.out) / "gpu_bench.json").write_text(json.dumps(report, indent=1))

    print(json.dumps(report), flush=True)
    gpu = args.device.startswith("cuda")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        src = np.lib.format.open_memmap(str(folder / "in.npy"), mode="w+", dtype=np.uint8,
                                        shape=(3, args.size, args.size))
        src[:] = mosaic(read_sample(), args.size)
        src.flush()
        src = np.load(str(folder / "in.npy"), mmap_mode="r")
        tile, batch = (512, 8) if gpu else (128, 1)
        record("bare_x4", bare(args.device, 4, tile, batch))
        for model, ise in (("dganet", 0), ("dganet", 5), ("bicubic", 0)):
            record(f"{model}_x4_ise{ise}", pipeline(src, args.device, 4, model, ise, folder))
        best = max(report["bare_x4"].values())
        record("pipeline_over_bare", report["dganet_x4_ise0"]["mpx_s"] / best)
        if args.adapt:
            crop = min(args.size, 1024)
            record("adapt_x4", adaptation(src[:, :crop, :crop], args.device, args.adapt))
        if not args.no_compile:
            record("bare_x4_compiled", compiled(args.device, 4, tile, batch))
    print(f"pipeline / bare best: {report['pipeline_over_bare']:.2f}", flush=True)


if __name__ == "__main__":
    main()
