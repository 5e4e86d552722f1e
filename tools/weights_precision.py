"""What storing the packaged weights in float16 or bfloat16 costs, in PSNR.

    .venv/bin/python tools/weights_precision.py        (about a minute on the CPU)

Each weights file the plugin zip carries is converted (backend.weights.
convert_weights) and evaluated (backend.evaluate) against its float32 original
on the committed real crops in tests/data, at ISE 0 and 5. Prints one row per
file and dtype with the largest PSNR change; the zip stores a dtype only if
that change stays under ``package.MAX_PSNR_COST_DB`` on every file.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from backend import registry  # noqa: E402
from backend.evaluate import evaluate_file  # noqa: E402
from backend.weights import convert_weights  # noqa: E402
from package import MAX_PSNR_COST_DB, packaged_weights  # noqa: E402

DATA = ROOT / "tests" / "data"
#: Real crops per weight set: (file, bands or None for all).
CROPS = {
    "aerial": [("osbs_rgb_128.tif", None), ("rgbn_suba_64.tif", [1])],
    "landsat": [("landsat_b2b3b4_128.tif", None), ("landsat_collar_96.tif", None)],
    "sentinel2": [("sentinel2_b02b03b04_192.tif", None)],
}
ISE = [0, 5]


def scores(weights_dir: Path, model: str, scale: int, weight_set: str) -> list:
    """PSNR of every crop and ISE count with the weights in ``weights_dir``."""
    registry.WEIGHTS_DIR = weights_dir
    out = []
    for name, bands in CROPS[weight_set]:
        rows = evaluate_file(str(DATA / name), scale, [model], ISE, bands, weights=weight_set)
        out += [r.psnr for r in rows]
    return out


def measure(dtypes=("float16", "bfloat16")) -> list:
    """Rows (file, dtype, largest |PSNR change| in dB, number of scores)."""
    original = registry.WEIGHTS_DIR
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for path in packaged_weights():
                # registry.ModelSpec.weights_path names files <model>_x<scale>_<weight set>
                model, rest = path.stem.rsplit("_x", 1)
                scale, weight_set = int(rest.split("_")[0]), rest.split("_", 1)[1]
                ref = scores(original, model, scale, weight_set)
                for dtype in dtypes:
                    folder = Path(tmp) / dtype
                    folder.mkdir(exist_ok=True)
                    convert_weights(path, folder / path.name, dtype)
                    got = scores(folder, model, scale, weight_set)
                    rows.append((path.name, dtype, max(abs(a - b) for a, b in zip(ref, got)), len(ref)))
    finally:
        registry.WEIGHTS_DIR = original
    return rows


def main() -> int:
    """Print the table."""
    print("| file | stored as | largest PSNR change (dB) | crops x ISE counts |\n|---|---|---|---|")
    worst = {}
    for name, dtype, cost, n in measure():
        print(f"| `{name}` | {dtype} | {cost:.5f} | {n} |")
        worst[dtype] = max(worst.get(dtype, 0.0), cost)
    for dtype, cost in worst.items():
        verdict = "under" if cost < MAX_PSNR_COST_DB else "NOT under"
        print(f"{dtype}: worst {cost:.5f} dB, {verdict} the {MAX_PSNR_COST_DB} dB budget")
    return 0


if __name__ == "__main__":
    sys.exit(main())
