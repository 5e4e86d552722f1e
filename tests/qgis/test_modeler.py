"""`superres:superresolve` inside a graphical model and a batch, as an analyst builds them."""
import sys

import numpy as np
import processing
from osgeo import gdal, osr
from qgis.core import QgsApplication, QgsProcessingModelAlgorithm, QgsProject, QgsRasterLayer

from helpers import AERIAL, LANDSAT, ROOT, read, until

sys.path.insert(0, str(ROOT / "tools"))
from example_model import MODEL_FILE, build_model  # noqa: E402


def _area():
    """Columns 16-48, rows 16-48 of the aerial crop (0.1 m pixels), in its CRS."""
    layer = QgsRasterLayer(str(AERIAL), "aerial")
    ext = layer.extent()
    x0, y1 = ext.xMinimum(), ext.yMaximum()
    return f"{x0 + 1.6},{x0 + 4.8},{y1 - 4.8},{y1 - 1.6} [{layer.crs().authid()}]"


def _origin(name, metadata):
    """"child:output" that a model's destination parameter comes from (3.22 names it so)."""
    if "_modelChildId" in metadata:
        return f"{metadata['_modelChildId']}:{metadata['_modelChildOutputName']}"
    return name


def _output(model):
    """The model's one destination parameter: "warp:Super-resolved" where QGIS 3.22 wrote or loads
    the model, "superresolved_reprojected" (its description) for a model built in QGIS 3.44."""
    (dest,) = model.destinationParameterDefinitions()
    assert _origin(dest.name(), dest.metadata()) == "warp:Super-resolved"
    return dest.name()


def _run(model, out):
    results = processing.run(model, {"input": str(AERIAL), "area": _area(), "scale": "2", "ise": 1,
                                     "crs": "EPSG:4326", _output(model): str(out)})
    return results[_output(model)]


def _comparable(model):
    """``model.toVariant()`` less what the QGIS writing or reading it decides by itself.

    That is: the format's ``internal_version`` (3.44 writes Version2); the
    destination parameters' names (see ``_output``), keyed here by the child
    output they come from; and the child parameters at their default, which
    build_model sets for every parameter it does not choose, so the GDAL
    algorithms' own parameters depend on the QGIS (3.44 adds CREATION_OPTIONS).
    """
    from qgis.core import QgsProcessingModelChildParameterSource as Source

    def blank(x):   # a file stores an empty static value as NULL
        return x is None or x == "" or (hasattr(x, "isNull") and x.isNull())

    static = Source.fromStaticValue(0).toVariant()["source"]   # its enum moved to Qgis after 3.22

    def at_default(sources, definition):
        if definition is None or len(sources) != 1 or sources[0].get("source") != static:
            return False
        value, default = sources[0].get("static_value"), definition.defaultValue()
        return value == default or (blank(value) and blank(default))

    v = model.toVariant()
    v.pop("internal_version", None)
    v["parameterDefinitions"] = {_origin(k, d.get("metadata", {})): {x: y for x, y in d.items() if x != "name"}
                                 for k, d in v["parameterDefinitions"].items()}
    for child in v["children"].values():
        alg = QgsApplication.processingRegistry().algorithmById(child["alg_id"])
        for name, sources in list(child["params"].items()):
            if at_default(sources, alg.parameterDefinition(name)):
                del child["params"][name]
    return v


def test_model_chains_gdal_superresolve_gdal(tmp_path):
    model = build_model()
    assert [model.childAlgorithm(c).algorithmId() for c in ("clip", "superresolve", "warp")] == \
        ["gdal:cliprasterbyextent", "superres:superresolve", "gdal:warpreproject"]
    valid, issues = model.validate()
    assert valid, issues
    out = tmp_path / "chain.tif"
    ds = gdal.Open(_run(model, out))
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
    assert _comparable(again) == _comparable(loaded)
    a, b = tmp_path / "file.tif", tmp_path / "built.tif"
    _run(loaded, a)
    _run(built, b)
    np.testing.assert_array_equal(read(a), read(b))


def test_batch_over_two_layers(tmp_path, qgis_iface):
    """Processing's Batch dialog, two rows, run as its Run button runs them."""
    from processing.gui.BatchAlgorithmDialog import BatchAlgorithmDialog
    from processing.tools import dataobjects

    class Dialog(BatchAlgorithmDialog):
        """The batch dialog, telling when its last row is done: QGIS 3.22 runs the rows before
        runAlgorithm returns, 3.44 in background tasks; both end with the summary table."""

        def __init__(self, alg):
            super().__init__(alg)
            self.summaries = []

        def createSummaryTable(self, algorithm_results, errors):
            self.summaries.append((len(algorithm_results), errors))
            super().createSummaryTable(algorithm_results, errors)

    project = QgsProject.instance()
    layers = [QgsRasterLayer(str(AERIAL), "aerial"), QgsRasterLayer(str(LANDSAT), "landsat")]
    project.addMapLayers(layers)
    alg = QgsApplication.processingRegistry().createAlgorithmById("superres:superresolve")
    dialog = Dialog(alg)
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
    # on screen, as when its Run button is clicked: QGIS 3.44 frees a hidden batch dialog's
    # feedback while the last row's layers load, and Processing's Python then aborts using it
    dialog.show()
    dialog.runAlgorithm()
    until(lambda: dialog.summaries)
    assert dialog.summaries == [(2, [])]
    for layer, out in zip(layers, outputs):
        ds = gdal.Open(str(out))
        assert (ds.RasterXSize, ds.RasterYSize) == (layer.width() * 2, layer.height() * 2)
        assert ds.GetMetadataItem("SR_WEIGHTS") == ("aerial" if layer.name() == "aerial" else "landsat")
    loaded = [lyr for lyr in project.mapLayers().values() if lyr.source() in map(str, outputs)]
    assert sorted(lyr.name() for lyr in loaded) == ["aerial dganet x2", "landsat dganet x2"]
    project.removeMapLayers([lyr.id() for lyr in loaded + layers])
    dialog.close()
