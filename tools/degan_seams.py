"""DEGAN's tiles are not a one-piece run: measure by how much, and how visible the seams are.

DEGAN's Transformer and CBAM's channel pooling see the whole window, so its
output depends on the window. It runs on fixed windows (``ModelSpec.fixed_tile``
LR px, ``fixed_margin`` cut from each side, reflect-padded at the image's
edges). This script super-resolves a held-out image both ways with the shipped
x4 weights, in normalised units, and reports:

- the tiled-vs-one-piece difference (mean and max, % of the normalised range);
- the seam step: the mean absolute difference between the two output pixels
  on either side of a core boundary, beside the same statistic between
  neighbours away from boundaries (equal numbers mean no visible seam);
- PSNR of each against the HR image.

    .venv/bin/python tools/degan_seams.py
"""
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SAMPLE = ROOT / "resources" / "sample" / "NEON_OSBS_029.tif"


def fixed_windows(net, lr, window: int, margin: int, scale: int):
    """Run ``net`` on ``window``-square LR windows, keeping each core; (N, C, h*s, w*s)."""
    import torch
    import torch.nn.functional as F
    core = window - 2 * margin
    _, _, h, w = lr.shape
    ph, pw = (-h) % core, (-w) % core
    padded = F.pad(lr, (margin, margin + pw, margin, margin + ph), mode="reflect")
    out = torch.zeros(lr.shape[0], lr.shape[1], (h + ph) * scale, (w + pw) * scale)
    for y in range(0, h + ph, core):
        for x in range(0, w + pw, core):
            sr = net(padded[..., y:y + window, x:x + window])
            out[..., y * scale:(y + core) * scale, x * scale:(x + core) * scale] = \
                sr[..., margin * scale:(margin + core) * scale, margin * scale:(margin + core) * scale]
    return out[..., :h * scale, :w * scale]


def seam_report(scale: int = 4) -> str:
    """Markdown lines of the measurement (needs the shipped ``degan`` weights)."""
    import torch
    from osgeo import gdal
    gdal.UseExceptions()
    from backend.normalise import compute_stats
    from backend.registry import get_model
    from backend.resample import degrade
    from backend.weights import load_weights
    spec = get_model("degan")
    net = spec.build(3, scale).eval()
    load_weights(spec.weights_path(scale, "aerial"), "degan", scale, 3, net)
    hr = gdal.Open(str(SAMPLE)).ReadAsArray()[:3]
    h, w = hr.shape[1] // (scale * 16) * scale * 16, hr.shape[2] // (scale * 16) * scale * 16
    hr = hr[:, :h, :w]
    lr = degrade(torch.from_numpy(hr.astype(np.float64))[None], scale, hr.dtype)[0].numpy()
    stats = compute_stats(lr, np.ones(lr.shape, bool), True)
    low = np.array(stats.low, np.float32)[:, None, None]
    span = np.array(stats.span, np.float32)[:, None, None]
    x = torch.from_numpy(((lr - low) / span).astype(np.float32))[None]
    target = (hr - low) / span
    with torch.inference_mode():
        tiled = fixed_windows(net, x, spec.fixed_tile, spec.fixed_margin, scale)[0].numpy()
        whole = net(x)[0].numpy()
    diff = np.abs(tiled - whole) * 100
    core = (spec.fixed_tile - 2 * spec.fixed_margin) * scale
    cols = np.abs(np.diff(tiled, axis=2))                 # steps between horizontal neighbours
    at_seam = cols[:, :, core - 1::core].mean()
    inside = np.delete(cols, np.s_[core - 1::core], axis=2).mean()
    whole_cols = np.abs(np.diff(whole, axis=2))

    def psnr(a):
        return 10 * np.log10(1.0 / np.mean((a[:, 4:-4, 4:-4] - target[:, 4:-4, 4:-4]) ** 2))
    return "\n".join([
        f"DEGAN x{scale} on `{SAMPLE.name}` ({w} x {h} px HR), windows of {spec.fixed_tile} LR px with "
        f"{spec.fixed_margin}-px margins (cores of {core // scale}), against one piece; normalised units:",
        "",
        "| measure | value |", "|---|---|",
        f"| tiled vs one-piece, mean abs difference (% of range) | {diff.mean():.3f} |",
        f"| tiled vs one-piece, max abs difference (% of range) | {diff.max():.2f} |",
        f"| step across core boundaries, tiled (% of range) | {at_seam * 100:.3f} |",
        f"| step between other neighbours, tiled (% of range) | {inside * 100:.3f} |",
        f"| the same boundary columns in the one-piece run (% of range) | {whole_cols[:, :, core - 1::core].mean() * 100:.3f} |",
        f"| PSNR vs HR, tiled / one-piece (dB, normalised peak 1) | {psnr(tiled):.2f} / {psnr(whole):.2f} |",
    ])


if __name__ == "__main__":
    print(seam_report())
