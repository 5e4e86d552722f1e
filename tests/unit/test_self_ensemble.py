"""The 8-fold self-ensemble: equivariant to flips, and not a no-op (tiling: test_tiling.py)."""
import numpy as np

from backend.job import super_resolve_array
from helpers import AERIAL, read


def test_self_ensemble_is_flip_equivariant():
    img = read(AERIAL)[:, :36, :44].astype(np.float32)     # float: no rounding at the end
    kw = dict(scale=2, model="dganet", rgb=True, device="cpu", weights="aerial")
    plain = super_resolve_array(img, **kw)
    ens = super_resolve_array(img, self_ensemble=True, **kw)
    span = float(img.max() - img.min())
    assert np.abs(ens - plain).mean() > 1e-3 * span        # it changes the result
    assert np.abs(ens - plain).mean() < 0.05 * span        # but only a little
    # averaging over all flips and rotations makes the model equivariant to them
    flipped = super_resolve_array(np.ascontiguousarray(img[:, :, ::-1]), self_ensemble=True, **kw)
    assert np.abs(flipped[:, :, ::-1] - ens).max() <= 1e-4 * span
