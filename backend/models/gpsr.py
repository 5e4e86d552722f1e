"""GPSR, the gradient-prior-based network of seed 002 (section 3).

SR branch (section 3.1): a bicubic pre-upsample and a conv (eq. 1), N =
log2(S) strided encoders (eq. 2-3), N decoders of M RS3AM-SR, a pixel
shuffle and a conv (eq. 4-5), skip fusion ``[F_{N-j}, F'_j, F_j^grad]``
(eq. 6) and an output conv (eq. 7). Gradient branch (section 3.2.1): the
gradient map g of the LR image (eq. 8-9), a conv (eq. 10) and N gradient
modules fed with the SR branch's RS3AM-SR outputs (eq. 11, 23, 24), each
with a conv that gives the multi-scale gradient map G_s (eq. 12).
RS3AM-SR and RS3AM-G (section 3.3) are built from CRFS's residual branches,
a gate unit and LRSAM.
"""
from __future__ import annotations

import math
from typing import List, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..losses import gradient_magnitude


class LRSAM(nn.Module):
    """Large-receptive-field spatial attention (seed 002 section 3.3.2, Figure 4).

    Args:
        num_feat: channels of the features rescaled.
        reduction: the squeeze conv keeps ``num_feat // reduction`` channels.
        stride: stride of the strided conv, undone by a pixel shuffle (3).
        pool: max-pooling window (7).

    Squeeze: a 1x1 conv reduces the channels, a 3x3 conv with stride 3
    (each output covers one 3x3 cell) and a 7x7 max-pool (stride 1) widen
    the receptive field. Then "a set of Convs followed by ReLU": two 3x3
    convs with ReLU and a 3x3 conv to stride**2 channels. Excitation: the
    pixel shuffle back to full size gives one map, its sigmoid rescales the
    input. The paper calls the result a spatial attention map; we make it
    one channel shared by all features, as CBAM's spatial map is.
    Sides that do not divide by 3 are padded (replicate) and cropped, so
    the 3x3 cells start at the input's first pixel: the output depends on
    where a tile starts modulo 3 pixels.
    """

    def __init__(self, num_feat: int, reduction: int = 4, stride: int = 3, pool: int = 7):
        super().__init__()
        f = max(num_feat // reduction, 4)
        self.stride = stride
        self.reduce = nn.Conv2d(num_feat, f, 1)
        self.down = nn.Conv2d(f, f, stride, stride)
        self.pool = nn.MaxPool2d(pool, 1, pool // 2)
        self.convs = nn.Sequential(nn.Conv2d(f, f, 3, padding=1), nn.ReLU(inplace=True),
                                   nn.Conv2d(f, f, 3, padding=1), nn.ReLU(inplace=True),
                                   nn.Conv2d(f, stride * stride, 3, padding=1))
        self.shuffle = nn.PixelShuffle(stride)

    #: Radius (in pixels of its input) of what one LRSAM reads: the 3-px cell,
    #: then a 7x7 pool and three 3x3 convs (6 cells) at a third of the size.
    RADIUS = 3 * 6 + 2

    def forward(self, x):
        """Return ``x`` times its spatial attention map."""
        h, w = x.shape[-2:]
        s = self.stride
        y = self.reduce(x)
        ph, pw = (-h) % s, (-w) % s
        if ph or pw:
            y = F.pad(y, (0, pw, 0, ph), mode="replicate")
        y = self.convs(self.pool(self.down(y)))
        mask = torch.sigmoid(self.shuffle(y))[..., :h, :w]
        return x * mask


class ResidualBranch(nn.Module):
    """Conv-ReLU-Conv: the residual branch of one CRFS level (section 3.3.1)."""

    def __init__(self, num_feat: int):
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, padding=1)
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, padding=1)

    def forward(self, x):
        """The residual feature of ``x`` (without the identity)."""
        return self.conv2(F.relu(self.conv1(x)))


class RS3AMSR(nn.Module):
    """RS3AM-SR (seed 002 section 3.3.3, Figure 5a, eq. 19-22).

    Args:
        num_feat: channels in and out.
        num_res: residual branches (levels) of the CRFS (M = 4).

    CRFS stacks residual blocks; the residual feature of each level goes
    through an LRSAM (at the tail of its branch) before it is added, and
    all of them go to the gate unit, a 1x1 conv over their concatenation
    (eq. 21). The output adds the module's input (eq. 22).
    """

    def __init__(self, num_feat: int, num_res: int = 4):
        super().__init__()
        self.branches = nn.ModuleList(ResidualBranch(num_feat) for _ in range(num_res))
        self.attention = nn.ModuleList(LRSAM(num_feat) for _ in range(num_res))
        self.gate = nn.Conv2d(num_feat * num_res, num_feat, 1)

    def forward(self, x):
        """``x + gate([R_1, ..., R_M])``."""
        h, res = x, []
        for branch, att in zip(self.branches, self.attention):
            r = att(branch(h))
            res.append(r)
            h = h + r
        return x + self.gate(torch.cat(res, dim=1))

    def radius(self) -> int:
        """Pixels (at its resolution) the module reads beyond an output pixel."""
        return len(self.branches) * (2 + LRSAM.RADIUS)


class RS3AMG(nn.Module):
    """RS3AM-G of the gradient branch (seed 002 section 3.3.3, Figure 5b, eq. 23-24).

    Args:
        num_feat: channels of its input ``x`` and of the SR-branch features.
        num_branch: residual branches, one per RS3AM-SR of the decoder (M = 4).

    Branch m concatenates the m-th RS3AM-SR output of the decoder with its
    local residual feature (conv-ReLU-conv of the running feature), applies
    an LRSAM and a 3x3 conv that halves the channels (eq. 23); the result is
    added to the running feature, as in CRFS. Local feature fusion is a 1x1
    conv over all branch results, plus ``x`` (eq. 24).
    """

    def __init__(self, num_feat: int, num_branch: int = 4):
        super().__init__()
        self.branches = nn.ModuleList(ResidualBranch(num_feat) for _ in range(num_branch))
        self.attention = nn.ModuleList(LRSAM(2 * num_feat) for _ in range(num_branch))
        self.halve = nn.ModuleList(nn.Conv2d(2 * num_feat, num_feat, 3, padding=1) for _ in range(num_branch))
        self.gate = nn.Conv2d(num_feat * num_branch, num_feat, 1)

    def forward(self, x, sr_feats: List[torch.Tensor]):
        """Fuse ``x`` with the decoder's RS3AM-SR outputs ``sr_feats``."""
        h, res = x, []
        for branch, att, halve, f in zip(self.branches, self.attention, self.halve, sr_feats):
            r = halve(att(torch.cat([f, branch(h)], dim=1)))
            res.append(r)
            h = h + r
        return x + self.gate(torch.cat(res, dim=1))


class Encoder(nn.Module):
    """Strided 3x3 conv, LeakyReLU, 3x3 conv (eq. 3): half the size, more channels."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.down = nn.Conv2d(in_ch, out_ch, 3, 2, 1)
        self.conv = nn.Conv2d(out_ch, out_ch, 3, padding=1)

    def forward(self, x):
        """``conv(lrelu(sconv(x)))``."""
        return self.conv(F.leaky_relu(self.down(x), 0.2))


class Decoder(nn.Module):
    """M RS3AM-SR, a x2 pixel shuffle and a 3x3 conv (eq. 5).

    ``forward`` also returns each RS3AM-SR output, which the gradient
    module of the same level takes (eq. 11).
    """

    def __init__(self, in_ch: int, out_ch: int, num_rs3am: int = 4, num_res: int = 4):
        super().__init__()
        self.blocks = nn.ModuleList(RS3AMSR(in_ch, num_res) for _ in range(num_rs3am))
        self.shuffle = nn.PixelShuffle(2)
        self.conv = nn.Conv2d(in_ch // 4, out_ch, 3, padding=1)

    def forward(self, x):
        """(upsampled features, [RS3AM-SR outputs])."""
        feats = []
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        return self.conv(self.shuffle(x)), feats


class GradientModule(nn.Module):
    """The k-th gradient module (eq. 11): RS3AM-G, pixel shuffle, conv; and G_s (eq. 12)."""

    def __init__(self, in_ch: int, out_ch: int, num_out_ch: int, num_branch: int = 4):
        super().__init__()
        self.rs3am = RS3AMG(in_ch, num_branch)
        self.shuffle = nn.PixelShuffle(2)
        self.conv = nn.Conv2d(in_ch // 4, out_ch, 3, padding=1)
        self.to_grad = nn.Conv2d(out_ch, num_out_ch, 3, padding=1)

    def forward(self, x, sr_feats):
        """The spatial structure feature map F_k^grad."""
        return self.conv(self.shuffle(self.rs3am(x, sr_feats)))


class GPSR(nn.Module):
    """Gradient-prior-based super-resolution network (seed 002 section 3).

    Args:
        num_in_ch: input bands.
        num_out_ch: output bands.
        upscale: S = 2, 4 or 8; N = log2(S) encoders, decoders and gradient modules.
        num_feat: channels C of F_0 (after the first conv, at HR).
        max_feat: widest features. Each encoder doubles the channels (eq. 3)
            up to this width; None means no cap.
        num_rs3am: RS3AM-SR per decoder (M = 4), and so branches per RS3AM-G.
        num_res: residual levels in each RS3AM-SR's CRFS (4, eq. 19).

    Choices where section 3 is open (no code was published):
    - F_i has ``min(C * 2**i, max_feat)`` channels. Decoder j works at the
      width of its input F_{N-j+1} and ends at the width of F_{N-j}.
    - The fused feature ``[F_{N-j}, F'_j, F_j^grad]`` (eq. 6) has three times
      the width of F_{N-j}; a 1x1 conv brings it back before the next
      decoder, which otherwise would widen at every level.
    - Section 4.1.3 gives M and N but no widths. C = 28 with a cap of 4C
      comes nearest the paper's counts: 8.42M parameters at x4 (paper
      8.18M) and 15.25M at x8 (paper 14.42M). Uncapped, x8's first decoder
      would be 8C wide and the network (35.2M) 2.4 times the paper's size.
    - The output conv (eq. 7) has no global residual; F_0, the first conv
      of the bicubic image, reaches it through the last skip.
    """

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, upscale: int = 4, num_feat: int = 28,
                 max_feat: Optional[int] = 112, num_rs3am: int = 4, num_res: int = 4):
        super().__init__()
        if upscale not in (2, 4, 8):
            raise ValueError(f"GPSR upscale must be 2, 4 or 8, not {upscale}")
        self.upscale = upscale
        n = int(math.log2(upscale))
        self.width = [min(num_feat * 2 ** i, max_feat or num_feat * 2 ** i) for i in range(n + 1)]
        if any(w % 4 for w in self.width):
            raise ValueError("GPSR widths must divide by 4 (pixel shuffle)")
        w = self.width
        self.first = nn.Conv2d(num_in_ch, w[0], 3, padding=1)
        self.encoders = nn.ModuleList(Encoder(w[i], w[i + 1]) for i in range(n))
        self.grad_first = nn.Conv2d(num_in_ch, w[n], 3, padding=1)
        # Decoder j (1-based) goes from the width of F_{N-j+1} to that of F_{N-j}.
        if num_rs3am < 1:
            raise ValueError("GPSR needs at least one RS3AM-SR per decoder")
        self.decoders = nn.ModuleList(Decoder(w[n - j], w[n - j - 1], num_rs3am, num_res) for j in range(n))
        self.grad_modules = nn.ModuleList(GradientModule(w[n - j], w[n - j - 1], num_out_ch, num_rs3am)
                                          for j in range(n))
        self.fuse = nn.ModuleList(nn.Conv2d(3 * w[n - j - 1], w[n - j - 1], 1) for j in range(n - 1))
        self.last = nn.Conv2d(3 * w[0], num_out_ch, 3, padding=1)

    def forward(self, x, return_gradients: bool = False):
        """Super-resolve ``x`` (N, C, h, w) to (N, C, h*S, w*S).

        With ``return_gradients`` also return the gradient maps G_1..G_N
        (eq. 12), at 2, 4, ... times the input's size, for the multi-scale
        supervision of eq. 13-14.
        """
        up = F.interpolate(x, scale_factor=self.upscale, mode="bicubic", align_corners=False)
        skips = [self.first(up)]
        for enc in self.encoders:
            skips.append(enc(skips[-1]))
        n = len(self.encoders)
        feat, grad = skips[n], self.grad_first(gradient_magnitude(x))
        maps = []
        for j, (dec, gm) in enumerate(zip(self.decoders, self.grad_modules)):
            out, sr_feats = dec(feat)
            grad = gm(grad, sr_feats)
            if return_gradients:
                maps.append(gm.to_grad(grad))
            feat = torch.cat([skips[n - j - 1], out, grad], dim=1)
            if j < n - 1:
                feat = self.fuse[j](feat)
        sr = self.last(feat)
        return (sr, maps) if return_gradients else sr

    def receptive_radius(self) -> int:
        """How many LR pixels beyond a tile can change its interior outputs.

        Follows the data flow with each tensor's reach in LR pixels: a 3x3
        conv adds one pixel of its resolution, a pixel shuffle the part of a
        coarse pixel a fine one may lie in, an LRSAM ``LRSAM.RADIUS`` pixels.
        Rounded up to a multiple of 3 LR pixels: LRSAM's 3x3 cells start at
        the window's origin, so tiles equal a one-piece run only when their
        windows start on a 3-pixel grid (``TILE_MULTIPLE``).
        """
        s = self.upscale
        n = len(self.encoders)
        skips = [2 + 1 / s]                           # bicubic (2 LR px), then a conv at HR
        for i in range(n):
            u = 2 ** i / s                            # pixel size at encoder i's input
            skips.append(skips[-1] + 2 * u + 2 * u)   # strided conv (and its stride), conv
        feat, grad = skips[n], 2.0                    # g(I_LR): 1 px, conv: 1 px
        block = self.decoders[0].blocks[0].radius()
        for j in range(n):
            u = 2.0 ** -j                             # decoder j's input resolution
            sr_feats = [feat + (m + 1) * block * u for m in range(len(self.decoders[j].blocks))]
            out = sr_feats[-1] + u
            h = grad                                  # RS3AM-G: branch m reads sr_feats[m] and h
            for src in sr_feats:
                h = max(h, max(src, h + 2 * u) + (LRSAM.RADIUS + 1) * u)
            grad = h + u
            feat = max(skips[n - j - 1], out, grad)
        r = int(math.ceil(feat + 1 / s)) + 1
        return r + (-r) % TILE_MULTIPLE


#: Tiles equal a one-piece run when their windows start on this LR grid (LRSAM's stride).
TILE_MULTIPLE = 3
