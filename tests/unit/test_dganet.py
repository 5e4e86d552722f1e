"""DGANet is built as seed 000 Table 1 says, and its receptive radius is honest."""
import torch
from torch import nn

from backend.models.dganet import DGANet, ResBlock, UpBlock


def test_table1_layout_x8():
    net = DGANet(3, 3, upscale=8)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert all(c.kernel_size == (3, 3) and c.stride == (1, 1) for c in convs)
    assert sum(isinstance(m, ResBlock) for m in net.modules()) == 5
    ups = [m for m in net.modules() if isinstance(m, UpBlock)]
    assert len(ups) == 3 and all(u.conv.out_channels == 64 * 2 * 2 for u in ups)
    assert net.head.out_channels == 64 and net.tail.out_channels == 3
    # Table 1: 32x32 input -> 256x256 output
    assert net(torch.zeros(1, 3, 32, 32)).shape == (1, 3, 256, 256)


def test_one_upblock_per_factor_of_two():
    for scale, n in ((2, 1), (4, 2), (8, 3)):
        assert len(DGANet(1, 1, upscale=scale).up) == n


def test_global_residual_is_bilinear_upsampling():
    net = DGANet(1, 1, upscale=4)
    nn.init.zeros_(net.tail.weight)
    nn.init.zeros_(net.tail.bias)
    x = torch.rand(1, 1, 20, 24)
    expected = torch.nn.functional.interpolate(x, scale_factor=4, mode="bilinear", align_corners=False)
    torch.testing.assert_close(net(x), expected)


def test_receptive_radius_bounds_the_dependency():
    torch.manual_seed(0)
    net = DGANet(1, 1, upscale=4).eval()
    r = net.receptive_radius()
    x = torch.rand(1, 1, 64, 64)
    y = x.clone()
    y[..., 0, 0] += 10.0  # a change at one corner pixel
    with torch.no_grad():
        d = (net(x) - net(y)).abs()[0, 0]
    # outputs whose LR position is more than r pixels from the change are untouched
    assert d[4 * (r + 1):, :].max() == 0 and d[:, 4 * (r + 1):].max() == 0
    # and the change does reach some distance, so r is not just large
    assert d[4 * (r - 4), 0] > 0
