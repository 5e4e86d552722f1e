"""Per-domain weight sets: automatic choice by pixel size and data type, and the override."""
import numpy as np
import pytest
from osgeo import osr

from backend.errors import SuperResError
from backend.job import SuperResolveJob, run_job, super_resolve_array
from backend.raster_io import ground_pixel_size, read_info
from backend.registry import choose_weight_set, get_model
from helpers import AERIAL, LANDSAT, RGBN, SENTINEL2, read


def test_real_crops_get_their_own_domain():
    sets = get_model("dganet").available_sets(4)
    assert set(sets) == {"aerial", "landsat", "sentinel2"}
    landsat, aerial, s2 = read_info(str(LANDSAT)), read_info(str(AERIAL)), read_info(str(SENTINEL2))
    assert s2.pixel_size_m == pytest.approx(10.0) and s2.dtype_name == "UInt16"
    assert choose_weight_set(sets, s2.pixel_size_m, "UInt16")[0] == "sentinel2"
    # the boundary lies at sqrt(10 x 30) = 17.3 m
    assert choose_weight_set(sets, 17.0, "UInt16")[0] == "sentinel2"
    assert choose_weight_set(sets, 17.6, "UInt16")[0] == "landsat"
    assert landsat.pixel_size_m == pytest.approx(30.0) and landsat.dtype_name == "UInt16"
    assert aerial.pixel_size_m == pytest.approx(0.1) and aerial.dtype_name == "Byte"
    assert choose_weight_set(sets, landsat.pixel_size_m * 4, "UInt16")[0] == "landsat"
    assert choose_weight_set(sets, aerial.pixel_size_m, "Byte")[0] == "aerial"
    # Byte but 30 m (a Landsat quick-look): pixel size outweighs the data type
    assert choose_weight_set(sets, 30.0, "Byte")[0] == "landsat"
    # no CRS: the data type decides, and between the UInt16 sets the first listed, landsat
    assert choose_weight_set(sets, None, "UInt16")[0] == "landsat"
    assert choose_weight_set(sets, None, "Byte")[0] == "aerial"


def test_geographic_pixel_size_in_metres():
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    # 1/3600 degree at the equator is about 30.9 m along x and 30.7 m along y
    size = ground_pixel_size((0.0, 1 / 3600, 0, 0.5 / 3600, 0, -1 / 3600), srs.ExportToWkt(), 1)
    assert size == pytest.approx(30.8, abs=0.2)
    assert ground_pixel_size((0, 1, 0, 0, 0, -1), "", 10) is None


def test_the_run_log_says_which_weights_and_why(tmp_path):
    out = tmp_path / "o.tif"
    res = run_job(SuperResolveJob(str(LANDSAT), str(out), "dganet", 4, extent=None, bands=[1]))
    assert res.weights == "dganet_x4_landsat.safetensors"
    assert any("weights 'landsat'" in line.lower() and "input's 30 m, uint16" in line.lower() for line in res.log)
    res = run_job(SuperResolveJob(str(LANDSAT), str(tmp_path / "a.tif"), "dganet", 4, bands=[1],
                                  weights="aerial"))
    assert res.weights == "dganet_x4_aerial.safetensors"
    assert any("weights 'aerial'" in line.lower() and "as asked" in line for line in res.log)


def test_override_changes_the_pixels_and_grey_runs_through_rgb_weights():
    lr = read(LANDSAT)[:1, :40, :40]
    a = super_resolve_array(lr, 4, "dganet", weights="landsat", device="cpu")
    b = super_resolve_array(lr, 4, "dganet", weights="aerial", device="cpu")
    assert a.shape == b.shape == (1, 160, 160)
    assert np.abs(a.astype(float) - b).mean() > 1.0
    # the aerial (RGB) network on one band equals it on that band as grey RGB, averaged
    g = super_resolve_array(np.repeat(lr, 3, 0), 4, "dganet", weights="aerial", rgb=True, device="cpu")
    assert np.abs(g.astype(float).mean(0) - b[0]).max() <= 1.0


def test_unknown_or_missing_weights_are_clear_errors(tmp_path):
    with pytest.raises(SuperResError, match="Unknown weights 'sentinel'.*aerial, landsat, sentinel2"):
        super_resolve_array(read(RGBN)[:3], 4, "dganet", weights="sentinel", device="cpu")
    with pytest.raises(SuperResError, match="no 'landsat' weights; it has: aerial"):
        super_resolve_array(read(AERIAL), 4, "edsr", weights="landsat", device="cpu")


def test_sentinel2_weights_metadata_and_auto_choice(tmp_path):
    """The sentinel2 set: fine-tuned from the Landsat weights on Sentinel-2 train rows, picked for 10 m UInt16."""
    import json
    from backend.registry import WEIGHTS_DIR
    from backend.weights import read_metadata
    for scale in (2, 4):
        meta = read_metadata(WEIGHTS_DIR / f"dganet_x{scale}_sentinel2.safetensors")
        landsat = read_metadata(WEIGHTS_DIR / f"dganet_x{scale}_landsat.safetensors")
        recipe = json.loads(meta["recipe"])
        assert (meta["weights_set"], meta["bands"], meta["scale"]) == ("sentinel2", "1", str(scale))
        assert meta["training_data"].startswith("sentinel2 (train regions") and recipe["domains"] == ["sentinel2"]
        assert recipe["init"] == f"dganet_x{scale}_landsat" and landsat["tensor_sha256"] in meta["initialised_from"]
        assert int(meta["steps"]) == recipe["steps"]
        assert float(meta["val_psnr_norm"]) > float(meta["val_bicubic_psnr_norm"])
    res = run_job(SuperResolveJob(str(SENTINEL2), str(tmp_path / "o.tif"), "dganet", 4))
    assert res.weights == "dganet_x4_sentinel2.safetensors"
    assert any("weights 'sentinel2'" in line.lower() and "input's 10 m, uint16" in line.lower() for line in res.log)


def test_sentinel2_weights_beat_the_landsat_ones_on_held_out_sentinel2():
    """On the committed crop (validation rows), x4: above bicubic, and above the Landsat weights it started from."""
    from backend.evaluate import evaluate_file
    rows = {}
    for weights in ("sentinel2", "landsat"):
        models = ["bicubic", "dganet"] if weights == "sentinel2" else ["dganet"]
        for r in evaluate_file(str(SENTINEL2), 4, models, [0], device="cpu", weights=weights):
            rows[(r.model, r.weights)] = r.psnr
    assert rows[("dganet", "sentinel2")] > rows[("dganet", "landsat")] + 0.05 > rows[("bicubic", "")] + 0.5
