"""RCAN-L: a residual channel-attention network (Zhang et al. 2018, RCAN) with local attention.

RCAN (ECCV 2018, sections 3.1-3.4): a shallow-feature conv, a
residual-in-residual body of G residual groups, each of B residual channel
attention blocks (RCAB: conv-ReLU-conv, channel attention, identity) and a
conv, with a short skip around each group and a long skip around the body
(a conv after the groups), then an ESPCN pixel-shuffle upscaler and a conv
to the output.

Two choices of ours, both so that the network tiles exactly and trains on
our budgets:

- **Local channel attention.** RCAN's channel attention (section 3.3)
  pools each channel over the whole image, so every output pixel depends
  on every input pixel: tiles could never equal a one-piece run. Here the
  pooling is an average over a ``pool`` x ``pool`` window around each
  pixel (stride 1), so the "channel statistics" are local and the
  receptive field is finite (``receptive_radius``). With ``pool`` None the
  class has RCAN's global pooling (for comparison only: it cannot tile).
- **A global residual.** The output is added to the bilinear upsampling of
  the input, as in DGANet (seed 000 section 2.2); RCAN has none. Every
  network of this project predicts a correction to an interpolation.

RCAN's full size is G = 10, B = 20, 64 features, reduction 16 (about 15.6M
parameters at x4); the registry's ``rcan`` is reduced (``RCAN_SMALL``).
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn


class ChannelAttention(nn.Module):
    """Squeeze (average pooling), excitation (1x1 conv down, ReLU, 1x1 conv up, sigmoid), rescale.

    RCAN section 3.3, eq. 5-6, with the pooling over a local window
    (``pool`` px, stride 1, borders averaged over the pixels inside) instead
    of the whole image; ``pool`` None is RCAN's global pooling.
    """

    def __init__(self, num_feat: int, reduction: int = 16, pool: Optional[int] = 7):
        super().__init__()
        self.pool = pool
        self.down = nn.Conv2d(num_feat, max(num_feat // reduction, 1), 1)
        self.up = nn.Conv2d(max(num_feat // reduction, 1), num_feat, 1)

    def forward(self, x):
        """Return ``x`` rescaled channel by channel (per pixel, from its neighbourhood)."""
        if self.pool is None:
            y = x.mean(dim=(2, 3), keepdim=True)
        else:
            y = F.avg_pool2d(x, self.pool, 1, self.pool // 2, count_include_pad=False)
        return x * torch.sigmoid(self.up(F.relu(self.down(y))))


class RCAB(nn.Module):
    """Residual channel attention block: x + CA(conv(ReLU(conv(x)))) (RCAN section 3.3, eq. 7)."""

    def __init__(self, num_feat: int, reduction: int, pool: Optional[int]):
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, padding=1)
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, padding=1)
        self.attention = ChannelAttention(num_feat, reduction, pool)

    def forward(self, x):
        """One block."""
        return x + self.attention(self.conv2(F.relu(self.conv1(x))))


class ResidualGroup(nn.Module):
    """B RCABs and a conv, with a short skip (RCAN section 3.2, eq. 4)."""

    def __init__(self, num_feat: int, num_block: int, reduction: int, pool: Optional[int]):
        super().__init__()
        self.blocks = nn.Sequential(*[RCAB(num_feat, reduction, pool) for _ in range(num_block)])
        self.conv = nn.Conv2d(num_feat, num_feat, 3, padding=1)

    def forward(self, x):
        """One group."""
        return x + self.conv(self.blocks(x))


class RCAN(nn.Module):
    """Residual channel attention network with local attention (module docstring).

    Args:
        num_in_ch: input bands (3 for RGB in one pass, 1 band by band).
        num_out_ch: output bands, equal to ``num_in_ch`` here.
        num_feat: features of every hidden conv (64 in RCAN).
        num_group: residual groups G (10 in RCAN).
        num_block: RCABs per group B (20 in RCAN).
        reduction: channel-attention reduction r (16 in RCAN).
        pool: side of the local pooling window; None for RCAN's global pooling.
        upscale: 2, 4 or 8: one x2 pixel-shuffle stage per factor of two (ESPCN, as RCAN).
        global_residual: add the bilinear upsampling of the input (not in RCAN).
    """

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 64, num_group: int = 10,
                 num_block: int = 20, reduction: int = 16, pool: Optional[int] = 7, upscale: int = 4,
                 global_residual: bool = True):
        super().__init__()
        if upscale not in (2, 4, 8):
            raise ValueError(f"RCAN upscale must be 2, 4 or 8, not {upscale}")
        if pool is not None and pool % 2 == 0:
            raise ValueError(f"the attention's pooling window must be odd (centred), not {pool}")
        self.upscale, self.pool, self.global_residual = upscale, pool, global_residual
        self.num_group, self.num_block = num_group, num_block
        self.head = nn.Conv2d(num_in_ch, num_feat, 3, padding=1)
        self.body = nn.Sequential(*[ResidualGroup(num_feat, num_block, reduction, pool)
                                    for _ in range(num_group)])
        self.body_conv = nn.Conv2d(num_feat, num_feat, 3, padding=1)
        ups = []
        for _ in range(int(math.log2(upscale))):
            ups += [nn.Conv2d(num_feat, 4 * num_feat, 3, padding=1), nn.PixelShuffle(2)]
        self.up = nn.Sequential(*ups)
        self.tail = nn.Conv2d(num_feat, num_out_ch, 3, padding=1)

    def forward(self, x):
        """Super-resolve ``x`` (N, C, H, W) to (N, C, H*s, W*s)."""
        feat = self.head(x)
        feat = feat + self.body_conv(self.body(feat))
        out = self.tail(self.up(feat))
        if not self.global_residual:
            return out.float()
        # as DGANet: the residual's base stays float32 under bf16 autocast
        with torch.autocast(device_type=x.device.type, enabled=False):
            base = F.interpolate(x.float(), scale_factor=self.upscale, mode="bilinear", align_corners=False)
            return out.float() + base

    def receptive_radius(self) -> int:
        """How many LR pixels beyond a tile can change its interior outputs.

        At LR: the head conv, per RCAB two convs and the pooling window's
        half-side, per group its conv, the body conv and the first upscaler
        conv. Finer: each later upscaler conv and the tail add a pixel of
        their resolution. Plus one for the bilinear residual.
        """
        if self.pool is None:
            raise ValueError("with global pooling every output depends on the whole input")
        lr = 1 + self.num_group * (self.num_block * (2 + self.pool // 2) + 1) + 1 + 1
        finer = sum(1.0 / 2 ** k for k in range(1, int(math.log2(self.upscale)) + 1))
        return int(math.ceil(lr + finer)) + 1
