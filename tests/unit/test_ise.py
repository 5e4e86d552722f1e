"""ISE (seed 000, Algorithm 1) drives the result towards consistency with the LR input."""
import numpy as np
import pytest
import torch

from backend.engine import ise
from backend.job import super_resolve_array
from backend.metrics import lr_consistency
from backend.resample import degrade, torch_downsample, torch_upsample
from helpers import AERIAL, LANDSAT, read


def _lr(path, scale):
    hr = read(path)[:, :96, :96]
    return degrade(torch.from_numpy(hr.astype(np.float64))[None], scale, hr.dtype)[0].numpy().astype(hr.dtype)


@pytest.mark.parametrize("model,path,rgb", [("bicubic", LANDSAT, False), ("dganet", AERIAL, True),
                                            ("dganet", LANDSAT, False)])
def test_ise_lowers_lr_inconsistency(model, path, rgb):
    """Away from the raster's edge (3 LR px) 5 iterations remove most of it. At the
    edge the metric's downsampling and ISE's both clamp, differently: on this 24 px
    LR crop through the x4 Landsat weights the whole image only goes 0.23 -> 0.14 %,
    the interior 3.9 -> 0.19 DN."""
    lr = _lr(path, 4)
    r = float(lr.max() - lr.min())
    inner = (slice(None), slice(3, -3), slice(3, -3))
    before = super_resolve_array(lr, 4, model, 0, rgb=rgb, device="cpu")
    after = super_resolve_array(lr, 4, model, 5, rgb=rgb, device="cpu")
    c0 = lr_consistency(before.astype(np.float64), lr, 4, r)
    c5 = lr_consistency(after.astype(np.float64), lr, 4, r)
    assert c5 < 0.8 * c0, (c0, c5)
    down = [torch_downsample(torch.from_numpy(sr.astype(np.float64))[None], 4, "bicubic")[0].numpy()[inner]
            for sr in (before, after)]
    e0, e5 = (float(np.sqrt(np.mean((d - lr[inner]) ** 2))) for d in down)
    assert e5 < 0.2 * e0, (e0, e5)


def test_ise_iterations_monotone_on_float_tensor():
    lr = torch.from_numpy(_lr(LANDSAT, 2).astype(np.float32) / 10000)[None]
    sr = torch_upsample(lr, 2, "bilinear")
    errs = []
    for n in (0, 1, 3, 10):
        out = ise(sr, lr, 2, n, "bicubic")
        errs.append(float((torch_downsample(out, 2, "bicubic") - lr).abs().mean()))
    assert errs == sorted(errs, reverse=True) and errs[-1] < 0.05 * errs[0]


def test_paper_bilinear_kernel_is_selectable():
    """ISE with the paper's bilinear kernel makes the result consistent under that kernel's downsampling."""
    lr = _lr(LANDSAT, 4)
    r = float(lr.max() - lr.min())

    def bilinear_down(sr):
        # torch's bilinear x4 without antialiasing samples between HR pixels 4i+1 and 4i+2
        s = sr.astype(np.float64)
        return 0.25 * (s[:, 1::4, 1::4] + s[:, 2::4, 1::4] + s[:, 1::4, 2::4] + s[:, 2::4, 2::4])

    def rmse_pct(sr, down):
        return float(np.sqrt(np.mean((down(sr) - lr) ** 2)) / r * 100)

    plain = super_resolve_array(lr, 4, "bicubic", 0, device="cpu")
    a = super_resolve_array(lr, 4, "bicubic", 3, device="cpu", ise_kernel="bilinear")
    b = super_resolve_array(lr, 4, "bicubic", 3, device="cpu", ise_kernel="bicubic")
    # bilinear ISE: bilinear-consistent, far more than without ISE or with the bicubic kernel
    assert rmse_pct(a, bilinear_down) < 0.1 * min(rmse_pct(plain, bilinear_down), rmse_pct(b, bilinear_down))
    # and the matched kernel is consistent under its own (antialiased bicubic) operator instead
    assert lr_consistency(b.astype(np.float64), lr, 4, r) < 0.5 * lr_consistency(a.astype(np.float64), lr, 4, r)


def test_ise_ignores_nodata_pixels():
    lr = torch.from_numpy(_lr(LANDSAT, 2).astype(np.float32) / 10000)[None]
    valid = torch.ones_like(lr)
    valid[..., 10:20, 10:20] = 0
    sr = torch_upsample(lr, 2, "bicubic")
    other = lr.clone()
    other[..., 10:20, 10:20] = 5.0          # whatever sits under the nodata does not matter
    a = ise(sr, lr, 2, 4, "bicubic", valid)
    b = ise(sr, other, 2, 4, "bicubic", valid)
    torch.testing.assert_close(a, b)
    assert not torch.allclose(ise(sr, lr, 2, 4, "bicubic"), ise(sr, other, 2, 4, "bicubic"))


@pytest.mark.parametrize("path,scale", [(AERIAL, 4), (LANDSAT, 4), (LANDSAT, 2)])
def test_matched_ise_costs_no_psnr_and_reaches_half_a_percent(path, scale):
    """The issue's ISE target on real held-out crops, with the weights picked automatically."""
    from backend.evaluate import evaluate_file
    r0, r5 = evaluate_file(str(path), scale, ["dganet"], [0, 5], device="cpu")
    assert r5.psnr >= r0.psnr - 0.05
    assert r5.lr_consistency < min(0.5, r0.lr_consistency)
