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


def gradient_magnitude(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Per-channel central-difference gradient magnitude.

    GPSR (seed 002 eq. 8-9): Mx = [[0,0,0],[1,0,-1],[0,0,0]], My its
    transpose, g(I) = ||[I*Mx, I*My]||_2. Seed 003 eq. 5 defines M(I) with
    the same central differences; it does not name the norm, so we use the
    same Euclidean magnitude. ``eps`` keeps the square root differentiable
    on flat areas (as SPSR's implementation does). Replicate padding.
    """
    p = F.pad(x, (1, 1, 1, 1), mode="replicate")
    dx = p[..., 1:-1, :-2] - p[..., 1:-1, 2:]
    dy = p[..., :-2, 1:-1] - p[..., 2:, 1:-1]
    return torch.sqrt(dx * dx + dy * dy + eps)


def second_order_gradient(sr: torch.Tensor, hr: torch.Tensor, lam: float = 1.0) -> torch.Tensor:
    """L1 + lambda * L1(M(M(sr)), M(M(hr))), lambda = 1 (seed 003 eq. 6-7).

    Seed 003 section 3 calls M "a convolution ... simulating the Sobel filter"
    but its eq. 5 prints central differences; we follow the equation.
    """
    return l1(sr, hr) + lam * l1(gradient_magnitude(gradient_magnitude(sr)),
                                 gradient_magnitude(gradient_magnitude(hr)))


def gpsr_image_gradient(sr: torch.Tensor, hr: torch.Tensor, beta: float = 0.001) -> torch.Tensor:
    """L1 + beta * L1(g(sr), g(hr)), beta = 0.001 (GPSR, seed 002 eq. 15-18).

    This is GPSR's loss without its gradient branch term (eq. 14), which
    needs GPSR's network.
    """
    return l1(sr, hr) + beta * l1(gradient_magnitude(sr), gradient_magnitude(hr))


LOSSES = {"l1": l1, "l2": l2, "gradient_aware": gradient_aware, "sg": second_order_gradient,
          "gpsr_gradient": gpsr_image_gradient}
