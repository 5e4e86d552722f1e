"""NODATA (input nodata as the analyst decides) in the algorithm, a graphical model, qgis_process and the dialog."""
import sys

import numpy as np
import processing
import pytest
from osgeo import gdal
from qgis.core import (QgsApplication, QgsProcessingException, QgsProcessingFeedback,
                       QgsProcessingModelAlgorithm, QgsProcessingModelChildAlgorithm,
                       QgsProcessingModelChildParameterSource as Source, QgsProcessingModelOutput,
                       QgsProcessingModelParameter, QgsProcessingParameterRasterLayer,
                       QgsProcessingParameterString)

from helpers import AERIAL, ROOT, read

sys.path.insert(0, str(ROOT / "tools"))
from qgis_profile import run_qgis_process, temporary_config  # noqa: E402


class Log(QgsProcessingFeedback):
    """Feedback that keeps the algorithm's log lines."""

    def __init__(self):
        super().__init__()
        self.lines = []

    def pushInfo(self, info):  # noqa: N802 (QGIS API name)
        """Keep the line."""
        self.lines.append(info)
        super().pushInfo(info)


def _declared(path):
    ds = gdal.Open(str(path))
    return [ds.GetRasterBand(i + 1).GetNoDataValue() for i in range(ds.RasterCount)]


def _highlights_x2():
    return np.kron(read(AERIAL) == 255, np.ones((1, 2, 2), bool))


def test_nodata_parameter():
    alg = QgsApplication.processingRegistry().algorithmById("superres:superresolve")
    names = [p.name() for p in alg.parameterDefinitions()]
    assert names.index("NODATA") == names.index("SELF_ENSEMBLE") + 1 == names.index("ZERO_COLLAR") - 1
    param = alg.parameterDefinition("NODATA")
    assert isinstance(param, QgsProcessingParameterString) and param.defaultValue() == "declared"
    assert param.flags() & param.FlagAdvanced and param.flags() & param.FlagOptional
    assert "-srcnodata" in param.help() and "none (every pixel is data" in param.help()


def test_declared_none_and_values_through_processing(package, tmp_path):
    job = package.backend.job
    runs = {}
    for choice in (None, "none", "0,0,0", "255"):
        out, log = tmp_path / f"{choice}.tif", Log()
        params = {"INPUT": str(AERIAL), "MODEL": "bicubic", "SCALE": "2", "ISE_ITERATIONS": 0, "OUTPUT": str(out)}
        if choice is not None:
            params["NODATA"] = choice
        processing.run("superres:superresolve", params, feedback=log)
        runs[choice] = (read(out), _declared(out), log.lines)
    sr, declared, lines = runs[None]                     # the default: the layer's 255, holes, a warning
    assert declared == [255.0] * 3
    np.testing.assert_array_equal(sr == 255, _highlights_x2())
    assert any(line.startswith("Input nodata: 255 in every band (declared by the input): 85 (0.52%) of 16,384")
               for line in lines)
    assert any(line.startswith("Warning: the declared nodata 255 is the Byte maximum") for line in lines)
    sr, declared, lines = runs["none"]                   # every pixel is data
    assert declared == [None] * 3 and "Input nodata: none (NODATA none): no pixel is nodata." in lines
    assert not any(line.startswith("Warning:") for line in lines)
    assert sr[_highlights_x2()].mean() > 200             # the highlights are bright pixels, not holes
    ref = tmp_path / "ref.tif"
    job.run_job(job.SuperResolveJob(str(AERIAL), str(ref), "bicubic", 2, 0, src_nodata="none"))
    np.testing.assert_array_equal(sr, read(ref))
    sr, declared, lines = runs["0,0,0"]
    assert declared == [0.0] * 3 and "Input nodata: 0 in every band (NODATA as asked): no pixel is nodata." in lines
    np.testing.assert_array_equal(runs["255"][0], runs[None][0])   # the declared value, given: the same run
    assert not any(line.startswith("Warning:") for line in runs["255"][2])   # given, so not second-guessed


@pytest.mark.parametrize("value,message", [
    ("1,2", "NODATA has 2 values but the input has 3 bands"),
    ("bright", "NODATA 'bright' is not 'declared'"),
    ("300", "NODATA 300 does not fit the input's data type Byte, which holds whole numbers from 0 to 255."),
])
def test_bad_nodata_is_one_clear_error(tmp_path, value, message):
    with pytest.raises(QgsProcessingException) as err:
        processing.run("superres:superresolve", {"INPUT": str(AERIAL), "MODEL": "bicubic", "SCALE": "2",
                                                 "NODATA": value, "OUTPUT": str(tmp_path / "o.tif")})
    assert str(err.value).startswith(message) and "\n" not in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_nodata_in_a_graphical_model(tmp_path):
    """A model input (a string) feeds NODATA, as an analyst wires it in the modeler."""
    model = QgsProcessingModelAlgorithm("Super-resolve with a nodata choice", "Tests")
    for definition in (QgsProcessingParameterRasterLayer("input", "Raster"),
                       QgsProcessingParameterString("nodata", "Input nodata", "declared")):
        model.addModelParameter(definition, QgsProcessingModelParameter(definition.name()))
    step = QgsProcessingModelChildAlgorithm("superres:superresolve")
    step.setChildId("sr")
    sources = {"INPUT": Source.fromModelParameter("input"), "MODEL": Source.fromStaticValue("bicubic"),
               "SCALE": Source.fromStaticValue("2"), "ISE_ITERATIONS": Source.fromStaticValue(0),
               "NODATA": Source.fromModelParameter("nodata")}
    # as the modeler's dialog does: every other parameter at its default
    for param in QgsApplication.processingRegistry().algorithmById("superres:superresolve").parameterDefinitions():
        if not param.isDestination() and param.name() not in sources:
            sources[param.name()] = Source.fromStaticValue(param.defaultValue())
    for name, source in sources.items():
        step.addParameterSources(name, [source])
    output = QgsProcessingModelOutput("result", "Result")
    output.setChildOutputName("OUTPUT")
    output.setChildId("sr")
    step.setModelOutputs({"result": output})
    model.addChildAlgorithm(step)
    model.updateDestinationParameters()
    valid, issues = model.validate()
    assert valid, issues
    (dest,) = model.destinationParameterDefinitions()
    for choice, declared in (("none", [None] * 3), ("declared", [255.0] * 3)):
        out = tmp_path / f"{choice}.tif"
        results = processing.run(model, {"input": str(AERIAL), "nodata": choice, dest.name(): str(out)})
        assert _declared(results[dest.name()]) == declared


def test_qgis_process_nodata_none(tmp_path):
    cfg = temporary_config(tmp_path / "cfg")
    out = tmp_path / "qp.tif"
    proc = run_qgis_process(cfg, ["run", "superres:superresolve", "--", f"INPUT={AERIAL}", "MODEL=bicubic",
                                  "SCALE=2", "ISE_ITERATIONS=0", "NODATA=none", f"OUTPUT={out}"], timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Input nodata: none (NODATA none): no pixel is nodata." in proc.stdout
    assert _declared(out) == [None] * 3 and read(out)[_highlights_x2()].mean() > 200


def test_dialog_offers_declared_none_and_values(dialog_module, qgis_iface, layers, tmp_path):
    dialog = dialog_module.SuperResolveDialog(qgis_iface)
    dialog.layer_combo.setLayer(layers["aerial"])
    combo = dialog.nodata_combo
    assert [combo.itemData(i) for i in range(combo.count())] == ["declared", "none", "values"]
    assert combo.itemText(0) == "Declared by the layer (255)" and combo.currentData() == "declared"
    assert not dialog.nodata_edit.isEnabled() and "saturated highlights" in combo.toolTip()
    assert "NODATA" not in dialog.parameters().processing_parameters()   # the default, left out
    combo.setCurrentIndex(combo.findData("none"))
    dialog.model_combo.setCurrentIndex(dialog.model_combo.findData("bicubic"))
    dialog.scale_combo.setCurrentIndex(dialog.scale_combo.findData("2"))
    out = tmp_path / "none.tif"
    dialog.output_widget.setFilePath(str(out))
    params = dialog.parameters()
    assert params.nodata == "none" and params.processing_parameters()["NODATA"] == "none"
    # the preview and the time estimate run the same choice
    assert dialog.settings().job(str(tmp_path / "p.tif")).src_nodata == "none"
    assert dialog.timing_settings_key()[-1] == "none"
    processing.run("superres:superresolve", params.processing_parameters())
    assert _declared(out) == [None] * 3
    # typed values: checked against the layer before the dialog closes
    combo.setCurrentIndex(combo.findData("values"))
    assert dialog.nodata_edit.isEnabled()
    for text, problem in (("", "Type the input nodata values"), ("1,2", "NODATA has 2 values but the input has 3"),
                          ("256", "NODATA 256 does not fit the input's data type Byte")):
        dialog.nodata_edit.setText(text)
        dialog.accept()
        assert dialog.result() == 0 and dialog.warning_label.text().startswith(problem), text
    dialog.nodata_edit.setText("0, 0, 0")
    assert dialog.nodata_problem() == "" and dialog.parameters().nodata == "0, 0, 0"
    dialog.accept()
    assert dialog.result() == 1
    # the choice is kept across layers, and the label names each layer's own value
    dialog.layer_combo.setLayer(layers["landsat"])
    assert combo.currentData() == "values" and combo.itemText(0) == "Declared by the layer (none declared)"
