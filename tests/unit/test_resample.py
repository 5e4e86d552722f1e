"""The numpy upsampling used without torch matches torch's, on a real crop."""
import numpy as np
import pytest
import torch

from backend.resample import numpy_upsample, torch_upsample
from helpers import AERIAL, read


@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bicubic"])
@pytest.mark.parametrize("scale", [2, 4, 8])
def test_numpy_upsample_matches_torch(mode, scale):
    img = read(AERIAL)[:, :40, :36].astype(np.float32) / 255
    ours = numpy_upsample(img, scale, mode)
    ref = torch_upsample(torch.from_numpy(img)[None], scale, mode)[0].numpy()
    assert ours.shape == (3, 40 * scale, 36 * scale)
    np.testing.assert_allclose(ours, ref, atol=2e-5)
