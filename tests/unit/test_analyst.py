"""What an analyst is offered and told: the curated model list, the domain warning, provenance."""
import shutil
from dataclasses import replace

from osgeo import gdal

from backend import registry
from backend.domain import check_input
from backend.job import SuperResolveJob, run_job
from helpers import AERIAL, DATA, LANDSAT, RGBN

LANDSAT_60M = DATA / "landsat_b2_60m_64.tif"     # Landsat B2 at 60 m: a x4 run stays small

ABLATION = {"edsr", "dganet_l2", "dganet_sg", "dganet_ga"}


def test_curated_list_leaves_out_the_ablation_arms():
    names = [m.name for m in registry.analyst_models()]
    assert names == ["dganet", "dganet_large", "degan", "gpsr", "rcan", "bicubic", "bilinear", "nearest"]
    assert ABLATION <= set(registry.model_names())        # still known to evaluate, the CLI, scripts
    for spec in registry.analyst_models():
        text = registry.plain_description(spec)
        assert text and "Sobel" not in text and "pixel-shuffle" not in text
    assert registry.plain_description(registry.get_model("dganet")).endswith(
        "Trained on Aerial RGB, 10 cm, Byte (NEON); Landsat 8 OLI, 30 m, UInt16, band by band; "
            "Sentinel-2 MSI, 10 m, UInt16, band by band.")
    assert registry.plain_description(registry.get_model("bicubic")).endswith("Needs no PyTorch.")


def test_a_new_network_appears_once_it_has_weights(tmp_path, monkeypatch):
    new = replace(registry.get_model("dganet"), name="newnet", title="NewNet", summary="")
    monkeypatch.setattr(registry, "MODELS", registry.MODELS + (new,))
    monkeypatch.setattr(registry, "WEIGHTS_DIR", tmp_path)
    assert "newnet" not in [m.name for m in registry.analyst_models()]      # no weights yet
    shutil.copy(AERIAL, tmp_path / "newnet_x4_aerial.safetensors")          # any file counts as present
    names = [m.name for m in registry.analyst_models()]
    assert "newnet" in names and names.index("newnet") < names.index("bicubic")
    # without a summary, the registry's description stands in, plus the training domain
    assert registry.plain_description(new).startswith(new.description)
    assert registry.plain_description(new).endswith("Trained on Aerial RGB, 10 cm, Byte (NEON).")


def test_domain_warnings_on_real_crops():
    domain, warnings = check_input(str(AERIAL), None, "dganet", 4)
    assert warnings == [] and domain.startswith("Weights 'aerial' for this layer. Trained on Aerial RGB, 10 cm")
    domain, warnings = check_input(str(LANDSAT), None, "dganet", 4)      # auto picks the Landsat set
    assert warnings == [] and domain.startswith("Weights 'landsat'")
    _domain, warnings = check_input(str(LANDSAT), None, "dganet_large", 4)   # aerial weights only
    assert len(warnings) == 3
    assert "30 m, 300 times larger" in warnings[0] and "UInt16" in warnings[1] and "grey image" in warnings[2]
    # 5 m Byte, 4 bands: auto picks the nearest set, Sentinel-2's 10 m, and warns of the data type
    domain, warnings = check_input(str(RGBN), None, "dganet", 2)
    assert domain.startswith("Weights 'sentinel2'") and len(warnings) == 1 and "UInt16" in warnings[0]
    _domain, warnings = check_input(str(RGBN), None, "dganet", 2, weights="aerial")
    assert any("5 m, 50 times larger" in w for w in warnings) and any("4 bands are not RGB" in w for w in warnings)
    _domain, warnings = check_input(str(AERIAL), [1], "dganet", 4)     # one band of RGB runs as grey
    assert warnings and "1 band is not RGB" in warnings[-1]
    assert check_input(str(LANDSAT), None, "bicubic", 4) == ("", [])


def test_cli_outputs_carry_provenance(tmp_path, monkeypatch):
    """Scale, ISE and the weights' own hash, computed here from the file the x4 run loaded."""
    from safetensors.torch import load_file

    from backend import weights
    loaded = []
    real = weights.load_weights
    monkeypatch.setattr(weights, "load_weights", lambda path, *a: loaded.append(path) or real(path, *a))
    out = tmp_path / "sr.tif"
    run_job(SuperResolveJob(str(LANDSAT_60M), str(out), model="dganet", scale=4, ise_iterations=2,
                            precision="fp32"))     # no first-run timing of the precisions
    tags = gdal.Open(str(out)).GetMetadata()
    assert tags["SUPER_RESOLVED"] == "YES" and tags["SR_WEIGHTS"] == "landsat" and tags["SR_MODEL"] == "dganet"
    assert tags["SR_SCALE"] == "4" and tags["SR_ISE_ITERATIONS"] == "2"
    [used] = loaded
    assert tags["SR_WEIGHTS_FILE"] == used.name == "dganet_x4_landsat.safetensors"
    # the hash of the file's tensors as the loader computes it, not the number the file records
    assert tags["SR_WEIGHTS_TENSOR_SHA256"] == weights.tensor_hash(load_file(str(used)))
    assert tags["TIFFTAG_SOFTWARE"].startswith("Raster Super-Resolution ")
