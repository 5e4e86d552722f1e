"""GPSR (seed 002) is built as section 3 says; its gradient branch and radius are honest."""
import numpy as np
import pytest
import torch
from torch import nn

from backend.losses import gradient_magnitude
from backend.models.gpsr import GPSR, LRSAM, RS3AMG, RS3AMSR, TILE_MULTIPLE
from backend.registry import get_model
from helpers import AERIAL, read

#: Seed 002 Table 4: parameters at x4 and x8.
PAPER = {4: 8.18e6, 8: 14.42e6}


def _params(m):
    return sum(p.numel() for p in m.parameters())


def _real_lr(h, w, bands=3):
    return torch.from_numpy(read(AERIAL)[:bands, 20:20 + h, 10:10 + w].astype(np.float32) / 255)[None]


def test_full_configuration_parameter_counts_next_to_the_paper():
    counts = {s: _params(GPSR(3, 3, s)) for s in (4, 8)}
    assert counts == {4: 8_419_185, 8: 15_253_048}
    # +2.9% at x4 and +5.8% at x8: the paper gives no widths (see GPSR's docstring)
    assert abs(counts[4] - PAPER[4]) / PAPER[4] < 0.03
    assert abs(counts[8] - PAPER[8]) / PAPER[8] < 0.06
    # without the width cap x8 would be far from the paper's count
    assert _params(GPSR(3, 3, 8, max_feat=None)) > 2 * PAPER[8]


def test_layout_follows_section_3():
    for scale, n in ((2, 1), (4, 2), (8, 3)):
        net = GPSR(3, 3, scale)
        assert len(net.encoders) == len(net.decoders) == len(net.grad_modules) == n   # N = log2(S)
        assert all(e.down.stride == (2, 2) for e in net.encoders)
    net = GPSR(3, 3, 4)
    assert net.width == [28, 56, 112]
    assert all(len(d.blocks) == 4 and isinstance(d.blocks[0], RS3AMSR) for d in net.decoders)   # M = 4
    assert all(len(b.branches) == 4 for d in net.decoders for b in d.blocks)                   # CRFS levels
    assert all(isinstance(g.rs3am, RS3AMG) and len(g.rs3am.branches) == 4 for g in net.grad_modules)
    # decoder: pixel shuffle then a conv; j-th decoder ends at the width of F_{N-j}
    assert [(d.conv.in_channels, d.conv.out_channels) for d in net.decoders] == [(28, 56), (14, 28)]
    lrsam = net.decoders[0].blocks[0].attention[0]
    assert lrsam.down.stride == (3, 3) and lrsam.pool.kernel_size == 7 and lrsam.shuffle.upscale_factor == 3
    # skip fusion [F_{N-j}, F'_j, F_j^grad] (eq. 6): three equal parts
    assert net.fuse[0].in_channels == 3 * 56 and net.last.in_channels == 3 * 28


def test_gradient_branch_starts_from_g_of_the_lr_image():
    torch.manual_seed(0)
    net = get_model("gpsr").build(3, 4).eval()
    seen = []
    net.grad_first.register_forward_hook(lambda m, inp, out: seen.append(inp[0]))
    x = _real_lr(12, 15)
    with torch.no_grad():
        net(x)
    torch.testing.assert_close(seen[0], gradient_magnitude(x))
    # eq. 9's kernels: central differences, so a unit ramp has gradient 2
    ramp = torch.arange(6.0).repeat(6, 1)[None, None]
    assert torch.allclose(gradient_magnitude(ramp, eps=0.0)[..., 1:-1], torch.tensor(2.0))


def test_rs3am_g_takes_the_decoders_intermediate_features():
    torch.manual_seed(0)
    net = get_model("gpsr").build(3, 4).eval()
    x = _real_lr(9, 9)
    with torch.no_grad():
        feat = net.encoders[1](net.encoders[0](net.first(torch.nn.functional.interpolate(
            x, scale_factor=4, mode="bicubic", align_corners=False))))
        _out, sr_feats = net.decoders[0](feat)
        g = net.grad_first(gradient_magnitude(x))
        a = net.grad_modules[0].rs3am(g, sr_feats)
        b = net.grad_modules[0].rs3am(g, [f + 0.1 for f in sr_feats])
    assert len(sr_feats) == len(net.decoders[0].blocks)
    assert (a - b).abs().max() > 1e-3                 # eq. 23: the SR branch's features feed it


@pytest.mark.parametrize("scale", [2, 4, 8])
@pytest.mark.parametrize("size", [(13, 11), (8, 8), (7, 20)])
def test_output_and_gradient_map_shapes(scale, size):
    net = get_model("gpsr").build(3, scale).eval()
    x = _real_lr(*size)
    with torch.no_grad():
        y, maps = net(x, return_gradients=True)
        assert torch.equal(net(x), y)
    h, w = size
    assert y.shape == (1, 3, h * scale, w * scale)
    # G_s at 2, 4, ... times the LR size: the sizes of g(down(I_HR)) of eq. 13
    assert [m.shape for m in maps] == [(1, 3, h * 2 ** s, w * 2 ** s) for s in range(1, len(maps) + 1)]


def test_lrsam_rescales_by_a_map_shared_over_channels():
    torch.manual_seed(0)
    att = LRSAM(16)
    x = torch.rand(1, 16, 10, 14)
    ratio = att(x) / x
    torch.testing.assert_close(ratio, ratio[:, :1].expand_as(ratio))      # one spatial map
    assert torch.all(ratio > 0) and torch.all(ratio < 1) and ratio.std() > 1e-4


def test_receptive_radius_bounds_the_dependency():
    torch.manual_seed(0)
    net = get_model("gpsr").build(1, 2).eval()
    r = net.receptive_radius()
    assert r % TILE_MULTIPLE == 0
    x = torch.rand(1, 1, r + 24, 9)
    y = x.clone()
    y[..., 0, 0] += 5.0
    with torch.no_grad():
        d = (net(x) - net(y)).abs()[0, 0]
    assert d[2 * (r + 1):].max() == 0
    # The bound adds up the longest path; max-pools and ReLUs stop a change
    # on most paths, so it reaches about 40% of the bound here.
    assert d[2 * (r // 3):].max() > 0
    # one LRSAM reaches its own radius (its 3-px cell, the pool and three convs)
    torch.manual_seed(1)
    att = LRSAM(4).eval()
    x = torch.rand(1, 4, 3, 60)
    y = x.clone()
    y[..., 30] += 5.0
    with torch.no_grad():
        d = (att(x) - att(y)).abs().amax(dim=(0, 1, 2))
    reach = d.nonzero()
    assert reach.min() >= 30 - LRSAM.RADIUS and reach.max() <= 30 + LRSAM.RADIUS
    assert reach.max() - reach.min() > LRSAM.RADIUS


def test_tiles_on_the_three_pixel_grid_equal_one_piece():
    torch.manual_seed(0)
    net = get_model("gpsr").build(1, 2).eval()
    r = net.receptive_radius()
    x = torch.rand(1, 1, 3 * r + 6, 9)
    with torch.no_grad():
        whole = net(x)
        on_grid = net(x[..., 3:, :])
        off_grid = net(x[..., 1:, :])
    core = slice(2 * (r + 3), 2 * (2 * r + 3))     # rows more than r from every window's edge
    torch.testing.assert_close(on_grid[..., core.start - 6:core.stop - 6, :], whole[..., core, :],
                               rtol=0, atol=1e-5)
    # off the grid LRSAM's 3x3 cells fall elsewhere: not equal
    assert (off_grid[..., core.start - 2:core.stop - 2, :] - whole[..., core, :]).abs().max() > 1e-4
