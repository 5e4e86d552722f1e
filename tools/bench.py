"""`make bench`: seconds per output megapixel of each model on the shipped sample.

Speed goals live here, not in timed tests.
"""
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from backend.job import super_resolve_array  # noqa: E402
from backend.registry import MODELS  # noqa: E402
from backend.torch_support import resolve_device  # noqa: E402

from osgeo import gdal  # noqa: E402

SAMPLE = ROOT / "resources" / "sample" / "NEON_OSBS_029.tif"


def main() -> None:
    """Print a markdown table of timings."""
    img = gdal.Open(str(SAMPLE)).ReadAsArray()[:, :200, :200]
    device = resolve_device("auto")
    print(f"device {device}; input {img.shape[2]}x{img.shape[1]} RGB Byte")
    print("| model | scale | ISE | tile | seconds | s / output MP |\n|---|---|---|---|---|---|")
    for spec in MODELS:
        for scale in spec.available_scales():
            for ise in (0, 5):
                for tile in (128, 256):
                    t0 = time.perf_counter()
                    out = super_resolve_array(img, scale, spec.name, ise, rgb=True, device=device,
                                              tile_size=tile)
                    dt = time.perf_counter() - t0
                    mp = out.shape[1] * out.shape[2] / 1e6
                    print(f"| {spec.name} | x{scale} | {ise} | {tile} | {dt:.2f} | {dt / mp:.2f} |")


if __name__ == "__main__":
    main()
