"""Does the x4 aerial network overfit? Its gain over bicubic on training rows against validation rows.

    .venv/bin/python tools/fit_gap.py [MODEL]      (needs `make data`; about 2 min on the CPU)

Same-size crops (256 x 512 px) of the training and the validation rows of
each aerial image. A train gain far above the validation gain would mean
overfitting (more data would help); equal gains mean the network fits what
it can (the README's results section quotes this).
"""
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from backend.evaluate import evaluate_array  # noqa: E402


def main(model: str = "dganet") -> None:
    """Print the gain of ``model`` x4 over bicubic per image and part, and the means."""
    packed = ROOT / "data" / "packed.npz"
    if not packed.is_file():
        sys.exit("No data/packed.npz: run `make data` first.")
    d = np.load(packed)
    for part in ("train", "val"):
        gains = []
        for key in sorted(d.files):
            if key.startswith("aerial/") and key.endswith("/" + part):
                rows = evaluate_array(d[key][:, :256, :512], 4, ["bicubic", model], [0], rgb=True,
                                      device="cpu", weights="aerial")
                gains.append(rows[1].psnr - rows[0].psnr)
                print(f"{part:5} {key.split('/')[1]:28} bicubic {rows[0].psnr:.2f} {model} {rows[1].psnr:.2f} "
                      f"gain {gains[-1]:+.2f} dB")
        print(f"{part:5} mean gain {np.mean(gains):+.3f} dB")


if __name__ == "__main__":
    main(*sys.argv[1:2])
