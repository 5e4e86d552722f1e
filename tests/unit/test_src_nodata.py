"""Input nodata as the analyst decides (SuperResolveJob.src_nodata, --src-nodata), on real crops."""
import subprocess
import sys

import numpy as np
import pytest
from osgeo import gdal

from backend.errors import SuperResError
from backend.job import SuperResolveJob, run_job
from backend.src_nodata import nodata_report, parse_src_nodata
from helpers import AERIAL, COLLAR, LANDSAT, ROOT, copy_with, read, write_raster

SAMPLE = ROOT / "resources" / "sample" / "NEON_OSBS_029.tif"   # declares 255: its highlights


def _run(src, out, log=None, **kw):
    kw.setdefault("model", "bicubic")
    kw.setdefault("scale", 2)
    lines = []
    run_job(SuperResolveJob(str(src), str(out), **kw), log=lines.append)
    return lines


def _declared(path):
    ds = gdal.Open(str(path))
    return [ds.GetRasterBand(i + 1).GetNoDataValue() for i in range(ds.RasterCount)]


def _blocks(a, s):
    """(C, H*s, W*s) -> (C, H, W, s*s): each input pixel's block of output pixels."""
    c, h, w = a.shape[0], a.shape[1] // s, a.shape[2] // s
    return a.reshape(c, h, s, w, s).transpose(0, 1, 3, 2, 4).reshape(c, h, w, s * s)


@pytest.fixture(scope="module")
def sample_runs(tmp_path_factory):
    """dganet x4 + ISE 5 on the whole sample, as the demo runs it, declared and none."""
    folder = tmp_path_factory.mktemp("sample")
    runs = {}
    for choice in ("declared", "none"):
        out = folder / f"{choice}.tif"
        log = _run(SAMPLE, out, model="dganet", scale=4, ise_iterations=5, src_nodata=choice)
        runs[choice] = (out, log)
    return runs


def test_declared_makes_the_samples_highlights_holes(sample_runs):
    lr = read(SAMPLE)
    out, log = sample_runs["declared"]
    highlight = lr == 255
    assert int(highlight.any(axis=0).sum()) == 2126 and lr[0].size == 160_000   # the count
    assert _declared(out) == [255.0] * 3
    sr = read(out)
    # each band's 255 becomes a 4x4 block of nodata, and no valid pixel reads 255
    np.testing.assert_array_equal(sr == 255, np.kron(highlight, np.ones((1, 4, 4), bool)))
    assert ("Input nodata: 255 in every band (declared by the input): 2,126 (1.33%) of 160,000 pixels "
            "treated as nodata in at least one band; per band 1: 1,590 (0.99%), 2: 1,577 (0.99%), "
            "3: 724 (0.45%).") in log
    assert [int(n) for n in highlight.reshape(3, -1).sum(axis=1)] == [1590, 1577, 724]
    warnings = [line for line in log if line.startswith("Warning:")]
    assert len(warnings) == 1, log
    assert ("the declared nodata 255 is the Byte maximum, and its 2,126 pixels lie scattered" in warnings[0]
            and "4x4 hole" in warnings[0] and "NODATA none (--src-nodata none)" in warnings[0])


def test_none_super_resolves_the_samples_highlights(sample_runs):
    lr = read(SAMPLE)
    highlight = lr == 255
    out, log = sample_runs["none"]
    assert _declared(out) == [None] * 3                     # nothing is nodata, so nothing declared
    assert "Input nodata: none (NODATA none): no pixel is nodata." in log
    assert not [line for line in log if line.startswith("Warning:")]
    sr = _blocks(read(out).astype(float), 4)
    means = sr.mean(axis=3)
    # over every highlight, a bright super-resolved block near the input's 255, not a hole
    for c in range(3):
        assert means[c][highlight[c]].min() > 200, c
        assert np.abs(means[c][highlight[c]] - 255).mean() < 10, c
        assert np.abs(means[c][~highlight[c]] - lr[c][~highlight[c]]).mean() < 5, c
    # away from the highlights the run is the declared one (only the statistics moved a little)
    declared = _blocks(read(sample_runs["declared"][0]).astype(float), 4)
    near = highlight.any(axis=0)
    for _ in range(12):   # within 12 input pixels of a highlight
        p = np.pad(near, 1)
        near = near | p[:-2, 1:-1] | p[2:, 1:-1] | p[1:-1, :-2] | p[1:-1, 2:] | p[:-2, :-2] | p[2:, 2:] \
            | p[:-2, 2:] | p[2:, :-2]
    far = ~near
    assert far.mean() > 0.2
    assert np.abs(sr[:, far] - declared[:, far]).mean() < 1


def test_values_per_band_are_nodata_and_declared(tmp_path):
    img = read(LANDSAT)
    # band 1's value is also common in band 2, where it is data
    values = [7632, int(np.median(img[1])), int(np.median(img[2]))]
    assert (img[1] == values[0]).sum() > 10
    out = tmp_path / "per_band.tif"
    log = _run(LANDSAT, out, src_nodata=",".join(map(str, values)))
    holes = [np.kron(img[c] == v, np.ones((2, 2), bool)) for c, v in enumerate(values)]
    assert all(hole.any() for hole in holes)
    counts = [int((img[c] == v).sum()) for c, v in enumerate(values)]
    assert any(line.startswith("Input nodata: 7632, ") and "(NODATA as asked)" in line
               and f"per band 1: {counts[0]:,} (" in line and f"3: {counts[2]:,} (" in line for line in log), log
    # a GeoTIFF holds one nodata for all bands: band 1's, and each band's own holes carry it
    assert _declared(LANDSAT) == [None] * 3 and _declared(out) == [7632.0] * 3
    assert any("a GeoTIFF declares one value for all its bands, so the output's nodata is 7632" in line
               for line in log)
    sr = read(out)
    for c in range(3):
        np.testing.assert_array_equal(sr[c] == 7632, holes[c])   # band 2's valid 7632s were moved
    # the values are per input band: with BANDS 3,1 band 3 keeps its own value (and gives the file's)
    picked = tmp_path / "picked.tif"
    _run(LANDSAT, picked, bands=[3, 1], src_nodata=values)
    assert _declared(picked) == [float(values[2])] * 2
    p = read(picked)
    for i, c in enumerate((2, 0)):
        np.testing.assert_array_equal(p[i] == values[2], holes[c])
        same = ~holes[c] & (p[i] != 7632) & (sr[c] != values[2])   # away from either run's moved values
        np.testing.assert_array_equal(p[i][same], sr[c][same])
    # one value serves every band
    one = tmp_path / "one.tif"
    _run(LANDSAT, one, src_nodata=str(values[1]))
    assert _declared(one) == [float(values[1])] * 3
    for c in range(3):
        np.testing.assert_array_equal(read(one)[c] == values[1], np.kron(img[c] == values[1], np.ones((2, 2), bool)))


def test_declared_values_that_differ_by_band_share_one_in_the_output(tmp_path):
    """A VRT declares per band (7632, none, 6526); the GeoTIFF output can only hold one."""
    img = read(LANDSAT)
    vrt = tmp_path / "bands.vrt"
    gdal.Translate(str(vrt), str(LANDSAT), format="VRT")
    ds = gdal.Open(str(vrt), gdal.GA_Update)
    ds.GetRasterBand(1).SetNoDataValue(7632)
    ds.GetRasterBand(3).SetNoDataValue(6526)
    ds = None
    assert _declared(vrt) == [7632.0, None, 6526.0]
    out = tmp_path / "o.tif"
    log = _run(vrt, out)
    assert "The bands' nodata differ (7632, none, 6526); a GeoTIFF declares one value for all its bands, " \
           "so the output's nodata is 7632 in every band." in log
    assert _declared(out) == [7632.0] * 3
    sr = read(out)
    for c, v in ((0, 7632), (1, None), (2, 6526)):
        hole = np.kron(img[c] == v, np.ones((2, 2), bool)) if v is not None else np.zeros(sr[c].shape, bool)
        np.testing.assert_array_equal(sr[c] == 7632, hole)
    assert (img[1] == 7632).any()   # band 2 has data at that value: moved off it


def test_float_values_are_taken_as_the_data_type_holds_them(tmp_path):
    img = (read(LANDSAT)[:1].astype(np.float32) * np.float32(0.1))
    v = img[0, 60, 60]
    src = write_raster(tmp_path / "f32.tif", img)
    text = f"{float(v):.6g}"                     # as an analyst types it: not the float32 itself
    assert float(text) != float(v) and np.float32(float(text)) == v
    out = tmp_path / "o.tif"
    _run(src, out, src_nodata=text)
    hole = np.kron(img[0] == v, np.ones((2, 2), bool))
    assert _declared(out) == [float(v)]
    np.testing.assert_array_equal(read(out)[0] == v, hole)
    # the Float32 maximum as gdalinfo's 8 digits give it: above the exact maximum, still that value
    top = np.finfo(np.float32).max
    img[0, 40:60, 30:70] = top
    src = write_raster(tmp_path / "top.tif", img)
    assert float("3.4028235e38") > float(top)
    out = tmp_path / "top_out.tif"
    log = _run(src, out, src_nodata="3.4028235e38")
    assert _declared(out) == [float(top)]
    np.testing.assert_array_equal(read(out)[0] == top, np.kron(img[0] == top, np.ones((2, 2), bool)))
    assert any("800 (4.88%) of 16,384 pixels treated as nodata" in line for line in log), log


def test_none_turns_the_zero_collar_rule_off_too(tmp_path):
    declared, none = tmp_path / "declared.tif", tmp_path / "none.tif"
    log = _run(COLLAR, declared)
    assert _declared(declared) == [0.0] * 3 and any("zeros line the raster's edge" in line for line in log)
    assert any(line.startswith("Input nodata: 0 in every band (the zero collar): ") for line in log)
    log = _run(COLLAR, none, src_nodata="none")
    assert _declared(none) == [None] * 3 and not any("zeros line" in line for line in log)
    ref = tmp_path / "off.tif"
    _run(COLLAR, ref, zero_collar="off")
    np.testing.assert_array_equal(read(none), read(ref))   # none: the zeros are data


def _scattered_raster(tmp_path, name, mask, value=65535):
    img = read(LANDSAT).copy()
    img[:, mask] = value
    return copy_with(LANDSAT, tmp_path / name, array=img, nodata=value)


def _lone_pixels(shape, step=7):
    mask = np.zeros(shape, bool)
    mask[3::step, 5::step] = True
    return mask


@pytest.mark.parametrize("value", [65535, 0])
def test_the_warning_is_for_scattered_pixels_at_the_types_limit(tmp_path, value):
    lone = _lone_pixels((128, 128))
    log = _run(_scattered_raster(tmp_path, "lone.tif", lone, value), tmp_path / "o1.tif")
    warn = [line for line in log if line.startswith("Warning:")]
    limit = "maximum" if value else "minimum"
    assert len(warn) == 1 and f"nodata {value} is the UInt16 {limit}" in warn[0]
    assert f"its {int(lone.sum()):,} pixels lie scattered" in warn[0]
    # the same places grown into 3x3 areas: a fill, no warning (but still counted)
    areas = np.zeros_like(lone)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            areas |= np.roll(np.roll(lone, dy, 0), dx, 1)
    log = _run(_scattered_raster(tmp_path, "areas.tif", areas, value), tmp_path / "o2.tif")
    assert not [line for line in log if line.startswith("Warning:")]
    assert any(f"{int(areas.sum()):,} (" in line for line in log if line.startswith("Input nodata"))
    # a one-pixel frame (a warp's edge) is no scatter either
    frame = np.zeros_like(lone)
    frame[[0, -1], :] = frame[:, [0, -1]] = True
    log = _run(_scattered_raster(tmp_path, "frame.tif", frame, value), tmp_path / "o3.tif")
    assert not [line for line in log if line.startswith("Warning:")]
    # a value the analyst gave is not second-guessed
    log = _run(tmp_path / "lone.tif", tmp_path / "o4.tif", src_nodata=str(value))
    assert not [line for line in log if line.startswith("Warning:")]


def test_a_value_inside_the_range_is_not_warned_about(tmp_path):
    lone = _lone_pixels((128, 128))
    log = _run(_scattered_raster(tmp_path, "mid.tif", lone, 30000), tmp_path / "o.tif")
    assert not [line for line in log if line.startswith("Warning:")]


def test_report_on_a_decimated_sample_gives_shares():
    sample = read(AERIAL)
    valid = sample != 255
    lines = nodata_report(sample, valid, [255.0] * 3, np.uint8, "declared by the input", [1, 2, 3],
                          False, 4)
    union = valid.all(axis=0).size - int(valid.all(axis=0).sum())
    share = f"{100 * union / sample[0].size:.2f}%"
    assert lines[0] == (f"Input nodata: 255 in every band (declared by the input): about {share} of the pixels "
                        f"(a regular sample of {sample[0].size:,}) treated as nodata in at least one band; "
                        "per band " + ", ".join(f"{c + 1}: about {100 * (~valid[c]).sum() / sample[0].size:.2f}%"
                                                for c in range(3)) + ".")
    assert lines[1].startswith("Warning: the declared nodata 255 is the Byte maximum, and its pixels lie")


@pytest.mark.parametrize("choice,message", [
    ("1,2", "NODATA has 2 values but the input has 3 bands: give one value for every band, or 3 (band 1 first)."),
    ("1,2,3,4", "NODATA has 4 values but the input has 3 bands"),
    ("abc", "NODATA 'abc' is not 'declared' (the layer's own value), 'none', or numbers separated by commas"),
    ("1,,2", "NODATA '1,,2' is not 'declared'"),
    ("-1", "NODATA -1 does not fit the input's data type UInt16, which holds whole numbers from 0 to 65535."),
    ("65536", "NODATA 65536 does not fit the input's data type UInt16"),
    ("2.5", "NODATA 2.5 does not fit the input's data type UInt16"),
    ("nan", "NODATA nan does not fit the input's data type UInt16"),
])
def test_bad_values_are_one_line_and_nothing_is_written(tmp_path, choice, message):
    out = tmp_path / "o.tif"
    with pytest.raises(SuperResError) as err:
        _run(LANDSAT, out, src_nodata=choice)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_float_range_is_checked(tmp_path):
    src = write_raster(tmp_path / "f.tif", read(LANDSAT)[:1].astype(np.float32))
    with pytest.raises(SuperResError, match=r"NODATA 1e\+39 does not fit the input's data type Float32"):
        _run(src, tmp_path / "o.tif", src_nodata="1e39")
    assert not (tmp_path / "o.tif").exists()
    _run(src, tmp_path / "nan.tif", src_nodata="nan")   # nan is a float nodata
    assert np.isnan(_declared(tmp_path / "nan.tif")[0])


def test_parse():
    assert parse_src_nodata(None) == parse_src_nodata("") == parse_src_nodata(" Declared ") == "declared"
    assert parse_src_nodata("NONE") == "none"
    assert parse_src_nodata("0, 1,2.5") == (0.0, 1.0, 2.5) and parse_src_nodata([3, 4]) == (3.0, 4.0)
    with pytest.raises(SuperResError, match="empty list"):
        parse_src_nodata([])


def cli(*args):
    return subprocess.run([sys.executable, "-m", "backend", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True)


def test_cli_src_nodata(tmp_path):
    out = tmp_path / "cli.tif"
    proc = cli("superresolve", AERIAL, out, "--model", "bicubic", "--scale", "2", "--src-nodata", "none")
    assert proc.returncode == 0, proc.stderr
    assert "Input nodata: none (NODATA none): no pixel is nodata." in proc.stdout.splitlines()
    lib = tmp_path / "lib.tif"
    _run(AERIAL, lib, src_nodata="none")
    np.testing.assert_array_equal(read(out), read(lib))
    assert _declared(out) == [None] * 3
    # the default is the declared value, and its warning
    default = tmp_path / "default.tif"
    proc = cli("superresolve", AERIAL, default, "--model", "bicubic", "--scale", "2")
    assert proc.returncode == 0 and _declared(default) == [255.0] * 3
    assert "Warning: the declared nodata 255 is the Byte maximum" in proc.stdout
    # a negative value as --src-nodata=V, per band
    neg = tmp_path / "neg.tif"
    src = write_raster(tmp_path / "i16.tif", read(LANDSAT).astype(np.int16), dtype=gdal.GDT_Int16)
    proc = cli("superresolve", src, neg, "--model", "bicubic", "--scale", "2", "--src-nodata=-5")
    assert proc.returncode == 0, proc.stderr
    assert _declared(neg) == [-5.0] * 3


def test_cli_bad_value_is_one_line(tmp_path):
    out = tmp_path / "o.tif"
    proc = cli("superresolve", AERIAL, out, "--model", "bicubic", "--src-nodata", "256")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == ("Error: NODATA 256 does not fit the input's data type Byte, which holds whole "
                           "numbers from 0 to 255.\n")
    assert list(tmp_path.iterdir()) == []
