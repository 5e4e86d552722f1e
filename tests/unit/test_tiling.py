"""Tiled inference equals one-piece inference, ISE included, on real crops."""
import numpy as np
import pytest

from backend.job import super_resolve_array
from backend.tiling import Window, plan_tiles
from helpers import AERIAL, LANDSAT, read, shipped_scales


def test_plan_covers_region_once_and_margins_clip_to_raster():
    tiles = plan_tiles(Window(10, 5, 100, 70), 128, 96, 32, 12)
    cover = np.zeros((96, 128), int)
    for t in tiles:
        c, r = t.core, t.read
        cover[c.y:c.y + c.h, c.x:c.x + c.w] += 1
        assert r.x == max(0, c.x - 12) and r.y == max(0, c.y - 12)
        assert r.x + r.w == min(128, c.x + c.w + 12) and r.y + r.h == min(96, c.y + c.h + 12)
    assert cover[5:75, 10:110].min() == 1 and cover.sum() == 100 * 70
    assert len(tiles) == 4 * 3


@pytest.mark.parametrize("model,path,rgb,scale,ise", [
    ("dganet", LANDSAT, False, 4, 5),
    ("dganet", AERIAL, True, 4, 3),
    ("bicubic", LANDSAT, False, 2, 10),
])
def test_tiled_equals_one_piece_float(model, path, rgb, scale, ise):
    if model == "dganet" and scale not in shipped_scales("aerial" if rgb else "landsat"):
        pytest.fail("shipped dganet weights are missing")
    img = read(path)[:, :80, :72].astype(np.float32)  # float input: no rounding at the end
    if not rgb:
        img = img[:1]   # band by band: one band shows the tiling, three only triple the time
    whole = super_resolve_array(img, scale, model, ise, rgb=rgb, device="cpu", tile_size=512)
    tiled = super_resolve_array(img, scale, model, ise, rgb=rgb, device="cpu", tile_size=24)
    span = float(img.max() - img.min())
    assert np.abs(tiled - whole).max() <= 1e-4 * span
    # the tiles really were several, and the result is not trivially constant
    assert whole.std() > 0.01 * span


def test_tiled_equals_one_piece_after_rounding_uint16():
    img = read(LANDSAT)[:1, :64, :64]
    whole = super_resolve_array(img, 4, "dganet", 5, device="cpu", tile_size=512)
    tiled = super_resolve_array(img, 4, "dganet", 5, device="cpu", tile_size=20)
    diff = np.abs(tiled.astype(np.int64) - whole.astype(np.int64))
    assert whole.dtype == np.uint16
    assert diff.max() <= 1 and (diff > 0).mean() < 0.001
