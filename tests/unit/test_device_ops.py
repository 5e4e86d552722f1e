"""The device-side pre- and post-processing (here on the CPU device) equals the numpy reference."""
import numpy as np
import pytest
import torch

from backend import device_ops as ops
from backend.encoding import encode as np_encode
from backend.engine import FILL_ITERATIONS
from backend.normalise import compute_stats, denormalise, fill_invalid, normalise, valid_mask
from helpers import LANDSAT, RGBN, read


def _with_holes(dtype, nodata):
    """Real Landsat bands in ``dtype`` with a nodata block, a nodata strip and (floats) NaN/inf."""
    a = read(LANDSAT).astype(np.float64)
    if np.dtype(dtype) == np.uint8:
        a = a / a.max() * 250
    a = a.astype(dtype)
    a[:, 40:60, 30:70] = nodata
    a[1, :4] = nodata
    if np.dtype(dtype).kind == "f":
        a[0, 90:93, 90:95] = np.nan
        a[2, 100, 5] = np.inf
    return a


CASES = [(np.uint8, 0), (np.uint16, 0), (np.int16, -9999), (np.uint32, 0), (np.int32, -1),
         (np.float32, -9999.0), (np.float64, -3.4e38)]


@pytest.mark.parametrize("dtype,nodata", CASES)
def test_pre_processing_matches_numpy(dtype, nodata):
    raw = _with_holes(dtype, nodata)
    nd = [nodata] * raw.shape[0]
    valid = valid_mask(raw, nd)
    stats = compute_stats(raw, valid, np.dtype(dtype).kind in "iu")
    ref = fill_invalid(normalise(raw, stats), valid, FILL_ITERATIONS)

    t = ops.to_device(raw, "cpu")
    v = ops.valid_mask(t, nd)
    np.testing.assert_array_equal(v.numpy(), valid)
    compute = ops.compute_dtype(dtype)
    low = torch.tensor(stats.low, dtype=compute)[:, None, None]
    span = torch.tensor(stats.span, dtype=compute)[:, None, None]
    got = ops.fill_invalid(ops.normalise(t, low, span, compute), v, FILL_ITERATIONS).numpy()
    # float32 arithmetic against the float64 reference: a few units in the last place
    np.testing.assert_allclose(got, ref, rtol=0, atol=2e-6)
    assert (~valid).any() and np.isfinite(got).all()


def test_nodata_values_the_type_cannot_hold_match_nothing():
    raw = read(LANDSAT)[:, :20, :20]                    # uint16
    for nd in (-9999, 70000, 0.5):
        v = ops.valid_mask(ops.to_device(raw, "cpu"), [nd] * 3)
        np.testing.assert_array_equal(v.numpy(), valid_mask(raw, [nd] * 3))
        assert v.all()


def test_symmetric_pad_matches_numpy_also_beyond_the_image():
    x = torch.from_numpy(read(RGBN)[:2, :7, :5].astype(np.float32))
    for pads in (((3, 0), (0, 2)), ((9, 12), (6, 11)), ((0, 0), (0, 0))):
        ref = np.pad(x.numpy(), ((0, 0),) + pads, mode="symmetric")
        np.testing.assert_array_equal(ops.symmetric_pad(x, pads).numpy(), ref)


@pytest.mark.parametrize("dtype,nodata", CASES + [(np.uint8, 255), (np.float32, None), (np.uint16, None)])
def test_encoding_matches_numpy(dtype, nodata):
    """Rounding, clipping to the type, nodata on invalid pixels, valid values moved off nodata."""
    rng = np.random.default_rng(0)
    lo, hi = (0.0, 300.0) if np.dtype(dtype) == np.uint8 else (-20000.0, 70000.0)
    values = rng.uniform(lo, hi, (3, 40, 50))
    if nodata is not None:
        values[:, :5, :5] = nodata + rng.uniform(-0.6, 0.6, (3, 5, 5))   # clashes with nodata
        values[0, 6, 6] = np.inf
    valid = np.ones(values.shape, bool)
    valid[:, 30:, 40:] = False
    nd = [nodata] * 3
    compute = ops.compute_dtype(dtype)
    values = torch.from_numpy(values).to(compute)     # the device computes in this precision
    ref = np_encode(values.double().numpy(), valid, dtype, nd)
    got = ops.encode(values, torch.from_numpy(valid), dtype, nd)
    assert got.dtype == np.dtype(dtype)
    if np.dtype(dtype).kind == "f":
        np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
        np.testing.assert_allclose(np.nan_to_num(got), np.nan_to_num(ref), rtol=1e-6)
    else:
        np.testing.assert_array_equal(got, ref)
    if nodata is not None:
        assert ((got == np.dtype(dtype).type(nodata)) == ~valid).all()


def test_denormalise_inverts_normalise():
    raw = read(LANDSAT).astype(np.uint16)
    stats = compute_stats(raw, valid_mask(raw, [None] * 3), True)
    compute = ops.compute_dtype(raw.dtype)
    low = torch.tensor(stats.low, dtype=compute)[:, None, None]
    span = torch.tensor(stats.span, dtype=compute)[:, None, None]
    norm = ops.normalise(ops.to_device(raw, "cpu"), low, span, compute)
    back = ops.denormalise(norm, low, span, compute).numpy()
    np.testing.assert_allclose(back, raw, atol=0.01)
    np.testing.assert_allclose(denormalise(normalise(raw, stats), stats), raw, atol=0.01)


def test_uint16_travels_without_widening():
    raw = np.array([[[0, 1, 40000, 65535]]], np.uint16)
    t = ops.to_device(raw, "cpu")
    assert t.tolist() == [[[0, 1, 40000, 65535]]]
    back = ops.encode(t.to(torch.float32), torch.ones_like(t, dtype=torch.bool), np.uint16, [None])
    assert back.dtype == np.uint16 and back.tolist() == raw.tolist()


def test_torch_tile_equals_the_numpy_path_with_nodata():
    """The whole tile function, device side against the numpy path used without torch."""
    from backend.engine import build_engine, engine_config
    from backend.tiling import _numpy_tile, plan_tiles, super_resolve_tile
    from backend.window import Window
    from helpers import AERIAL
    img = read(AERIAL)[:, :60, :60].copy()
    img[:, 20:30, 25:45] = 255                      # a hole next to strong texture
    nd = [255] * 3
    stats = compute_stats(img, valid_mask(img, nd), True)
    engine = build_engine(engine_config("bicubic", 4, stats, 3, True, np.uint8, nd, device="cpu"))
    tile = plan_tiles(Window(0, 0, 60, 60), 60, 60, 60, engine.safe_margin)[0]
    a, b = super_resolve_tile(engine, tile, img), _numpy_tile(engine, tile, img)
    diff = np.abs(a.values.astype(int) - b.values.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.001
    np.testing.assert_array_equal(a.valid, b.valid)
    hole = np.kron(img == 255, np.ones((1, 4, 4), bool))
    np.testing.assert_array_equal(a.values == 255, hole)
    assert hole.sum() >= 10 * 20 * 16 * 3


def test_pinned_values_reach_the_device_unchanged():
    """The reader's page-locked copy (for a GPU) carries every type, UInt16 included."""
    if not torch.cuda.is_available():
        pytest.skip("page-locked memory needs CUDA")
    for dtype in (np.uint8, np.uint16, np.int16, np.uint32, np.float32):
        raw = (read(LANDSAT)[:, :20, :30] % 250).astype(dtype)
        raw[0, 0, 0] = np.iinfo(dtype).max if np.dtype(dtype).kind in "iu" else 1e30
        got = ops.to_device(ops.pin(raw), "cuda").cpu()
        np.testing.assert_array_equal(got.numpy().astype(np.float64), raw.astype(np.float64))
