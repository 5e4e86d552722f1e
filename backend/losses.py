"""Training losses, selectable by name.

``gradient_aware`` is seed 000's L1 + k * L1(Sobel gradient maps), k = 0.1
(section 2.3, eq. 3-6).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def sobel(x: torch.Tensor) -> torch.Tensor:
    """Sobel responses (N, 2C, H, W): x then y derivative of every channel.

    Seed 000 eq. 3-4 write GM(I) = Sob(I) without saying how the two
    directions combine; we keep both responses rather than a magnitude,
    which avoids the square root's unstable gradient on flat areas.
    Borders use replicate padding so flat edges give zero gradient.
    """
    c = x.shape[1]
    kx = _SOBEL_X.to(x.device, x.dtype)
    k = torch.stack([kx, kx.t()])[:, None].repeat(c, 1, 1, 1)
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), k, groups=c)


def l1(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """Mean absolute error (seed 000 eq. 1)."""
    return (sr - hr).abs().mean()


def l2(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """Mean squared error (seed 000 eq. 2)."""
    return ((sr - hr) ** 2).mean()


def gradient_aware(sr: torch.Tensor, hr: torch.Tensor, k: float = 0.1) -> torch.Tensor:
    """L1 + k * L1(Sobel(sr), Sobel(hr)) (seed 000 eq. 5-6)."""
    return l1(sr, hr) + k * l1(sobel(sr), sobel(hr))


LOSSES = {"l1": l1, "l2": l2, "gradient_aware": gradient_aware}
