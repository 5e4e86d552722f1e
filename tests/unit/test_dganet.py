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


def _last_up_outputs(net, x):
    """Bytes of each output of the last UpBlock's conv during a bf16 inference forward."""
    seen = []
    hook = net.up[-1].conv.register_forward_hook(lambda _m, _i, out: seen.append(out.nelement() * out.element_size()))
    try:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            net(x.contiguous(memory_format=torch.channels_last))
    finally:
        hook.remove()
    return seen


def test_inference_strips_give_the_one_pass_result():
    torch.manual_seed(0)
    for scale in (2, 4, 8):
        net = DGANet(1, 1, upscale=scale).eval()
        x = torch.rand(1, 1, 2 * max(32, DGANet.STRIP_ROWS_X_S2 // scale ** 2) + 9, 40)
        with torch.inference_mode():
            strips = net(x)
        whole = net(x).detach()   # grad enabled: one pass, no strips
        torch.testing.assert_close(strips, whole, atol=1e-5, rtol=1e-5)


def test_strips_of_a_wide_tile_stay_within_a_thread_heap():
    """A 542 px wide x4 tile: each strip's largest tensor within STRIP_BYTES, so a
    run in a worker thread keeps it in glibc's heap (backend/allocator.py)."""
    net = DGANet(3, 3, upscale=4).eval().to(memory_format=torch.channels_last)
    seen = _last_up_outputs(net, torch.rand(1, 3, 200, 542))
    assert len(seen) > 2 and max(seen) <= DGANet.STRIP_BYTES
    # never thinner than 32 rows, however wide: the halo would cost more than it saves
    assert net.strip_rows(20000, 4) == 32
    # narrow tiles keep the long strips
    assert net.strip_rows(256, 2) == DGANet.STRIP_ROWS_X_S2 // 16
