"""DGANet, the deep gradient-aware network of seed 000 (section 2.2, Table 1).

An EDSR-style network: a head convolution, residual blocks of
conv-ReLU-conv plus identity, a body convolution, one x2 pixel-shuffle
UpBlock per factor of two, a tail convolution, and a global residual of the
bilinearly upsampled input.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class ResBlock(nn.Module):
    """Conv-ReLU-Conv plus identity (seed 000, section 2.2, "ResBlock")."""

    def __init__(self, num_feat: int):
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, padding=1)
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, padding=1)

    def forward(self, x):
        """Return ``x + conv2(relu(conv1(x)))``."""
        return x + self.conv2(F.relu(self.conv1(x)))


class UpBlock(nn.Module):
    """A 3x3 conv to 4x the features, then a x2 pixel shuffle (Table 1)."""

    def __init__(self, num_feat: int):
        super().__init__()
        self.conv = nn.Conv2d(num_feat, num_feat * 4, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x):
        """Upscale the feature maps by two."""
        return self.shuffle(self.conv(x))


class DGANet(nn.Module):
    """Deep gradient-aware network (seed 000, Table 1).

    Args:
        num_in_ch: input bands (3 for the RGB flavour, 1 for the band-by-band one).
        num_out_ch: output bands, equal to ``num_in_ch`` here.
        num_feat: feature maps of every hidden conv (64 in Table 1).
        num_block: number of ResBlocks (5 in Table 1).
        upscale: 2, 4 or 8; one UpBlock per factor of two.

    Table 1 shows a conv between the last ResBlock and the first UpBlock but
    does not draw the long skip of EDSR around the body; section 2.2 calls the
    network "based on the enhanced residual network", so we keep EDSR's long
    skip (head features added after the body conv). The global residual is the
    bilinear (align_corners=False) upsampling of the input, as section 2.2 says.
    """

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 64,
                 num_block: int = 5, upscale: int = 4):
        super().__init__()
        if upscale not in (2, 4, 8):
            raise ValueError(f"DGANet upscale must be 2, 4 or 8, not {upscale}")
        self.upscale = upscale
        self.num_block = num_block
        self.head = nn.Conv2d(num_in_ch, num_feat, 3, padding=1)
        self.body = nn.Sequential(*[ResBlock(num_feat) for _ in range(num_block)])
        self.body_conv = nn.Conv2d(num_feat, num_feat, 3, padding=1)
        self.up = nn.Sequential(*[UpBlock(num_feat) for _ in range(int(math.log2(upscale)))])
        self.tail = nn.Conv2d(num_feat, num_out_ch, 3, padding=1)

    #: LR rows x scale^2 per strip of the upsampling tail at inference (see ``forward``):
    #: 64 rows at x4, 32 at x8 (at least), 256 at x2.
    STRIP_ROWS_X_S2 = 1024
    #: Largest tensor of a strip (the last UpBlock's conv output) where the width allows.
    #: A run in a thread other than the main one (QGIS's tasks) allocates from a glibc
    #: arena whose heaps hold at most 64 MiB; larger blocks get fresh pages from the
    #: kernel each time. dganet x4 on a 542 px tile in a thread: 1.92 Mpx/s with strips
    #: of 64 rows (75 MB), 2.21 with 32 (2.33 and 2.28 in the main thread).
    STRIP_BYTES = 48 << 20
    #: LR rows of context a strip of the tail needs on each side: its 3x3 convs
    #: reach 1 LR row, then 1/2, 1/4 and 1/8 of one at the finer resolutions.
    STRIP_HALO = 2
    #: Called with the fraction of rows done after each strip (set by the engine).
    progress_hook = None

    def forward(self, x):
        """Super-resolve ``x`` (N, C, H, W) to (N, C, H*s, W*s).

        At inference the upsampling stages, whose features are s^2 times
        larger than the input, run in strips of rows with their halo, so
        memory scales with the LR features instead (same values: every
        output row sees all the rows its convolutions reach).
        """
        feat = self.head(x)
        feat = feat + self.body_conv(self.body(feat))
        h, s = x.shape[-2], self.upscale
        rows = self.strip_rows(x.shape[-1], 2 if torch.is_autocast_enabled(x.device.type) else 4)
        if self.training or torch.is_grad_enabled() or h <= 2 * rows:
            out = self.tail(self.up(feat)).float()
        else:
            halo = self.STRIP_HALO
            out = torch.empty((x.shape[0], self.tail.out_channels, h * s, x.shape[-1] * s),
                              dtype=torch.float32, device=x.device)
            for r0 in range(0, h, rows):
                r1 = min(h, r0 + rows)
                a, b = max(0, r0 - halo), min(h, r1 + halo)
                part = self.tail(self.up(feat[:, :, a:b]))
                out[:, :, r0 * s:r1 * s] = part[:, :, (r0 - a) * s:(r1 - a) * s].float()
                if self.progress_hook is not None:   # the engine's progress, strip by strip
                    self.progress_hook(r1 / h)
        # The global residual stays float32 under bf16 autocast: in bf16 the
        # base image itself would lose about 1/256 of the data range.
        with torch.autocast(device_type=x.device.type, enabled=False):
            base = F.interpolate(x.float(), scale_factor=self.upscale, mode="bilinear",
                                 align_corners=False)
            return out + base

    def strip_rows(self, w: int, value_bytes: int) -> int:
        """LR rows per strip of the tail for input rows ``w`` px wide: the most, up to
        ``STRIP_ROWS_X_S2 / s^2``, that keep its largest tensor within ``STRIP_BYTES``, but
        never fewer than 32 (thinner strips spend more on their halo than they save)."""
        s = self.upscale
        most = max(32, self.STRIP_ROWS_X_S2 // (s * s))
        per_row = self.head.out_channels * w * s * s * value_bytes
        return int(min(most, max(32, self.STRIP_BYTES // per_row - 2 * self.STRIP_HALO)))

    def bytes_per_lr_pixel(self, scale: int, width: int) -> int:
        """Peak inference memory per LR input pixel (``width`` bytes per value), for tile sizing.

        The LR features (a few tensors of ``num_feat`` channels), the float32
        output and residual, and an allowance for the tail's strips (measured
        within 1.6x on 700 px tiles at x2, x4 and x8, fp32 and bf16).
        """
        feat = self.head.out_channels
        return (5 * feat * width + 2 * self.tail.out_channels * scale * scale * 4
                + scale * scale * feat * width // 8)

    def receptive_radius(self) -> int:
        """How many LR pixels beyond a tile can change its interior outputs.

        Every 3x3 conv at LR adds one pixel; a conv at 2**k times the
        resolution adds 1/2**k; the bilinear residual adds one.
        """
        lr_convs = 1 + 2 * self.num_block + 1 + 1  # head, blocks, body conv, first UpBlock conv
        finer = sum(1.0 / 2 ** k for k in range(1, len(self.up) + 1))  # later UpBlocks and the tail
        return int(math.ceil(lr_convs + finer)) + 1
