"""`superres:superresolve` inside a graphical model and a batch, as an analyst builds them."""
import sys

import numpy as np
import processing
from osgeo import gdal, osr
from qgis.core import QgsApplication, QgsProcessingModelAlgorithm, QgsProject, QgsRasterLayer

from helpers import AERIAL, LANDSAT, ROOT, read

sys.path.insert(0, str(ROOT / "tools"))
from example_model import MODEL_FILE, build_model  # noqa: E402


def _area():
    """Columns 16-48, rows 16-48 of the aerial crop (0.1 m pixels), in its CRS."""
    layer = QgsRasterLayer(str(AERIAL), "aerial")
    ext = layer.extent()
    x0, y1 = ext.xMinimum(), ext.yMaximum()
    return f"{x0 + 1.6},{x0 + 4.8},{y1 - 4.8},{y1 - 1.6} [{layer.crs().authid()}]"


def _run(model, out):
    return processing.run(model, {"input": str(AERIAL), "area": _area(), "scale": "2", "ise": 1,
                                  "crs": "EPSG:4326", "warp:Super-resolved": str(out)})


def test_model_chains_gdal_superresolve_gdal(tmp_path):
    model = build_model()
    assert [model.childAlgorithm(c).algorithmId() for c in ("clip", "superresolve", "warp")] == \
        ["gdal:cliprasterbyextent", "superres:superresolve", "gdal:warpreproject"]
    valid, issues = model.validate()
    assert valid, issues
    out = tmp_path / "chain.tif"
    results = _run(model, out)
    ds = gdal.Open(results["warp:Super-resolved"])
    srs = osr.SpatialReference(wkt=ds.GetProjection())
    assert srs.GetAuthorityCode(None) == "4326"
    # a 32 x 32 px clip made x2 finer, then warped: about 64 px across
    assert 56 <= ds.RasterXSize <= 72 and 56 <= ds.RasterYSize <= 72
    assert read(out).std() > 5   # a picture, not an empty raster


def test_committed_model_file_is_the_built_one_and_runs(tmp_path):
    loaded = QgsProcessingModelAlgorithm()
    assert loaded.fromFile(str(MODEL_FILE)), f"{MODEL_FILE} does not load"
    built = build_model()
    # the file is what tools/example_model.py writes (rerun it after changing the model)
    assert built.toFile(str(tmp_path / "built.model3"))
    again = QgsProcessingModelAlgorithm()
    assert again.fromFile(str(tmp_path / "built.model3"))   # both read back, so both alike in NULLs
    assert again.toVariant() == loaded.toVariant()
    a, b = tmp_path / "file.tif", tmp_path / "built.tif"
    _run(loaded, a)
    _run(built, b)
    np.testing.assert_array_equal(read(a), read(b))


def test_batch_over_two_layers(tmp_path, qgis_iface):
    """Processing's Batch dialog, two rows, run as its Run button runs them."""
    from processing.gui.BatchAlgorithmDialog import BatchAlgorithmDialog
    from processing.tools import dataobjects
    project = QgsProject.instance()
    layers = [QgsRasterLayer(str(AERIAL), "aerial"), QgsRasterLayer(str(LANDSAT), "landsat")]
    project.addMapLayers(layers)
    alg = QgsApplication.processingRegistry().createAlgorithmById("superres:superresolve")
    dialog = BatchAlgorithmDialog(alg)
    panel = dialog.mainWidget()
    panel.addRow()
    context = dataobjects.createContext()
    outputs = [tmp_path / "aerial_x2.tif", tmp_path / "landsat_x2.tif"]
    for row, (layer, out) in enumerate(zip(layers, outputs)):
        for name, value in (("INPUT", layer.id()), ("MODEL", "dganet"), ("SCALE", "2"), ("ISE_ITERATIONS", 0)):
            panel.wrappers[row][panel.parameter_to_column[name]].setParameterValue(value, context)
        panel.tblParameters.cellWidget(row + 1, panel.parameter_to_column["OUTPUT"]).setValue(str(out))
    assert panel.batchRowCount() == 2
    panel.checkLoadLayersOnCompletion.setChecked(True)
    dialog.runAlgorithm()
    for layer, out in zip(layers, outputs):
        ds = gdal.Open(str(out))
        assert (ds.RasterXSize, ds.RasterYSize) == (layer.width() * 2, layer.height() * 2)
        assert ds.GetMetadataItem("SR_WEIGHTS") == ("aerial" if layer.name() == "aerial" else "landsat")
    loaded = [lyr for lyr in project.mapLayers().values() if lyr.source() in map(str, outputs)]
    assert sorted(lyr.name() for lyr in loaded) == ["aerial dganet x2", "landsat dganet x2"]
    project.removeMapLayers([lyr.id() for lyr in loaded + layers])
    dialog.close()
