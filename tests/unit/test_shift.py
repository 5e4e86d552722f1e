"""No sub-pixel shift: SR and HR truth align within 0.1 input pixels, every model and scale."""
import numpy as np
import pytest
import torch

from backend.job import super_resolve_array
from backend.metrics import phase_shift
from backend.registry import MODELS
from backend.resample import degrade
from helpers import AERIAL, LANDSAT, read

CASES = [(m.name, s) for m in MODELS for s in m.scales]


def _pair(path, scale, band):
    hr = read(path)[band:band + 1, :128, :128]
    lr = degrade(torch.from_numpy(hr.astype(np.float64))[None], scale, hr.dtype)[0].numpy().astype(hr.dtype)
    return hr, lr


@pytest.mark.parametrize("model,scale", CASES)
@pytest.mark.parametrize("path", [AERIAL, LANDSAT], ids=["aerial", "landsat"])
def test_sr_is_aligned_with_truth(model, scale, path):
    if scale not in dict.fromkeys(next(m for m in MODELS if m.name == model).available_scales()):
        pytest.fail(f"{model} has no weights for x{scale}")
    hr, lr = _pair(path, scale, 1)
    sr = super_resolve_array(lr, scale, model, 0, device="cpu")
    dy, dx = phase_shift(sr[0].astype(float), hr[0].astype(float), max_freq=0.5 / scale)
    assert abs(dy) / scale < 0.1 and abs(dx) / scale < 0.1, (dy / scale, dx / scale)


def test_half_pixel_grid_error_is_detected():
    hr, lr = _pair(AERIAL, 4, 1)
    sr = super_resolve_array(lr, 4, "bicubic", 0, device="cpu")[0].astype(float)
    shifted = np.roll(sr, 2, axis=1)  # half an input pixel at x4
    dy, dx = phase_shift(shifted, hr[0].astype(float), max_freq=0.5 / 4)
    assert abs(dx) / 4 > 0.4
