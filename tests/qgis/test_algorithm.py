"""`superres:superresolve` through processing.run, on real crops."""
import numpy as np
import processing
import pytest
from osgeo import gdal
from qgis.core import (QgsApplication, QgsCoordinateReferenceSystem, QgsCoordinateTransform,
                       QgsProcessingException, QgsProcessingFeedback, QgsProject, QgsRasterLayer,
                       QgsRectangle)

from helpers import AERIAL, LANDSAT, read


def test_provider_and_parameters_registered():
    alg = QgsApplication.processingRegistry().algorithmById("superres:superresolve")
    assert alg is not None and alg.displayName() == "Super-resolve raster"
    names = [p.name() for p in alg.parameterDefinitions()]
    assert names == ["INPUT", "MODEL", "SCALE", "ISE_ITERATIONS", "EXTENT", "BANDS", "DEVICE",
                     "TILE_SIZE", "TILE_OVERLAP", "ISE_KERNEL", "WEIGHTS", "SELF_ENSEMBLE", "ZERO_COLLAR",
                     "OUTPUT_MASK", "PRECISION", "COG", "DASK_SCHEDULER", "OUTPUT"]
    assert all(p.help() for p in alg.parameterDefinitions())
    model = alg.parameterDefinition("MODEL")
    # the analyst's list: networks with weights, then the baselines; no ablation arms
    assert model.usesStaticStrings() and model.options() == ["dganet", "dganet_large", "bicubic", "bilinear",
                                                              "nearest"]
    assert "dganet_large: DGANet-L" in model.help()
    help_text = alg.shortHelpString()
    assert "The general choice" in help_text and "Trained on Aerial RGB, 10 cm" in help_text
    assert "edsr" not in help_text and "pixel-shuffle" not in help_text and "Sobel" not in help_text
    # the ablation arms stay in Evaluate
    evaluate = QgsApplication.processingRegistry().algorithmById("superres:evaluate")
    assert {"edsr", "dganet_l2", "dganet_sg", "dganet_ga"} <= set(evaluate.parameterDefinition("MODELS").options())
    assert alg.parameterDefinition("SCALE").options() == ["2", "4", "8"]
    # qgis_process prints help() under "Number of selected option", which it then refuses
    assert "With qgis_process pass 2, 4 or 8 itself (e.g. SCALE=4)" in alg.parameterDefinition("SCALE").help()
    assert "pass the value's name (e.g. MODEL=dganet)" in model.help()
    assert "qgis_process" not in alg.parameterDefinition("INPUT").help()   # not an enum
    weights = alg.parameterDefinition("WEIGHTS")
    assert weights.options() == ["auto", "aerial", "landsat"] and weights.defaultValue() == "auto"
    assert weights.flags() & weights.FlagAdvanced


class _Log(QgsProcessingFeedback):
    def __init__(self):
        super().__init__(False)
        self.lines = []

    def pushInfo(self, info):  # noqa: N802
        self.lines.append(info)


def test_outputs_carry_provenance(tmp_path, package):
    import calendar
    import configparser
    import time

    from helpers import ROOT
    out = tmp_path / "p.tif"
    processing.run("superres:superresolve", {"INPUT": str(AERIAL), "MODEL": "dganet", "SCALE": "2",
                                             "ISE_ITERATIONS": 1, "OUTPUT": str(out)})
    tags = gdal.Open(str(out)).GetMetadata()
    weights = ROOT / "resources/weights/dganet_x2_aerial.safetensors"
    meta = configparser.ConfigParser()
    meta.read(ROOT / "metadata.txt")
    assert tags["SUPER_RESOLVED"] == "YES" and "synthesised" in tags["SR_NOTE"]
    assert (tags["SR_MODEL"], tags["SR_WEIGHTS"], tags["SR_WEIGHTS_FILE"], tags["SR_SCALE"],
            tags["SR_ISE_ITERATIONS"], tags["SR_ISE_KERNEL"]) == ("dganet", "aerial", weights.name, "2", "1", "bicubic")
    assert tags["SR_WEIGHTS_TENSOR_SHA256"] == package.backend.weights.read_metadata(weights)["tensor_sha256"]
    assert tags["SR_PLUGIN_VERSION"] == meta["general"]["version"]
    stamp = calendar.timegm(time.strptime(tags["SR_TIMESTAMP"], "%Y-%m-%dT%H:%M:%SZ"))
    assert abs(stamp - time.time()) < 600
    assert tags["SR_SOURCE"] == AERIAL.name
    # QGIS shows them in Layer Properties > Information
    assert "SR_WEIGHTS_TENSOR_SHA256" in QgsRasterLayer(str(out), "p").htmlMetadata()
    # a baseline says no detail was added, and names no weights
    base = tmp_path / "b.tif"
    processing.run("superres:superresolve", {"INPUT": str(AERIAL), "MODEL": "bicubic", "SCALE": "2",
                                             "ISE_ITERATIONS": 0, "OUTPUT": str(base)})
    tags = gdal.Open(str(base)).GetMetadata()
    assert tags["SR_WEIGHTS"] == "none" and "no detail was added" in tags["SR_NOTE"]
    assert "SR_WEIGHTS_FILE" not in tags


@pytest.mark.parametrize("choice,kernel,origin", [("weights", "bicubic", "from the weights"),
                                                  ("bilinear", "bilinear", "as asked")])
def test_ise_kernel_parameter_help_log_and_tags_agree(tmp_path, choice, kernel, origin):
    alg = QgsApplication.processingRegistry().algorithmById("superres:superresolve")
    param = alg.parameterDefinition("ISE_KERNEL")
    assert param.options() == ["weights", "bicubic", "bilinear"]
    # the help explains each value, and names the log's wording for the default
    assert all(f"{o}:" in param.help() for o in param.options()) and "from the weights" in param.help()
    out = tmp_path / "k.tif"
    log = _Log()
    processing.run("superres:superresolve", {"INPUT": str(AERIAL), "MODEL": "dganet", "SCALE": "2",
                                             "ISE_ITERATIONS": 1, "ISE_KERNEL": choice, "OUTPUT": str(out)},
                   feedback=log)
    assert f"ISE: 1 iterations, kernel {kernel} ({origin})" in log.lines
    assert gdal.Open(str(out)).GetMetadataItem("SR_ISE_KERNEL") == kernel
    # the summary comes before the tiles, not after the run
    assert log.lines.index(f"ISE: 1 iterations, kernel {kernel} ({origin})") < \
        next(i for i, line in enumerate(log.lines) if line.startswith("Tiles:"))


def test_run_dganet_with_ise(tmp_path):
    out = tmp_path / "sr.tif"
    res = processing.run("superres:superresolve", {
        "INPUT": str(LANDSAT), "MODEL": "dganet", "SCALE": "4", "ISE_ITERATIONS": 3,
        "TILE_SIZE": 64, "OUTPUT": str(out)})
    assert res["OUTPUT"] == str(out)
    a, b = gdal.Open(str(LANDSAT)), gdal.Open(str(out))
    assert (b.RasterXSize, b.RasterYSize, b.RasterCount) == (512, 512, 3)
    assert b.GetGeoTransform()[1] == a.GetGeoTransform()[1] / 4
    assert b.GetProjection() == a.GetProjection()


def test_same_pixels_as_backend_cli(tmp_path):
    import subprocess
    import sys
    from helpers import ROOT
    out = tmp_path / "alg.tif"
    processing.run("superres:superresolve", {"INPUT": str(AERIAL), "MODEL": "dganet", "SCALE": "4",
                                             "ISE_ITERATIONS": 2, "OUTPUT": str(out)})
    cli_out = tmp_path / "cli.tif"
    subprocess.run([sys.executable, "-m", "backend", "superresolve", str(AERIAL), str(cli_out),
                    "--model", "dganet", "--scale", "4", "--ise", "2"], cwd=ROOT, check=True)
    np.testing.assert_array_equal(read(out), read(cli_out))


def test_scale_without_weights_lists_scales(tmp_path, package, monkeypatch):
    spec = package.backend.registry.get_model("dganet")
    monkeypatch.setattr(type(spec), "available_scales", lambda self: (2, 4))
    with pytest.raises(QgsProcessingException, match="no weights for x8; it has: x2, x4"):
        processing.run("superres:superresolve", {"INPUT": str(AERIAL), "MODEL": "dganet",
                                                 "SCALE": "8", "OUTPUT": str(tmp_path / "o.tif")})
    assert not (tmp_path / "o.tif").exists()


def test_extent_in_another_crs_is_snapped(tmp_path):
    layer = QgsRasterLayer(str(AERIAL), "aerial")
    ext = layer.extent()
    x0, y1 = ext.xMinimum(), ext.yMaximum()
    # pixels 20.3..60.7 x 10.2..50.5 in layer units (0.1 m pixels), given in WGS 84
    inner = QgsRectangle(x0 + 2.03, y1 - 5.05, x0 + 6.07, y1 - 1.02)
    wgs84 = QgsCoordinateReferenceSystem("EPSG:4326")
    tr = QgsCoordinateTransform(layer.crs(), wgs84, QgsProject.instance())
    geo = tr.transformBoundingBox(inner)
    out = tmp_path / "ext.tif"
    processing.run("superres:superresolve", {
        "INPUT": layer, "MODEL": "bicubic", "SCALE": "2", "ISE_ITERATIONS": 0,
        "EXTENT": f"{geo.xMinimum()},{geo.xMaximum()},{geo.yMinimum()},{geo.yMaximum()} [EPSG:4326]",
        "OUTPUT": str(out)})
    b = gdal.Open(str(out))
    gt = b.GetGeoTransform()
    # the extent, back in UTM, is snapped outward to whole input pixels
    col0 = round((gt[0] - x0) / 0.1, 6)
    row0 = round((y1 - gt[3]) / 0.1, 6)
    assert col0 == int(col0) and row0 == int(row0)
    assert col0 <= 20 and row0 <= 10
    assert (col0 + b.RasterXSize / 2) >= 61 and (row0 + b.RasterYSize / 2) >= 51


def test_bands_parameter(tmp_path):
    out = tmp_path / "b.tif"
    processing.run("superres:superresolve", {"INPUT": str(LANDSAT), "MODEL": "bicubic", "SCALE": "2",
                                             "ISE_ITERATIONS": 0, "BANDS": [3], "OUTPUT": str(out)})
    assert gdal.Open(str(out)).RasterCount == 1
    with pytest.raises(QgsProcessingException):
        processing.run("superres:superresolve", {"INPUT": str(LANDSAT), "MODEL": "bicubic",
                                                 "SCALE": "2", "BANDS": [5], "OUTPUT": str(tmp_path / "x.tif")})


def test_cuda_without_gpu_is_a_clear_error(tmp_path):
    with pytest.raises(QgsProcessingException, match="no CUDA GPU"):
        processing.run("superres:superresolve", {"INPUT": str(AERIAL), "MODEL": "bicubic", "SCALE": "2",
                                                 "DEVICE": "cuda", "OUTPUT": str(tmp_path / "c.tif")})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("uri,provider", [
    ("type=xyz&url=http://127.0.0.1:9/%7Bz%7D/%7Bx%7D/%7By%7D.png&zmax=19&zmin=0", "wms"),
    ("?crs=EPSG:32633&extent=500000,4000000,500300,4000300&width=10&height=10&formula=1&", "virtualraster"),
])
def test_non_file_layers_are_refused_clearly(tmp_path, uri, provider):
    layer = QgsRasterLayer(uri, "web", provider)
    assert layer.isValid()
    QgsProject.instance().addMapLayer(layer)
    with pytest.raises(QgsProcessingException, match=f"is a {provider} layer, not a file.*Save"):
        processing.run("superres:superresolve", {"INPUT": layer, "MODEL": "bicubic", "SCALE": "2",
                                                 "OUTPUT": str(tmp_path / "o.tif")})
    assert list(tmp_path.iterdir()) == []
