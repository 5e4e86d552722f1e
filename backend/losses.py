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


def charbonnier(x: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Mean Charbonnier penalty sqrt(x^2 + eps^2), the rho of seed 001 eq. 26."""
    return torch.sqrt(x * x + eps * eps).mean()


class PerceptualLoss(torch.nn.Module):
    """Sum over VGG19 layers of the Charbonnier distance of features (seed 001 eq. 26).

    Args:
        vgg: a ``backend.models.vgg19.VGG19Features`` (frozen).

    Seed 001 section 2.4.2 uses "the convolutional layers of VGG19" without
    naming them; we take the output of each of its five blocks (relu1_2,
    relu2_2, relu3_4, relu4_4, relu5_4). Inputs are normalised images
    (about [0, 1]); one band is repeated to the three VGG expects, other
    counts are averaged to grey first.
    """

    def __init__(self, vgg):
        super().__init__()
        self.vgg = vgg

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        """The perceptual distance of ``sr`` to ``hr``."""
        if sr.shape[1] != 3:
            sr, hr = (t.mean(dim=1, keepdim=True).expand(-1, 3, -1, -1) for t in (sr, hr))
        with torch.no_grad():
            target = self.vgg(hr)
        return sum(charbonnier(a - b) for a, b in zip(self.vgg(sr), target))


def degan_generator_loss(sr: torch.Tensor, hr: torch.Tensor, fake_logits=None, perceptual=None,
                         weights=(0.5, 0.5, 0.1)) -> torch.Tensor:
    """0.5 MSE + 0.5 perceptual + 0.1 adversarial (seed 001 section 2.4).

    ``perceptual`` is a ``PerceptualLoss`` or None (off: no VGG19 weights
    were given); ``fake_logits`` the discriminator's logits for ``sr``, or
    None before the adversarial term starts. The adversarial term is the
    generator's side of eq. 27 in its usual non-saturating form,
    -log D(I_SR) (Goodfellow et al. 2014; SRGAN).
    """
    w_mse, w_perc, w_adv = weights
    loss = w_mse * l2(sr, hr)
    if perceptual is not None:
        loss = loss + w_perc * perceptual(sr, hr)
    if fake_logits is not None:
        loss = loss + w_adv * F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    return loss


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """-log D(I_HR) - log(1 - D(I_SR)), averaged (seed 001 eq. 27)."""
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def gpsr_loss(sr: torch.Tensor, grad_maps, hr: torch.Tensor, alpha: float = 0.1,
              beta: float = 0.001) -> torch.Tensor:
    """L1 + alpha * L_grad^pix + beta * L_SG^pix (GPSR, seed 002 eq. 13-18).

    ``grad_maps`` are the gradient branch's G_1..G_N (eq. 12), each
    supervised by g(f_down(I_HR)) at its size (eq. 13-14), f_down being the
    project's bicubic downsampling (antialiased, as the degradation).
    """
    from .resample import torch_downsample
    grad = 0.0
    for g_s in grad_maps:
        factor = hr.shape[-1] // g_s.shape[-1]
        target = hr if factor == 1 else torch_downsample(hr, factor, "bicubic")
        grad = grad + l1(g_s, gradient_magnitude(target))
    return gpsr_image_gradient(sr, hr, beta) + alpha * grad


LOSSES = {"l1": l1, "l2": l2, "gradient_aware": gradient_aware, "sg": second_order_gradient,
          "gpsr_gradient": gpsr_image_gradient}
