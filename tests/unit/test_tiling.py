"""Tiled inference equals one-piece inference, ISE and nodata included, on rasters that really tile.

Each raster is at least 6 margins on a side and its tiles are small enough
that none reads more than a third of it. On real imagery a margin a few
pixels short changes almost nothing (the influence of far pixels decays about
tenfold every 2 pixels), so the margin is also checked against the farthest
pixel a result really depends on, measured with a bright probe.
"""
import math

import numpy as np
import pytest
from osgeo import gdal

from backend.job import SuperResolveJob, run_job
from backend.registry import get_model
from backend.tiling import plan_tiles, run_tiles
from backend.window import Window
from helpers import AERIAL, LANDSAT, mosaic, read, write_raster


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


# x2 through the 1-band landsat weights keeps the margin, hence the raster, small.
KINDS = {
    "network": dict(model="dganet", ise_iterations=2),
    "interpolation": dict(model="bicubic", ise_iterations=3),
    "self-ensemble": dict(model="dganet", ise_iterations=1, ise_kernel="bilinear", self_ensemble=True),
}


def _sizes(kw, tmp_path):
    """Tile size and raster side for a 4 x 4 tiling in which no tile reads over a third of the raster.

    The margin is the job's own, read from a run on a small crop.
    """
    small = write_raster(tmp_path / "small.tif", mosaic(12, 12).astype(np.float32))
    m = run_job(SuperResolveJob(str(small), str(tmp_path / "small_sr.tif"), **kw)).margin
    tile = math.ceil(2 * m / (4 / math.sqrt(3) - 1))   # (tile + 2m)^2 <= (4 tile)^2 / 3
    return tile, 4 * tile


def _holes(img, tile):
    """Nodata across seams: a block on a tile corner, a strip over a seam, one wider than the filling."""
    img[:, tile - 5:tile + 5, tile - 5:tile + 5] = 0
    img[:, 2 * tile - 30:2 * tile + 10, 2 * tile - 3:2 * tile + 3] = 0
    img[:, 3 * tile - 12:3 * tile + 12, tile + 4:tile + 28] = 0
    return img


@pytest.mark.parametrize("output", ["float", "rounded"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_tiled_equals_one_piece(tmp_path, kind, output):
    kw = dict(KINDS[kind], scale=2, device="cpu")
    if get_model(kw["model"]).kind == "network":
        kw["weights"] = "landsat"
    tile, side = _sizes(kw, tmp_path)
    img = _holes(mosaic(side, side, y=17, x=29), tile)
    if output == "float":   # float: nothing is rounded at the end; NaN holes
        img = np.where(img == 0, np.nan, img).astype(np.float32)
        src = write_raster(tmp_path / "in.tif", img)
    else:                   # UInt16 with declared nodata: rounding and nodata encoding per tile
        src = write_raster(tmp_path / "in.tif", img, nodata=0, dtype=gdal.GDT_UInt16)
    whole = run_job(SuperResolveJob(str(src), str(tmp_path / "whole.tif"), tile_size=side, **kw))
    tiled = run_job(SuperResolveJob(str(src), str(tmp_path / "tiled.tif"), tile_size=tile, **kw))
    # the tiling really tiles: 16 tiles, none reading more than a third of the raster
    plan = plan_tiles(Window(0, 0, side, side), side, side, tile, tiled.margin)
    assert whole.tiles == 1 and tiled.tiles == len(plan) == 16
    assert side >= 6 * tiled.margin and tiled.margin == whole.margin > 0
    assert max(t.read.w * t.read.h for t in plan) <= side * side / 3
    # without ISE_KERNEL, ISE follows the degradation the weights were trained with
    assert tiled.ise_kernel == kw.get("ise_kernel", "bicubic")
    a, b = read(tmp_path / "tiled.tif"), read(tmp_path / "whole.tif")
    valid = np.isfinite(img) & (img != 0)
    hr_valid = np.kron(valid, np.ones((1, 2, 2), bool))
    span = float(np.nanmax(img[valid]) - np.nanmin(img[valid]))
    assert b[hr_valid].std() > 0.05 * span                   # a real picture, not a constant
    if output == "float":
        np.testing.assert_array_equal(np.isnan(a), ~hr_valid)
        np.testing.assert_array_equal(np.isnan(b), ~hr_valid)
        assert np.abs(a[hr_valid] - b[hr_valid]).max() <= 1e-4 * span
    else:
        np.testing.assert_array_equal(a == 0, ~hr_valid)
        np.testing.assert_array_equal(b == 0, ~hr_valid)
        diff = np.abs(a.astype(np.int64) - b.astype(np.int64))
        assert a.dtype == np.uint16 and diff.max() <= 1 and (diff > 0).mean() < 0.001


@pytest.mark.parametrize("kind", ["network", "interpolation"])
def test_margin_covers_the_measured_reach(tmp_path, kind):
    """The safe margin reaches at least as far as the farthest input pixel that changes a result.

    The probe raises the brightest pixel far above the range (as a saturated
    glint would), which leaves every percentile below the maximum, hence the
    run's statistics, unchanged. Output pixels that move at all lie within the
    probe's reach; a tile margin shorter than that reach would cut it off.
    ISE 5 reaches well beyond the model and the filling: without the ISE term
    the margin falls short of what is measured here.
    """
    kw = dict(model="dganet", weights="landsat") if kind == "network" else dict(model="bicubic")
    kw.update(ise_iterations=5, scale=2, device="cpu")
    img = mosaic(100, 100, y=3, x=7).astype(np.float64)
    y, x = np.unravel_index(np.argmax(img[0, 35:65, 35:65]), (30, 30))
    y, x = y + 35, x + 35   # far enough from the edges for the reach to show in full
    probe = img.copy()
    probe[0, y, x] += 1e5 * float(img.max() - img.min())
    runs = []
    for name, a in (("base", img), ("probe", probe)):
        src = write_raster(tmp_path / f"{name}.tif", a, dtype=gdal.GDT_Float64)
        runs.append(run_job(SuperResolveJob(str(src), str(tmp_path / f"{name}_sr.tif"), **kw)))
        assert runs[-1].tiles == 1
    assert runs[0].stats == runs[1].stats   # the probe moved no percentile
    moved = np.argwhere(read(tmp_path / "probe_sr.tif")[0] != read(tmp_path / "base_sr.tif")[0])
    reach = int(np.maximum(np.abs(moved[:, 0] // 2 - y), np.abs(moved[:, 1] // 2 - x)).max())
    # ISE spreads the probe well past the model alone (bicubic: 2 px, dganet: 14 px)
    assert reach >= (14 if kind == "network" else 2) + 2 * 5, reach
    assert runs[0].margin == runs[1].margin >= reach


def _untrained_engine(name, net, ise=1, h=50, w=57, path=AERIAL, nodata=255):
    """An engine around an untrained network (the tiling rules do not need weights)."""
    import torch
    from backend.engine import Engine
    from backend.normalise import compute_stats, valid_mask
    from backend.registry import get_model
    torch.manual_seed(0)
    img = read(path)[:, :h, :w].copy()
    stats = compute_stats(img, valid_mask(img, [nodata] * 3), True)
    engine = Engine(get_model(name), 2, stats, "cpu", ise, "bicubic", net.eval(), 3, {}, "aerial", 3,
                    precision="fp32", dtype=img.dtype, nodata=(nodata,) * 3)
    return engine, img


def _run_engine(engine, img, tile_size):
    from backend.arrays import ArrayReader, ArrayWriter
    nodata = list(engine.nodata)
    from backend.job import choose_tiling
    region = Window(0, 0, img.shape[2], img.shape[1])
    tiling = choose_tiling(engine, region, tile_size, None)
    tiles = plan_tiles(region, img.shape[2], img.shape[1], tiling.tile_size, tiling.margin)
    out = ArrayWriter((3, img.shape[1] * 2, img.shape[2] * 2), img.dtype)
    run_tiles(ArrayReader(img, nodata), out, tiles, engine, batch_size=tiling.batch_size, trim=tiling.trim)
    return out.array, tiling, tiles


def test_window_dependent_network_always_runs_on_its_window():
    """DEGAN (seed 001) attends over its whole window: one window size, whatever TILE_SIZE says."""
    from backend.models.degan import DEGAN
    from backend.registry import get_model
    spec = get_model("degan")
    net = DEGAN(num_in_ch=3, num_out_ch=3, upscale=2, num_feat=16, num_block=1)
    engine, img = _untrained_engine("degan", net, h=30, w=40)
    seen = []
    real = engine.infer_batch
    engine.infer_batch = lambda x, valid=None, *rest: seen.append(tuple(x.shape[-2:])) or real(x, valid, *rest)
    a, tiling, tiles = _run_engine(engine, img, None)
    b, _, _ = _run_engine(engine, img, 24)
    np.testing.assert_array_equal(a, b)
    assert set(seen) == {(spec.fixed_tile, spec.fixed_tile)}            # last tiles padded to it
    assert tiling.tile_size == spec.fixed_tile - 2 * spec.fixed_margin and tiling.batch_size > 1
    assert len(tiles) == -(-30 // tiling.tile_size) * -(-40 // tiling.tile_size)


def test_grid_network_tiles_exactly_on_its_grid():
    """GPSR's stride-3 attention: tiles equal one piece when windows start on a 3-px grid."""
    from backend.models.gpsr import GPSR
    net = GPSR(num_in_ch=3, num_out_ch=3, upscale=2, num_feat=8, max_feat=8, num_rs3am=1, num_res=1)
    engine, img = _untrained_engine("gpsr", net, ise=0, h=15, w=90, path=LANDSAT, nodata=0)
    img[:, 1, 1] = 0     # nodata near the first tile only: the one-piece run keeps its whole
                         # margin, the far tiles are trimmed, which must keep them on the grid
    whole, _, _ = _run_engine(engine, img, 96)
    tiled, tiling, tiles = _run_engine(engine, img, 14)      # rounded up to 15, a multiple of 3
    assert tiling.tile_size == 15 and len(tiles) == 6 and tiling.trim == 6
    np.testing.assert_array_equal(tiled, whole)


@pytest.mark.parametrize("ise", [0, 5])
def test_automatic_tile_size_bounds_margins_and_memory(monkeypatch, ise):
    """TILE_SIZE 0: at least 512 px, margins at most 15% extra pixels where the budget allows,
    equal tiles of whole output blocks; a small memory budget gives smaller tiles."""
    from backend import job as job_mod
    from backend.engine import build_engine, engine_config
    from backend.normalise import compute_stats, valid_mask
    from backend.window import Window
    img = read(AERIAL)
    stats = compute_stats(img, valid_mask(img, (None,) * 3), True)
    engine = build_engine(engine_config("dganet", 4, stats, 3, True, img.dtype, device="cpu",
                                        ise_iterations=ise))
    region = Window(0, 0, 6000, 6000)
    monkeypatch.setattr(job_mod, "memory_budget", lambda device: 8 * 1024 ** 3)
    t = job_mod.choose_tiling(engine, region, None, None)
    core = t.tile_size
    margin = t.margin - t.trim        # a tile without nodata drops the filling part
    assert core >= 512 and ((core + 2 * margin) / core) ** 2 - 1 <= 0.15
    assert (core * 4) % 256 == 0 and -(-6000 // core) * core - 6000 < core  # whole blocks, no thin last tile
    assert engine.bytes_per_lr_pixel() * (core + 2 * t.margin) ** 2 <= 8 * 1024 ** 3
    monkeypatch.setattr(job_mod, "memory_budget", lambda device: 256 * 1024 ** 2)
    small = job_mod.choose_tiling(engine, region, None, None)
    assert small.tile_size < core and (small.tile_size * 4) % 256 == 0   # the budget binds; whole blocks
    # the usual tile (no nodata, trimmed margin) fits the budget, in fp32 as in bf16
    usual = small.tile_size + 2 * (small.margin - small.trim)
    assert engine.bytes_per_lr_pixel() * usual ** 2 <= 256 * 1024 ** 2
    assert engine.bytes_per_lr_pixel() * (usual + 64) ** 2 > 256 * 1024 ** 2   # and is not a block smaller than it could be
