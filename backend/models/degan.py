"""DEGAN, the diffusion-enhanced GAN of seed 001 (sections 2.1-2.4).

Generator (section 2.2): convolutions 3->16->32->64->128, residual blocks
with a long skip (eq. 5-7), CBAM (section 2.2.2), one x2 sub-pixel step
per factor of two (eq. 9), the U-Net "diffusion module" with a time
embedding and a one-layer Transformer encoder at its bottleneck (section
2.2.1), convolutions 128->64->32->16->3 and tanh (eq. 11-15).
Discriminator (section 2.3): Conv-BN-LeakyReLU blocks, adaptive average
pooling to 6x6, fc, LeakyReLU, fc.

The engine sees ``DEGAN``, a wrapper that maps the run's normalised units
(per-band 0.5-99.5 percentiles to about [0, 1]) to the generator's tanh
range [-1, 1] and back, so it is called like every other network.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .dganet import ResBlock, UpBlock


class ResidualBlock(ResBlock):
    """Conv-ReLU-Conv plus identity (seed 001 section 2.2, eq. 5-7).

    The paper names only "convolutional layers and skip connections"; we
    take EDSR's block without batch normalisation, the one DGANet uses.
    """


class CBAM(nn.Module):
    """Channel then spatial attention (seed 001 section 2.2.2, Figure 3).

    Args:
        num_feat: channels of the features.
        reduction: reduction ratio of the shared MLP (16 in the paper).
        spatial_kernel: kernel of the spatial-attention convolution (7).

    Section 2.2.2 computes ``X_sa = M_s * X_ca`` and then writes "the final
    output X_cbam = X_ca"; that would leave the spatial branch unused, so we
    return ``X_sa`` as CBAM (Woo et al. 2018) does.
    """

    def __init__(self, num_feat: int, reduction: int = 16, spatial_kernel: int = 7):
        super().__init__()
        hidden = max(num_feat // reduction, 1)
        # The shared MLP: two 1x1 convolutions with a ReLU between them.
        self.mlp = nn.Sequential(nn.Conv2d(num_feat, hidden, 1), nn.ReLU(inplace=True),
                                 nn.Conv2d(hidden, num_feat, 1))
        self.spatial = nn.Conv2d(2, 1, spatial_kernel, padding=spatial_kernel // 2)

    def forward(self, x):
        """Reweight ``x`` by channel, then by position."""
        avg = F.adaptive_avg_pool2d(x, 1)
        mx = F.adaptive_max_pool2d(x, 1)
        x = x * torch.sigmoid(self.mlp(avg) + self.mlp(mx))
        stats = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.spatial(stats))


class SubPixelUp(UpBlock):
    """DGANet's up-block (a 3x3 conv to 4x the features, a x2 pixel shuffle), then a ReLU (eq. 9)."""

    def forward(self, x):
        """Upscale the features by two."""
        return F.relu(super().forward(x))


class TransformerLayer(nn.Module):
    """One post-norm Transformer encoder layer (Vaswani et al. 2017) over (N, L, d).

    Args:
        dim: token width d.
        num_heads: attention heads.
        ff_dim: feed-forward width.
        dropout: the rate applied to each sub-layer's output before it is
            added to its input, and inside the feed-forward (the original
            Transformer's "residual dropout", section 5.4).

    The same tensors and count as ``torch.nn.TransformerEncoderLayer``;
    unlike it there is no dropout on the attention weights, which would
    force the attention matrix into memory (ten times slower on the CPU).
    Seed 001 gives a rate of 0.1 and does not say where it applies.
    """

    def __init__(self, dim: int, num_heads: int, ff_dim: int, dropout: float = 0.1):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ff1 = nn.Linear(dim, ff_dim)
        self.ff2 = nn.Linear(ff_dim, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        """Self-attention then feed-forward, each with residual and LayerNorm."""
        n, length, d = x.shape
        q, k, v = self.qkv(x).view(n, length, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(n, length, d)
        x = self.norm1(x + self.drop(self.proj(a)))
        return self.norm2(x + self.drop(self.ff2(self.drop(F.relu(self.ff1(x))))))


class DiffusionModule(nn.Module):
    """The U-Net "diffusion module" of seed 001 section 2.2.1 (Figure 2).

    Args:
        in_ch: channels in (the sub-pixel features, 128).
        out_ch: channels out (128: conv44 takes 128).
        base: C_base; the bottleneck has 4 * base channels (256 in the paper).
        time_hidden: hidden width of the time MLP (256).
        num_heads: attention heads of the Transformer layer (4).
        ff_dim: feed-forward width of the Transformer layer (1024).
        dropout: Transformer dropout (0.1).

    Encoder: three 3x3 convs with ReLU, strides 1, 2, 2. The time step t is
    embedded by Linear(1, time_hidden)-ReLU-Linear(time_hidden, 4 * base)
    and added to the bottleneck; the bottleneck is flattened to a sequence
    and passed through one Transformer encoder layer (``TransformerLayer``).
    The paper names no positional encoding, and we add none. Decoder: two 4x4 stride-2 transposed convs with ReLU, each plus a
    1x1 conv of the encoder feature of its scale, and a 3x3 output conv.
    Inputs whose sides do not divide by 4 are padded (replicate) and cropped.
    """

    def __init__(self, in_ch: int = 128, out_ch: int = 128, base: int = 64, time_hidden: int = 256,
                 num_heads: int = 4, ff_dim: int = 1024, dropout: float = 0.1):
        super().__init__()
        width = base * 4
        self.enc1 = nn.Conv2d(in_ch, base, 3, 1, 1)
        self.enc2 = nn.Conv2d(base, base * 2, 3, 2, 1)
        self.enc3 = nn.Conv2d(base * 2, width, 3, 2, 1)
        self.time_mlp = nn.Sequential(nn.Linear(1, time_hidden), nn.ReLU(inplace=True),
                                      nn.Linear(time_hidden, width))
        self.transformer = TransformerLayer(width, num_heads, ff_dim, dropout)
        self.dec1 = nn.ConvTranspose2d(width, base * 2, 4, 2, 1)
        self.skip2 = nn.Conv2d(base * 2, base * 2, 1)
        self.dec2 = nn.ConvTranspose2d(base * 2, base, 4, 2, 1)
        self.skip1 = nn.Conv2d(base, base, 1)
        self.out = nn.Conv2d(base, out_ch, 3, 1, 1)

    def forward(self, x, t):
        """Refine features ``x`` (N, C, H, W) at noise level ``t`` (N,) in [0, 1]."""
        h, w = x.shape[-2:]
        ph, pw = (-h) % 4, (-w) % 4
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        x1 = F.relu(self.enc1(x))
        x2 = F.relu(self.enc2(x1))
        x3 = F.relu(self.enc3(x2))
        x3 = x3 + self.time_mlp(t.to(x3.dtype).reshape(-1, 1))[:, :, None, None]
        n, c, hb, wb = x3.shape
        seq = self.transformer(x3.flatten(2).transpose(1, 2))
        x3 = seq.transpose(1, 2).reshape(n, c, hb, wb)
        d1 = F.relu(self.dec1(x3)) + self.skip2(x2)
        d2 = F.relu(self.dec2(d1)) + self.skip1(x1)
        return self.out(d2)[..., :h, :w]


class DEGANGenerator(nn.Module):
    """DEGAN's generator (seed 001 section 2.2, eq. 1-15), in tanh units.

    Args:
        num_in_ch: input channels (3 in the paper).
        num_out_ch: output channels.
        upscale: 2, 4 or 8; one sub-pixel step per factor of two.
        num_feat: channels after the head and in the residual blocks (128).
        num_block: residual blocks. The paper does not give the count; 14
            is what its parameter counts (6.99M at x2, 7.58M at x4) imply.
        head_channels: the widening convs before ``num_feat`` (16, 32, 64).
        tail_channels: the narrowing convs after the diffusion module (64, 32, 16).
        diff_base: C_base of the diffusion module (64: a 256-wide bottleneck).
        time_hidden, num_heads, ff_dim, dropout: see ``DiffusionModule``.
        reduction: CBAM's reduction ratio (16).
        train_noise: in training, perturb the diffusion module's input.
        global_residual: add the bicubic upsampling of the input to tanh's
            output (not in the paper, whose eq. 15 makes tanh's output the
            image). See ``backend/registry.py`` for why the shipped DEGAN has it.

    Eq. 1-4 and 11-14 print bare convolutions; a stack of convolutions
    without activations would collapse into one, so each is followed by a
    ReLU (the last one by tanh, eq. 15). All kernels are 3x3.

    The time step (section 2.2.1): the paper treats "the noise level as the
    diffusion step t" but the generator is a single pass with no sampling
    loop. We make t the noise level of the diffusion module's input: in
    training each sample draws t ~ U(0, 1) and its features get Gaussian
    noise of t times their standard deviation, so the module learns to
    denoise at every level; at inference nothing is added and t = 0, the
    end of the reverse process, where the paper's noise has been removed.
    """

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, upscale: int = 4, num_feat: int = 128,
                 num_block: int = 14, head_channels: Tuple[int, ...] = (16, 32, 64),
                 tail_channels: Tuple[int, ...] = (64, 32, 16), diff_base: int = 64,
                 time_hidden: int = 256, num_heads: int = 4, ff_dim: int = 1024, dropout: float = 0.1,
                 reduction: int = 16, train_noise: bool = True, global_residual: bool = False):
        super().__init__()
        if upscale not in (2, 4, 8):
            raise ValueError(f"DEGAN upscale must be 2, 4 or 8, not {upscale}")
        self.upscale = upscale
        self.num_block = num_block
        self.train_noise = train_noise
        self.global_residual = global_residual
        chans = (num_in_ch,) + tuple(head_channels) + (num_feat,)
        self.head = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1) for a, b in zip(chans[:-1], chans[1:]))
        self.body = nn.Sequential(*[ResidualBlock(num_feat) for _ in range(num_block)])
        self.cbam = CBAM(num_feat, reduction)
        self.up = nn.Sequential(*[SubPixelUp(num_feat) for _ in range(int(math.log2(upscale)))])
        self.diffusion = DiffusionModule(num_feat, num_feat, diff_base, time_hidden, num_heads, ff_dim, dropout)
        chans = (num_feat,) + tuple(tail_channels) + (num_out_ch,)
        self.tail = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1) for a, b in zip(chans[:-1], chans[1:]))

    def forward(self, x, t: Optional[torch.Tensor] = None):
        """Map an LR image in [-1, 1] (N, C, h, w) to an SR image in (-1, 1).

        With ``global_residual`` the bicubic image is added, so the result
        may leave (-1, 1) by up to tanh's range.
        """
        base = (F.interpolate(x, scale_factor=self.upscale, mode="bicubic", align_corners=False)
                if self.global_residual else None)
        for conv in self.head:
            x = F.relu(conv(x))
        x = x + self.body(x)
        x = self.up(self.cbam(x))
        if t is None:
            if self.training and self.train_noise:
                t = torch.rand(x.shape[0], device=x.device)
                std = x.detach().float().flatten(1).std(dim=1)
                x = x + (t * std).to(x.dtype)[:, None, None, None] * torch.randn_like(x)
            else:
                t = torch.zeros(x.shape[0], device=x.device)
        x = self.diffusion(x, t)
        for conv in self.tail[:-1]:
            x = F.relu(conv(x))
        out = torch.tanh(self.tail[-1](x))
        return out if base is None else out + base


class DEGAN(nn.Module):
    """DEGAN as the engine calls it: normalised units in and out.

    Args:
        num_in_ch, num_out_ch, upscale: as for ``DEGANGenerator``.
        out_range: the normalised interval mapped onto tanh's [-1, 1]. The
            run's normalisation puts the 0.5 and 99.5 percentiles at 0 and 1,
            so a few pixels lie outside [0, 1]; (-0.25, 1.25) keeps them
            reachable and keeps [0, 1] away from tanh's flat ends.
        **generator_kwargs: widths and depths passed to ``DEGANGenerator``.
    """

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, upscale: int = 4,
                 out_range: Tuple[float, float] = (-0.25, 1.25), **generator_kwargs):
        super().__init__()
        self.upscale = upscale
        self.centre = (out_range[0] + out_range[1]) / 2
        self.half = (out_range[1] - out_range[0]) / 2
        self.generator = DEGANGenerator(num_in_ch, num_out_ch, upscale, **generator_kwargs)

    def to_tanh(self, x):
        """Normalised units -> the generator's [-1, 1]."""
        return (x - self.centre) / self.half

    def from_tanh(self, y):
        """The generator's [-1, 1] -> normalised units."""
        return y * self.half + self.centre

    def forward(self, x):
        """Super-resolve normalised ``x`` (N, C, h, w) to (N, C, h*s, w*s)."""
        return self.from_tanh(self.generator(self.to_tanh(x)))

    def receptive_radius(self) -> int:
        """LR pixels of context the convolutions reach beyond a tile.

        Counts the convolutions only: CBAM's channel pooling and the
        Transformer attend to the whole input, so DEGAN's output depends on
        the window it runs on whatever the margin (run it on fixed windows).
        At LR: the four head convs, two per residual block, CBAM's 7x7
        (3 px) and the first sub-pixel conv. Finer: one pixel per later
        sub-pixel conv, and at HR the diffusion module's convs (at most
        16 HR px with its strided levels) and the four tail convs.
        """
        g = self.generator
        lr = len(g.head) + 2 * g.num_block + g.cbam.spatial.kernel_size[0] // 2 + 1
        finer = sum(1.0 / 2 ** k for k in range(1, len(g.up)))
        hr = 16 + len(g.tail)
        return int(math.ceil(lr + finer + hr / self.upscale)) + 1


class Discriminator(nn.Module):
    """DEGAN's discriminator (seed 001 section 2.3, eq. 16-24).

    Args:
        num_in_ch: image channels.
        num_feat: ``n_channels`` of the first block.
        num_block: Conv-BN-LeakyReLU blocks; channels double every other
            block and strides alternate 1 and 2. The paper gives no count;
            8 is SRGAN's (Ledig et al. 2017), which this design follows.
        fc_size: width of the first fully connected layer (SRGAN: 1024).
        kernel_size: the blocks' kernel (3).
        negative_slope: LeakyReLU's alpha (eq. 18 leaves it open; 0.2).

    Returns one logit per image; its sigmoid is D(I) of eq. 27.
    """

    def __init__(self, num_in_ch: int = 3, num_feat: int = 64, num_block: int = 8, fc_size: int = 1024,
                 kernel_size: int = 3, negative_slope: float = 0.2):
        super().__init__()
        layers, c_in = [], num_in_ch
        for i in range(num_block):
            c_out = num_feat * 2 ** (i // 2)
            layers += [nn.Conv2d(c_in, c_out, kernel_size, 1 + i % 2, kernel_size // 2),
                       nn.BatchNorm2d(c_out), nn.LeakyReLU(negative_slope, inplace=True)]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(6)
        self.fc1 = nn.Linear(c_in * 36, fc_size)
        self.fc2 = nn.Linear(fc_size, 1)
        self.negative_slope = negative_slope

    def forward(self, x):
        """Logits (N,) that each image is a real HR image."""
        f = self.pool(self.features(x)).flatten(1)
        return self.fc2(F.leaky_relu(self.fc1(f), self.negative_slope))[:, 0]
