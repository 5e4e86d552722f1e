"""`superres:superresolve` through processing.run, on real crops."""
import numpy as np
import processing
import pytest
import torch
from osgeo import gdal, osr
from qgis.core import (QgsApplication, QgsCoordinateReferenceSystem, QgsCoordinateTransform,
                       QgsProcessingException, QgsProcessingFeedback, QgsProject, QgsRasterLayer,
                       QgsRectangle)

from helpers import AERIAL, COLLAR, LANDSAT, assert_same_pixels, read


class Log(QgsProcessingFeedback):
    """Feedback that keeps the algorithm's log lines."""

    def __init__(self):
        super().__init__()
        self.lines = []

    def pushInfo(self, info):
        """Keep the line."""
        self.lines.append(info)
        super().pushInfo(info)


def _no_gpu():
    """Skip where a GPU makes DEVICE cuda legitimate."""
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: DEVICE cuda would run")


def test_provider_and_parameters_registered():
    alg = QgsApplication.processingRegistry().algorithmById("superres:superresolve")
    assert alg is not None and alg.displayName() == "Super-resolve raster"
    names = [p.name() for p in alg.parameterDefinitions()]
    assert names == ["INPUT", "MODEL", "SCALE", "ISE_ITERATIONS", "EXTENT", "BANDS", "DEVICE",
                     "TILE_SIZE", "TILE_OVERLAP", "ISE_KERNEL", "WEIGHTS", "SELF_ENSEMBLE", "NODATA", "ZERO_COLLAR",
                     "OUTPUT_MASK", "PRECISION", "COG", "DASK_SCHEDULER", "ADAPT_STEPS", "OUTPUT"]
    assert all(p.help() for p in alg.parameterDefinitions())
    model = alg.parameterDefinition("MODEL")
    # the analyst's list: networks with weights, then the baselines; no ablation arms
    assert model.usesStaticStrings() and model.options() == ["dganet", "dganet_large", "degan", "gpsr",
                                                              "rcan", "bicubic", "bilinear", "nearest"]
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
    assert weights.options() == ["auto", "aerial", "landsat", "sentinel2"] and weights.defaultValue() == "auto"
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
    out, log = tmp_path / "sr.tif", Log()
    res = processing.run("superres:superresolve", {
        "INPUT": str(LANDSAT), "MODEL": "dganet", "SCALE": "2", "ISE_ITERATIONS": 3,
        "DEVICE": "auto", "TILE_SIZE": 64, "OUTPUT": str(out)}, feedback=log)
    assert res["OUTPUT"] == str(out)
    a, b = gdal.Open(str(LANDSAT)), gdal.Open(str(out))
    assert (b.RasterXSize, b.RasterYSize, b.RasterCount) == (256, 256, 3)
    assert b.GetGeoTransform()[1] == a.GetGeoTransform()[1] / 2
    assert b.GetProjection() == a.GetProjection()
    # TILE_SIZE 64 cuts the 128 px layer in four; DEVICE auto takes the GPU only when there is one
    assert any(line.startswith("Tiles: 4 of up to 64 px with a ") for line in log.lines), log.lines
    assert any(line.startswith(f"Device: {'cuda' if torch.cuda.is_available() else 'cpu'}") for line in log.lines)
    assert "ISE: 3 iterations, kernel bicubic (from the weights)" in log.lines
    assert "Output: 256 x 256 px, pixel size 15 x 15" in log.lines
    assert len([line for line in log.lines if line.startswith("Elapsed: ") and float(line.split()[1]) > 0]) == 1


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


@pytest.fixture(scope="module")
def aerial_x2(tmp_path_factory):
    """The whole-layer bicubic x2 run of the aerial crop, through the algorithm."""
    out = tmp_path_factory.mktemp("full") / "full.tif"
    processing.run("superres:superresolve", {"INPUT": str(AERIAL), "MODEL": "bicubic", "SCALE": "2",
                                             "ISE_ITERATIONS": 0, "OUTPUT": str(out)})
    return read(out)


def _corner_window(path):
    """The output's (column, row) in input pixels, which must be whole numbers."""
    x0, pw, _, y0, _, ph = gdal.Open(str(AERIAL)).GetGeoTransform()
    gt = gdal.Open(str(path)).GetGeoTransform()
    col, row = (gt[0] - x0) / pw, (gt[3] - y0) / ph
    assert abs(col - round(col)) < 1e-3 and abs(row - round(row)) < 1e-3, (col, row)
    return round(col), round(row)


def _bicubic_x2_on(layer, extent: str, tmp_path):
    """Run bicubic x2 ISE 0 on ``extent`` through processing.run; the output path and dataset."""
    out = tmp_path / "ext.tif"
    processing.run("superres:superresolve", {"INPUT": layer, "MODEL": "bicubic", "SCALE": "2",
                                             "ISE_ITERATIONS": 0, "EXTENT": extent, "OUTPUT": str(out)})
    return out, gdal.Open(str(out))


def test_extent_in_the_layer_crs_pins_the_window(tmp_path, aerial_x2):
    layer = QgsRasterLayer(str(AERIAL), "aerial")
    ext = layer.extent()
    x0, y1 = ext.xMinimum(), ext.yMaximum()
    # columns 20.3 to 60.7, rows 10.2 to 50.5 (0.1 m pixels): snaps to x 20, y 10, 41 x 41
    out, ds = _bicubic_x2_on(layer, f"{x0 + 2.03},{x0 + 6.07},{y1 - 5.05},{y1 - 1.02} [{layer.crs().authid()}]",
                             tmp_path)
    assert _corner_window(out) == (20, 10) and (ds.RasterXSize, ds.RasterYSize) == (82, 82)
    assert_same_pixels(read(out), aerial_x2[:, 20:102, 40:122])


def test_extent_in_another_crs_is_snapped(tmp_path, aerial_x2):
    layer = QgsRasterLayer(str(AERIAL), "aerial")
    x0, pw, _, y0, _, ph = gdal.Open(str(AERIAL)).GetGeoTransform()
    # about columns 20.3 to 60.7 and rows 10.2 to 50.5, given in WGS 84
    inner = QgsRectangle(x0 + 20.3 * pw, y0 + 50.5 * ph, x0 + 60.7 * pw, y0 + 10.2 * ph)
    wgs84 = QgsCoordinateReferenceSystem("EPSG:4326")
    geo = QgsCoordinateTransform(layer.crs(), wgs84, QgsProject.instance()).transformBoundingBox(inner)
    # expected: the WGS 84 box's corners back in UTM by OSR (not QGIS), snapped outward
    utm, ll = osr.SpatialReference(), osr.SpatialReference()
    utm.ImportFromWkt(gdal.Open(str(AERIAL)).GetProjection())
    ll.ImportFromEPSG(4326)
    ll.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    to_utm = osr.CoordinateTransformation(ll, utm)
    corners = [to_utm.TransformPoint(x, y)[:2] for x in (geo.xMinimum(), geo.xMaximum())
               for y in (geo.yMinimum(), geo.yMaximum())]
    cols = [(x - x0) / pw for x, _ in corners]
    rows = [(y - y0) / ph for _, y in corners]
    assert all(0.01 < v % 1 < 0.99 for v in cols + rows)   # no edge within a hundredth of a pixel line
    c0, c1 = int(np.floor(min(cols))), int(np.ceil(max(cols)))
    r0, r1 = int(np.floor(min(rows))), int(np.ceil(max(rows)))
    out, ds = _bicubic_x2_on(layer, f"{geo.xMinimum()},{geo.xMaximum()},{geo.yMinimum()},{geo.yMaximum()} [EPSG:4326]",
                             tmp_path)
    assert _corner_window(out) == (c0, r0)
    assert (ds.RasterXSize, ds.RasterYSize) == (2 * (c1 - c0), 2 * (r1 - r0))
    assert c0 <= 20 and r0 <= 10 and c1 >= 61 and r1 >= 51 and c1 - c0 < 45   # around the asked box
    assert_same_pixels(read(out), aerial_x2[:, 2 * r0:2 * r1, 2 * c0:2 * c1])


def test_bands_parameter(tmp_path):
    out = tmp_path / "b.tif"
    processing.run("superres:superresolve", {"INPUT": str(LANDSAT), "MODEL": "bicubic", "SCALE": "2",
                                             "ISE_ITERATIONS": 0, "BANDS": [3], "OUTPUT": str(out)})
    full = tmp_path / "full.tif"
    processing.run("superres:superresolve", {"INPUT": str(LANDSAT), "MODEL": "bicubic", "SCALE": "2",
                                             "ISE_ITERATIONS": 0, "OUTPUT": str(full)})
    assert gdal.Open(str(out)).RasterCount == 1
    np.testing.assert_array_equal(read(out)[0], read(full)[2])          # band 3, not band 1
    with pytest.raises(QgsProcessingException, match="BANDS 5 out of range: the input has bands 1 to 3"):
        processing.run("superres:superresolve", {"INPUT": str(LANDSAT), "MODEL": "bicubic",
                                                 "SCALE": "2", "BANDS": [5], "OUTPUT": str(tmp_path / "x.tif")})
    assert not (tmp_path / "x.tif").exists()


def test_advanced_parameters_reach_the_run(tmp_path, package):
    """TILE_OVERLAP, ISE_KERNEL, WEIGHTS, SELF_ENSEMBLE, ZERO_COLLAR and OUTPUT_MASK: the backend's pixels."""
    job = package.backend.job
    x0, pw, _, y0, _, ph = gdal.Open(str(COLLAR)).GetGeoTransform()
    extent = (x0 + 10 * pw, y0 + 50 * ph, x0 + 60 * pw, y0 + 10 * ph)     # 50 x 40 px, the collar's edge
    out, log = tmp_path / "alg.tif", Log()
    processing.run("superres:superresolve", {
        "INPUT": str(COLLAR), "MODEL": "dganet", "SCALE": "2", "ISE_ITERATIONS": 1, "BANDS": [2],
        "EXTENT": f"{extent[0]},{extent[2]},{extent[1]},{extent[3]}", "TILE_SIZE": 16, "TILE_OVERLAP": 4,
        "ISE_KERNEL": "bilinear", "WEIGHTS": "aerial", "SELF_ENSEMBLE": True, "ZERO_COLLAR": False,
        "OUTPUT_MASK": True, "OUTPUT": str(out)}, feedback=log)
    text = "\n".join(log.lines)
    assert "Tiles: 12 of up to 16 px with a 4 px margin" in text
    assert "kernel bilinear (as asked), self-ensemble of 8 flips and rotations" in text
    assert "weights 'aerial'" in text.lower() and "zeros line" not in text
    ref = tmp_path / "ref.tif"
    job.run_job(job.SuperResolveJob(str(COLLAR), str(ref), "dganet", 2, 1, extent=extent, bands=[2], tile_size=16,
                                    tile_overlap=4, ise_kernel="bilinear", write_mask=True, zero_collar="off",
                                    weights="aerial", self_ensemble=True))
    np.testing.assert_array_equal(read(out), read(ref))
    a = gdal.Open(str(out))
    assert a.GetRasterBand(1).GetNoDataValue() is None                 # zeros are data here
    assert a.GetRasterBand(1).GetMaskFlags() == gdal.GMF_PER_DATASET   # the mask band is there
    with pytest.raises(QgsProcessingException, match="TILE_OVERLAP"):
        processing.run("superres:superresolve", {"INPUT": str(COLLAR), "MODEL": "bicubic", "SCALE": "2",
                                                 "TILE_OVERLAP": -1, "OUTPUT": str(tmp_path / "x.tif")})
    assert not (tmp_path / "x.tif").exists()


def test_existing_output_is_replaced(tmp_path):
    out = tmp_path / "o.tif"
    out.write_bytes(b"an old file")   # the dialog asked before choosing it
    processing.run("superres:superresolve", {"INPUT": str(LANDSAT), "MODEL": "nearest", "SCALE": "2",
                                             "ISE_ITERATIONS": 0, "OUTPUT": str(out)})
    np.testing.assert_array_equal(read(out), np.kron(read(LANDSAT), np.ones((1, 2, 2), np.uint16)))
    assert [p.name for p in tmp_path.iterdir()] == ["o.tif"]


def test_cuda_without_gpu_is_a_clear_error(tmp_path):
    _no_gpu()
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
