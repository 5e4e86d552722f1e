"""The "Super-resolve layer…" dialog: its choices, warnings, estimates and preview, on real crops."""
import numpy as np
import processing
import pytest
from osgeo import gdal
from qgis.core import QgsRectangle
from qgis.PyQt.QtCore import Qt

from helpers import AERIAL, LANDSAT, read, until


def _dialog(dialog_module, iface, layer):
    dialog = dialog_module.SuperResolveDialog(iface)
    dialog.layer_combo.setLayer(layer)
    return dialog


def _items(combo):
    return [combo.itemData(i) for i in range(combo.count())]


def test_models_are_the_curated_list_with_descriptions(dialog_module, qgis_iface, layers, package):
    registry = package.backend.registry
    dialog = _dialog(dialog_module, qgis_iface, layers["aerial"])
    models = _items(dialog.model_combo)
    assert models == [m.name for m in registry.analyst_models()]
    assert models[:2] == ["dganet", "dganet_large"] and {"bicubic", "bilinear", "nearest"} <= set(models)
    assert not {"edsr", "dganet_l2", "dganet_sg", "dganet_ga"} & set(models)
    assert dialog.model_combo.itemText(0) == "DGANet (gradient-aware network)"
    # the description says what it is for and, from the weights present, what it was trained on
    assert dialog.model_label.text().startswith("The general choice")
    assert "Aerial RGB, 10 cm" in dialog.model_label.text() and "Landsat 8 OLI, 30 m" in dialog.model_label.text()
    steps = package.backend.weights.read_metadata(registry.get_model("dganet").weights_path(4, "aerial"))["steps"]
    assert f"Trained on Aerial RGB, 10 cm, Byte (NEON), {steps} training steps" in dialog.domain_label.text()
    assert "iteration" in dialog.ise_spin.toolTip() and "matches the input" in dialog.ise_spin.toolTip()
    assert dialog.device_combo.itemData(0) == "auto" and "CPU" in dialog.device_combo.itemText(0) + \
        dialog.device_combo.itemText(1)


def test_scales_follow_the_model(dialog_module, qgis_iface, layers, package, monkeypatch):
    spec_type = type(package.backend.registry.get_model("dganet"))
    with_weights = spec_type.available_scales
    # a model with weights for x2 and x4 only (as a plugin zip without x8 files would have)
    monkeypatch.setattr(spec_type, "available_scales",
                        lambda self: (2, 4) if self.name == "dganet" else with_weights(self))
    assert _items(_dialog(dialog_module, qgis_iface, layers["aerial"]).scale_combo) == ["2", "4"]
    monkeypatch.undo()
    dialog = _dialog(dialog_module, qgis_iface, layers["aerial"])
    assert dialog.scale_combo.currentData() == "4" and _items(dialog.scale_combo) == ["2", "4", "8"]
    dialog.model_combo.setCurrentIndex(dialog.model_combo.findData("dganet_large"))
    assert _items(dialog.scale_combo) == ["4"]
    dialog.model_combo.setCurrentIndex(dialog.model_combo.findData("bicubic"))
    assert _items(dialog.scale_combo) == ["2", "4", "8"] and dialog.scale_combo.currentData() == "4"
    dialog.scale_combo.setCurrentIndex(dialog.scale_combo.findData("8"))
    dialog.model_combo.setCurrentIndex(dialog.model_combo.findData("dganet_large"))
    assert dialog.scale_combo.currentData() == "4"     # x8 is not there: the first it has


def test_parameters_from_widget_state_run_as_chosen(dialog_module, qgis_iface, layers, tmp_path):
    layer = layers["landsat"]
    dialog = _dialog(dialog_module, qgis_iface, layer)
    defaults = dialog.parameters()
    assert (defaults.model, defaults.scale, defaults.ise_iterations, defaults.extent, defaults.bands,
            defaults.device) == ("dganet", 4, 5, None, [], "auto")        # the whole layer, all bands
    assert set(defaults.processing_parameters()) == {"INPUT", "MODEL", "SCALE", "ISE_ITERATIONS", "DEVICE", "OUTPUT"}
    dialog.model_combo.setCurrentIndex(dialog.model_combo.findData("bicubic"))
    dialog.scale_combo.setCurrentIndex(dialog.scale_combo.findData("2"))
    dialog.ise_spin.setValue(1)
    dialog.bands_combo.setItemCheckState(1, Qt.Unchecked)          # band 2 off
    dialog.device_combo.setCurrentIndex(dialog.device_combo.findData("cpu"))
    ext = layer.extent()
    inner = QgsRectangle(ext.xMinimum() + 30 * 10, ext.yMaximum() - 30 * 40, ext.xMinimum() + 30 * 50,
                         ext.yMaximum() - 30 * 10)              # columns 10-50, rows 10-40
    dialog.extent_box.setChecked(True)
    dialog.extent_box.setOutputExtentFromUser(inner, layer.crs())
    out = tmp_path / "chosen.tif"
    dialog.output_widget.setFilePath(str(out))
    params = dialog.parameters()
    assert (params.layer_id, params.model, params.scale, params.ise_iterations, params.bands, params.device,
            params.output) == (layer.id(), "bicubic", 2, 1, [1, 3], "cpu", str(out))
    assert params.extent == pytest.approx((inner.xMinimum(), inner.yMinimum(), inner.xMaximum(), inner.yMaximum()))
    assert "Output: 80 × 60 px, 2 band(s)" in dialog.estimate_label.text()     # 40 x 30 input pixels, x2
    processing.run("superres:superresolve", params.processing_parameters())
    ds = gdal.Open(str(out))
    assert (ds.RasterXSize, ds.RasterYSize, ds.RasterCount) == (80, 60, 2)
    whole = tmp_path / "whole.tif"
    processing.run("superres:superresolve", {"INPUT": str(LANDSAT), "MODEL": "bicubic", "SCALE": "2",
                                             "ISE_ITERATIONS": 1, "BANDS": [1, 3], "DEVICE": "cpu",
                                             "EXTENT": f"{inner.xMinimum()},{inner.xMaximum()},"
                                                       f"{inner.yMinimum()},{inner.yMaximum()}",
                                             "OUTPUT": str(whole)})
    np.testing.assert_array_equal(read(out), read(whole))


def test_output_is_suggested_and_an_empty_one_refused(dialog_module, qgis_iface, layers):
    dialog = _dialog(dialog_module, qgis_iface, layers["aerial"])
    assert dialog.output_widget.filePath() == str(AERIAL.with_name("osbs_rgb_128_dganet_x4.tif"))
    dialog.scale_combo.setCurrentIndex(dialog.scale_combo.findData("2"))
    assert dialog.output_widget.filePath().endswith("osbs_rgb_128_dganet_x2.tif")   # follows until edited
    dialog.output_widget.setFilePath("")
    dialog.accept()
    assert dialog.result() == 0 and "Choose where to save" in dialog.warning_label.text()
    assert not dialog.warning_label.isHidden()


def test_domain_warning(dialog_module, qgis_iface, layers):
    dialog = _dialog(dialog_module, qgis_iface, layers["aerial"])
    assert dialog.warning_label.isHidden()                 # 10 cm RGB Byte: the aerial weights' own kind
    dialog.layer_combo.setLayer(layers["landsat"])          # dganet picks its Landsat weights: fine
    assert dialog.warning_label.isHidden() and "Weights 'landsat'" in dialog.domain_label.text()
    dialog.model_combo.setCurrentIndex(dialog.model_combo.findData("dganet_large"))   # aerial weights only
    text = dialog.warning_label.text()
    assert not dialog.warning_label.isHidden()
    assert "30 m, 300 times larger" in text and "UInt16" in text and "grey image" in text
    dialog.model_combo.setCurrentIndex(dialog.model_combo.findData("bicubic"))
    assert dialog.warning_label.isHidden()


def test_preview_beside_bicubic_and_time_estimate(dialog_module, qgis_iface, layers):
    layer = layers["aerial"]
    canvas = qgis_iface.mapCanvas()
    canvas.setDestinationCrs(layer.crs())
    canvas.resize(400, 400)
    ext = layer.extent()
    canvas.setExtent(QgsRectangle(ext.xMinimum(), ext.yMaximum() - 6.4, ext.xMinimum() + 6.4, ext.yMaximum()))
    dialog = _dialog(dialog_module, qgis_iface, layer)
    dialog.scale_combo.setCurrentIndex(dialog.scale_combo.findData("2"))
    dialog.ise_spin.setValue(1)
    dialog.start_preview()
    until(lambda: dialog.preview_button.isEnabled())
    model_out, bicubic_out = dialog.preview_task.outputs
    # the visible part of the layer (its top-left corner), x2, through the whole pipeline
    visible = canvas.extent().intersect(ext)
    for path in (model_out, bicubic_out):
        ds = gdal.Open(path)
        assert (ds.RasterXSize, ds.RasterYSize) == (round(visible.width() / 0.1) * 2, round(visible.height() / 0.1) * 2)
        assert ds.GetGeoTransform()[0] == pytest.approx(ext.xMinimum())
        assert ds.GetGeoTransform()[3] == pytest.approx(ext.yMaximum())
    assert gdal.Open(model_out).GetMetadataItem("SR_MODEL") == "dganet"
    assert gdal.Open(bicubic_out).GetMetadataItem("SR_MODEL") == "bicubic"
    assert not np.array_equal(read(model_out), read(bicubic_out))
    for label in (dialog.model_image, dialog.bicubic_image):
        assert label.pixmap() is not None and not label.pixmap().isNull()
    assert dialog.model_caption.text() == "DGANet ×2 + ISE 1" and dialog.bicubic_caption.text() == "Bicubic ×2"
    assert dialog.preview_status.text().startswith("The middle of the visible area")
    dialog.start_timing()
    until(lambda: dialog.timing_key is not None)
    assert "Time: about" in dialog.estimate_label.text()
