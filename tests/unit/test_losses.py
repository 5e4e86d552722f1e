"""Losses against hand-computed values, and one optimisation step on real patches."""
import numpy as np
import pytest
import torch

from backend.losses import LOSSES, gradient_aware, gradient_magnitude, l1, l2, second_order_gradient, sobel


def test_l1_l2_by_hand():
    a = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])
    b = torch.tensor([[[[1.0, 1.0], [0.0, 3.0]]]])
    assert float(l1(a, b)) == pytest.approx((1 + 0 + 2 + 0) / 4)
    assert float(l2(a, b)) == pytest.approx((1 + 0 + 4 + 0) / 4)


def test_sobel_on_a_ramp():
    ramp = torch.arange(5.0).repeat(5, 1)[None, None]        # value = column index
    g = sobel(ramp)
    # interior: d/dx of a unit ramp with the Sobel kernel is 1+2+1 = 4 (times 2 px) = 8; d/dy is 0
    assert torch.all(g[0, 0, 1:-1, 1:-1] == 8) and torch.all(g[0, 1] == 0)


def test_gradient_aware_by_hand():
    hr = torch.zeros(1, 1, 3, 3)
    sr = torch.zeros(1, 1, 3, 3)
    sr[0, 0, 1, 1] = 1.0
    # L1 = 1/9; Sobel responses of a unit impulse: |kernel| sums 8 (x) + 8 (y) over 2*9 values
    expected = 1 / 9 + 0.1 * (8 + 8) / 18
    assert float(gradient_aware(sr, hr)) == pytest.approx(expected, rel=1e-6)


def test_gradient_magnitude_and_sg_by_hand():
    ramp = torch.arange(5.0).repeat(5, 1)[None, None]
    g = gradient_magnitude(ramp, eps=0.0)
    assert torch.allclose(g[0, 0, :, 1:-1], torch.full((5, 3), 2.0))   # central difference of a unit ramp
    # a ramp's gradient is constant inside, so its second-order map is 0 there
    gg = gradient_magnitude(gradient_magnitude(ramp, 0.0), 0.0)
    assert torch.all(gg[0, 0, :, 2:-2] == 0)
    assert float(second_order_gradient(ramp, ramp)) == 0.0


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_one_step_lowers_the_loss_on_real_patches(name):
    from backend.models.dganet import DGANet
    from backend.resample import degrade
    from helpers import AERIAL, read
    torch.manual_seed(0)
    hr = torch.from_numpy(read(AERIAL)[:, :64, :64].astype(np.float32))[None]
    lr = degrade(hr, 2, np.uint8) / 255
    hr = hr / 255
    net = DGANet(3, 3, upscale=2)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    loss = LOSSES[name](net(lr), hr)
    opt.zero_grad()
    loss.backward()
    opt.step()
    with torch.no_grad():
        assert float(LOSSES[name](net(lr), hr)) < float(loss)


def test_degan_losses_by_hand():
    import math
    from backend.losses import degan_generator_loss, discriminator_loss
    hr = torch.zeros(1, 1, 2, 2)
    sr = torch.full((1, 1, 2, 2), 0.5)
    # content only: 0.5 * MSE
    assert float(degan_generator_loss(sr, hr)) == pytest.approx(0.5 * 0.25)
    # + 0.1 * -log D(SR), D(SR) = sigmoid(0) = 0.5
    logits = torch.zeros(1)
    assert float(degan_generator_loss(sr, hr, logits)) == pytest.approx(0.125 + 0.1 * math.log(2))
    # + 0.5 * perceptual, whatever callable computes it
    assert float(degan_generator_loss(sr, hr, None, lambda a, b: torch.tensor(2.0))) == pytest.approx(1.125)
    # eq. 27: -log D(HR) - log(1 - D(SR))
    real, fake = torch.tensor([2.0]), torch.tensor([-1.0])
    expected = -math.log(1 / (1 + math.exp(-2))) - math.log(1 - 1 / (1 + math.exp(1)))
    assert float(discriminator_loss(real, fake)) == pytest.approx(expected, rel=1e-6)


def test_gpsr_loss_by_hand():
    import torch.nn.functional as F
    from backend.losses import gpsr_loss
    torch.manual_seed(0)
    hr = torch.rand(1, 1, 16, 16)
    sr = hr + 0.1
    down = F.interpolate(hr, size=(8, 8), mode="bicubic", align_corners=False, antialias=True)
    exact = [gradient_magnitude(down), gradient_magnitude(hr)]   # G_1 at 8x8, G_2 at 16x16
    # perfect gradient maps: L1 plus 0.001 * L1 of the SR's gradient map (a constant shift: 0)
    assert float(gpsr_loss(sr, exact, hr)) == pytest.approx(0.1, rel=1e-5)
    # each map's error counts 0.1 (eq. 14 sums over scales)
    off = [exact[0] + 0.5, exact[1] + 0.25]
    assert float(gpsr_loss(sr, off, hr)) == pytest.approx(0.1 + 0.1 * (0.5 + 0.25), rel=1e-5)
    bumped = sr.clone()
    bumped[..., 8, 8] += 1.0
    assert float(gpsr_loss(bumped, exact, hr)) > float(gpsr_loss(sr, exact, hr)) + 1e-3 / 256
