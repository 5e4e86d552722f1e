"""The "Super-resolve layer…" dialog: collects a run's parameters and hands them on.

What it shows is computed elsewhere: model descriptions by the registry,
the training-domain warning by ``backend.domain``, sizes, time estimates and
the preview by ``plugin.preview``. The dialog is not modal, so drawing an
extent on the map works while it is open.
"""
from pathlib import Path
from typing import Optional

from qgis.core import (QgsApplication, QgsCoordinateTransform, QgsMapLayerProxyModel, QgsProject,
                       QgsRasterLayer, QgsTask)
from qgis.gui import QgsFileWidget
from qgis.PyQt import uic
from qgis.PyQt.QtCore import QTemporaryDir, Qt, QTimer
from qgis.PyQt.QtGui import QPixmap
from qgis.PyQt.QtWidgets import QDialogButtonBox, QMessageBox

from ..backend.domain import check_input
from ..backend.errors import SuperResError
from ..backend.registry import analyst_models, get_model, plain_description
from ..plugin import preview as pv
from ..plugin.parameters import SuperResolveParameters
from ..plugin.result_layer import capture_look

FORM, BASE = uic.loadUiType(str(Path(__file__).with_suffix(".ui")))

ISE_TOOLTIP = ("Image-specific enhancement: after the model, the result is corrected this many times "
               "so that, shrunk back to the input's pixels, it matches the input. A few iterations keep "
               "colours and edges faithful to the input; 0 turns it off. Each iteration costs a little time.")
NODATA_TOOLTIP = ("Which input values are nodata. Declared: the layer's own value (where that is 255 in a "
                  "Byte image, saturated highlights become holes). None: every pixel is data. These values: "
                  "one for every band, or one per band (band 1 first). The output declares the same; the "
                  "run log says how many pixels were treated as nodata.")
WARNING_STYLE = "background: #fff3cd; color: #664d03; border: 1px solid #e0c36a; padding: 6px;"
ERROR_STYLE = "background: #f8d7da; color: #58151c; border: 1px solid #e4a4ab; padding: 6px;"


def cuda_name() -> str:
    """The CUDA GPU PyTorch sees, or "" when there is none (or no PyTorch)."""
    from ..backend import torch_support as ts
    if not ts.TORCH_AVAILABLE or not ts.torch.cuda.is_available():
        return ""
    return ts.torch.cuda.get_device_name(0)


class SuperResolveDialog(BASE, FORM):
    """Layer, model, scale, ISE, extent, bands, device and output, with a preview.

    ``parameters()`` returns the chosen ``SuperResolveParameters``; the
    caller runs them (``plugin.runner``) when the dialog is accepted.
    """

    def __init__(self, iface=None, parent=None):
        super().__init__(parent)
        self.setupUi(self)
        self.iface = iface
        self.canvas = iface.mapCanvas() if iface is not None else None
        self.folder = QTemporaryDir()
        self.preview_task: Optional[pv.PreviewTask] = None
        self.timing_task: Optional[pv.TimingTask] = None
        self.timing_key = None
        self.suggested_output = ""
        self.layer_combo.setFilters(QgsMapLayerProxyModel.Filter.RasterLayer)
        for spec in analyst_models():
            self.model_combo.addItem(spec.title, spec.name)
            self.model_combo.setItemData(self.model_combo.count() - 1, plain_description(spec),
                                         Qt.ItemDataRole.ToolTipRole)
        self.ise_spin.setToolTip(ISE_TOOLTIP)
        self.label_ise.setToolTip(ISE_TOOLTIP)
        self.fill_devices()
        self.nodata_combo.setToolTip(NODATA_TOOLTIP)
        self.label_nodata.setToolTip(NODATA_TOOLTIP)
        self.nodata_edit.setToolTip("One value for every band, or one per band, separated by commas.")
        self.output_widget.setStorageMode(QgsFileWidget.StorageMode.SaveFile)
        self.output_widget.setFilter("GeoTIFF (*.tif *.tiff)")
        self.output_widget.setToolTip("Where to write the result. It is added to the map when the run ends.")
        self.extent_box.setTitleBase("Limit to an extent")
        self.extent_box.setToolTip("Unchecked: the whole layer. Checked: the layer's extent, the map "
                                   "view, or a rectangle drawn on the map (snapped outward to whole pixels).")
        if self.canvas is not None:
            self.extent_box.setMapCanvas(self.canvas)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Run")
        self.timing_timer = QTimer(self, singleShot=True, interval=700)
        self.timing_timer.timeout.connect(self.start_timing)

        self.layer_combo.layerChanged.connect(self.on_layer_changed)
        self.model_combo.currentIndexChanged.connect(self.on_model_changed)
        self.scale_combo.currentIndexChanged.connect(self.on_settings_changed)
        self.ise_spin.valueChanged.connect(self.on_settings_changed)
        self.device_combo.currentIndexChanged.connect(self.on_settings_changed)
        self.nodata_combo.currentIndexChanged.connect(self.on_nodata_changed)
        self.nodata_edit.editingFinished.connect(self.on_settings_changed)
        self.bands_combo.checkedItemsChanged.connect(self.on_settings_changed)
        self.extent_box.extentChanged.connect(self.update_estimate)
        self.extent_box.toggled.connect(self.update_estimate)
        self.output_widget.fileChanged.connect(lambda _path: self.warn_about_output(False))
        self.preview_button.clicked.connect(self.start_preview)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.buttons.helpRequested.connect(self.show_help)
        self.on_model_changed()
        self.on_layer_changed(self.layer_combo.currentLayer())

    # --- what the widgets offer ---------------------------------------------------------

    def fill_devices(self) -> None:
        """auto, CPU and CUDA, saying what was detected; CUDA greyed out without a GPU."""
        gpu = cuda_name()
        self.device_combo.clear()
        self.device_combo.addItem(f"Automatic ({'CUDA: ' + gpu if gpu else 'CPU: no CUDA GPU found'})", "auto")
        self.device_combo.addItem("CPU", "cpu")
        self.device_combo.addItem(f"CUDA: {gpu}" if gpu else "CUDA (no GPU found)", "cuda")
        if not gpu:
            self.device_combo.model().item(2).setEnabled(False)
        self.device_combo.setToolTip("Where the model runs. Automatic uses a CUDA GPU when PyTorch sees one.")

    def fill_nodata(self) -> None:
        """Declared (naming the layer's values), none, or values typed in; the choice is kept."""
        kept = self.nodata_combo.currentData() or "declared"
        self.nodata_combo.blockSignals(True)
        self.nodata_combo.clear()
        self.nodata_combo.addItem(f"Declared by the layer ({self.declared_nodata()})", "declared")
        self.nodata_combo.addItem("None: every pixel is data", "none")
        self.nodata_combo.addItem("These values:", "values")
        self.nodata_combo.setCurrentIndex(self.nodata_combo.findData(kept))
        self.nodata_combo.blockSignals(False)
        self.on_nodata_changed()

    def declared_nodata(self) -> str:
        """The layer's declared nodata, e.g. ``255`` or ``none declared``."""
        layer = self.layer()
        if layer is None:
            return "none declared"
        provider = layer.dataProvider()
        shown = [f"{provider.sourceNoDataValue(b):g}" if provider.sourceHasNoDataValue(b) else "none"
                 for b in range(1, layer.bandCount() + 1)]
        if len(set(shown)) == 1:
            return "none declared" if shown[0] == "none" else shown[0]
        return ", ".join(shown)

    def on_nodata_changed(self, _index=None) -> None:
        """The values field is for the "These values" choice only."""
        self.nodata_edit.setEnabled(self.nodata_combo.currentData() == "values")
        self.on_settings_changed()   # the preview and the time estimate follow the choice

    def nodata(self) -> str:
        """The NODATA parameter: ``declared``, ``none`` or the values typed in."""
        choice = self.nodata_combo.currentData() or "declared"
        return self.nodata_edit.text().strip() if choice == "values" else choice

    def nodata_problem(self) -> str:
        """Why the typed nodata values cannot be used with this layer, or ""."""
        if self.nodata_combo.currentData() != "values" or not self.is_file_layer():
            return ""
        if not self.nodata():
            return "Type the input nodata values (e.g. 0 or 0,0,0), or choose Declared or None."
        from ..backend.raster_io import read_info
        from ..backend.src_nodata import resolve_src_nodata
        try:
            info = read_info(pv.layer_path(self.layer()))
            resolve_src_nodata(self.nodata(), [b.nodata for b in info.bands],
                               self.bands() or range(1, info.band_count + 1), info.dtype)
        except SuperResError as exc:
            return str(exc)
        return ""

    def offer_scales(self) -> None:
        """List the scales the chosen model has weights for, keeping the choice (×4 first)."""
        kept = self.scale_combo.currentData() or "4"
        scales = [str(s) for s in get_model(self.model_combo.currentData()).available_scales()]
        self.scale_combo.blockSignals(True)
        self.scale_combo.clear()
        for scale in scales:
            self.scale_combo.addItem(f"×{scale}", scale)
        self.scale_combo.setCurrentIndex(scales.index(kept) if kept in scales else 0)
        self.scale_combo.blockSignals(False)

    def layer(self) -> Optional[QgsRasterLayer]:
        """The chosen raster layer."""
        layer = self.layer_combo.currentLayer()
        return layer if isinstance(layer, QgsRasterLayer) else None

    def is_file_layer(self) -> bool:
        """Whether the chosen layer is a file GDAL reads (the only kind the run takes)."""
        layer = self.layer()
        return layer is not None and layer.providerType() == "gdal"

    def bands(self) -> list:
        """The checked bands, in band order; empty means all."""
        checked = [int(b) for b in self.bands_combo.checkedItemsData()]
        layer = self.layer()
        if layer is None or len(checked) == layer.bandCount():
            return []
        return sorted(checked)

    def band_count(self) -> int:
        """How many bands the output will have."""
        layer = self.layer()
        return len(self.bands()) or (layer.bandCount() if layer is not None else 0)

    def scale(self) -> int:
        """The chosen scale."""
        return int(self.scale_combo.currentData() or 4)

    def extent_rect(self):
        """The extent to process in the layer's CRS, or None for the whole layer."""
        layer = self.layer()
        if layer is None or not self.extent_box.isChecked():
            return None
        rect = self.extent_box.outputExtent()
        crs = self.extent_box.outputCrs()
        if crs.isValid() and crs != layer.crs():
            rect = QgsCoordinateTransform(crs, layer.crs(), QgsProject.instance()).transformBoundingBox(rect)
        return rect

    def settings(self) -> Optional[pv.RunSettings]:
        """What a preview or timing runs, or None without a file layer."""
        if not self.is_file_layer():
            return None
        return pv.RunSettings(pv.layer_path(self.layer()), self.model_combo.currentData(), self.scale(),
                              self.ise_spin.value(), self.bands(), self.device_combo.currentData(), self.nodata())

    # --- reacting to choices ------------------------------------------------------------

    def on_layer_changed(self, layer=None) -> None:
        """New bands, extent defaults and output name for the chosen layer."""
        layer = self.layer()
        self.bands_combo.blockSignals(True)
        self.bands_combo.clear()
        if layer is not None:
            for band in range(1, layer.bandCount() + 1):
                self.bands_combo.addItemWithCheckState(layer.bandName(band), Qt.CheckState.Checked, band)
            self.extent_box.setOriginalExtent(layer.extent(), layer.crs())
            self.extent_box.setCurrentExtent(layer.extent(), layer.crs())
            self.extent_box.setOutputCrs(layer.crs())
            self.extent_box.setOutputExtentFromOriginal()
            self.extent_box.setChecked(False)   # setting an extent checks the box; the default is all
        self.bands_combo.blockSignals(False)
        self.fill_nodata()
        self.on_settings_changed()

    def on_model_changed(self, _index=None) -> None:
        """The model's description and its scales."""
        spec = get_model(self.model_combo.currentData())
        self.model_label.setText(plain_description(spec))
        self.offer_scales()
        self.on_settings_changed()

    def on_settings_changed(self, *_args) -> None:
        """Re-check the domain, the output name, the size and (soon) the time."""
        self.update_domain()
        self.suggest_output()
        self.update_estimate()
        self.timing_key = None
        if self.isVisible():
            self.timing_timer.start()

    def update_domain(self) -> None:
        """The weights' training domain, and a warning when the layer is far from it."""
        layer = self.layer()
        domain, warnings = "", []
        if layer is not None and not self.is_file_layer():
            warnings = [f"'{layer.name()}' is a {layer.providerType()} layer, not a file: save it as a "
                        "GeoTIFF first (right-click > Export > Save As…)."]
        elif layer is not None:
            try:
                domain, warnings = check_input(pv.layer_path(layer), self.bands(), self.model_combo.currentData(),
                                               self.scale())
            except SuperResError as exc:
                warnings = [str(exc)]
        self.domain_label.setText(domain)
        self.domain_label.setVisible(bool(domain))
        self.show_warning("\n\n".join(warnings), WARNING_STYLE)

    def show_warning(self, text: str, style: str) -> None:
        """The warning box, hidden when there is nothing to say."""
        self.warning_label.setStyleSheet(style)
        self.warning_label.setText(text)
        self.warning_label.setVisible(bool(text))

    def suggest_output(self) -> None:
        """``<input>_<model>_x<scale>.tif`` beside the input, unless the user chose a file."""
        layer = self.layer()
        current = self.output_widget.filePath()
        if layer is None or (current and current != self.suggested_output):
            return
        src = Path(pv.layer_path(layer))
        folder = src.parent if src.parent.is_dir() and _writable(src.parent) else Path.home()
        stem = f"{src.stem if self.is_file_layer() else layer.name()}_{self.model_combo.currentData()}_x{self.scale()}"
        path, n = folder / f"{stem}.tif", 2
        while path.exists():
            path, n = folder / f"{stem}_{n}.tif", n + 1
        self.suggested_output = str(path)
        self.output_widget.setFilePath(self.suggested_output)

    def update_estimate(self, *_args) -> None:
        """Output size in pixels and bytes, and the time estimate when there is one."""
        layer = self.layer()
        if layer is None:
            self.estimate_label.setText("")
            return
        w, h, size = pv.output_estimate(layer, self.extent_rect(), self.scale(), self.band_count())
        text = f"Output: {w:,} × {h:,} px, {self.band_count()} band(s), {pv.human_bytes(size)} uncompressed."
        task = self.timing_task
        if task is not None and self.timing_key == self.timing_settings_key() and task.timed:
            seconds = task.estimate(w * h // (self.scale() ** 2))
            text += f" Time: about {pv.human_seconds(seconds)} (from a short timing)."
        elif task is not None and task.error and self.timing_key == self.timing_settings_key():
            text += f" Time: not estimated ({task.error})"
        else:
            text += " Time: estimating…" if self.isVisible() and self.is_file_layer() else ""
        self.estimate_label.setText(text)

    def warn_about_output(self, refuse: bool) -> bool:
        """Whether the output is usable; with ``refuse``, say why not in the warning box."""
        path = self.output_widget.filePath().strip()
        problem = ""
        if not path:
            problem = "Choose where to save the result (Output GeoTIFF)."
        elif not Path(path).parent.is_dir():
            problem = f"The folder '{Path(path).parent}' does not exist."
        if refuse and problem:
            self.show_warning(problem, ERROR_STYLE)
        return not problem

    # --- time estimate and preview ------------------------------------------------------

    def timing_settings_key(self):
        """What the time estimate depends on (not the extent: the estimate scales with it)."""
        s = self.settings()
        return None if s is None else (s.path, s.model, s.scale, s.ise_iterations, tuple(s.bands), s.device,
                                      s.nodata)

    def start_timing(self) -> None:
        """Time two small crops in the background (the previous timing is cancelled)."""
        settings = self.settings()
        if settings is None:
            return
        _cancel(self.timing_task)
        key = self.timing_settings_key()
        task = pv.TimingTask(settings, self.layer(), self.folder.path())
        task.taskCompleted.connect(lambda: self.timing_done(task, key))
        task.taskTerminated.connect(lambda: self.timing_done(task, key))
        self.timing_task = task
        QgsApplication.taskManager().addTask(task)

    def timing_done(self, task: pv.TimingTask, key) -> None:
        """Show the estimate if the settings are still those timed."""
        if task is self.timing_task and key == self.timing_settings_key():
            self.timing_key = key
            self.update_estimate()

    def preview_rect(self):
        """The preview's window (layer CRS) and what it is: the middle of the visible part
        of the layer, or of the whole layer when none of it is in view."""
        layer = self.layer()
        if self.canvas is not None:
            transform = QgsCoordinateTransform(self.canvas.mapSettings().destinationCrs(), layer.crs(),
                                               QgsProject.instance())
            rect = pv.preview_rect(layer, transform.transformBoundingBox(self.canvas.extent()), self.scale())
            if rect is not None:
                return rect, "the middle of the visible area"
        return pv.preview_rect(layer, layer.extent(), self.scale()), "the middle of the layer (not in view)"

    def start_preview(self) -> None:
        """Super-resolve the visible window with the model and bicubic, in the background."""
        settings = self.settings()
        if settings is None:
            self.preview_status.setText("Choose a raster layer stored in a file.")
            return
        rect, self.preview_where = self.preview_rect()
        _cancel(self.preview_task)
        task = pv.PreviewTask(settings, rect, self.folder.path())
        self.preview_look = capture_look(self.layer())
        task.progressChanged.connect(lambda p: self.preview_status.setText(f"Working… {p:.0f}%"))
        task.taskCompleted.connect(lambda: self.preview_done(task))
        task.taskTerminated.connect(lambda: self.preview_done(task))
        self.preview_task = task
        self.preview_status.setText("Working…")
        self.preview_button.setEnabled(False)
        QgsApplication.taskManager().addTask(task)

    def preview_done(self, task: pv.PreviewTask) -> None:
        """Show both images side by side, drawn like the input layer."""
        if task is not self.preview_task:
            return
        self.preview_button.setEnabled(True)
        if task.status() != QgsTask.TaskStatus.Complete:
            self.preview_status.setText(task.error or "Preview cancelled.")
            return
        bands = task.settings.bands
        panes = ((self.model_image, task.outputs[0]), (self.bicubic_image, task.outputs[1]))
        for label, path in panes:
            image = pv.render(path, self.preview_look, bands)
            pixmap = QPixmap.fromImage(image)
            label.setPixmap(pixmap.scaled(label.width(), label.height(), Qt.AspectRatioMode.KeepAspectRatio,
                                          Qt.TransformationMode.SmoothTransformation))
        title = self.model_combo.currentText().split(" (")[0]
        ise = f" + ISE {task.settings.ise_iterations}" if task.settings.ise_iterations else ""
        self.model_caption.setText(f"{title} ×{task.settings.scale}{ise}")
        self.bicubic_caption.setText(f"Bicubic ×{task.settings.scale}")
        self.preview_status.setText(f"{self.preview_where[0].upper()}{self.preview_where[1:]}; the model "
                                    f"took {task.seconds:.1f} s.")

    # --- the result ---------------------------------------------------------------------

    def parameters(self) -> SuperResolveParameters:
        """The run the user chose."""
        layer = self.layer()
        rect = self.extent_rect()
        return SuperResolveParameters(
            layer_id=layer.id() if layer is not None else "",
            model=self.model_combo.currentData(),
            scale=self.scale(),
            ise_iterations=self.ise_spin.value(),
            output=self.output_widget.filePath().strip(),
            extent=None if rect is None else (rect.xMinimum(), rect.yMinimum(), rect.xMaximum(), rect.yMaximum()),
            extent_crs=layer.crs().authid() if rect is not None and layer is not None else "",
            bands=self.bands(),
            device=self.device_combo.currentData(),
            nodata=self.nodata(),
        )

    def accept(self) -> None:
        """Close and hand on, unless the layer or the output cannot be used (said in the box)."""
        if not self.is_file_layer():
            self.show_warning("Choose a raster layer stored in a file (GeoTIFF, JPEG2000, …).", ERROR_STYLE)
            return
        if not self.warn_about_output(True):
            return
        problem = self.nodata_problem()
        if problem:
            self.show_warning(problem, ERROR_STYLE)
            return
        super().accept()

    def done(self, result: int) -> None:
        """Stop background work when the dialog closes."""
        self.timing_timer.stop()
        _cancel(self.preview_task)
        _cancel(self.timing_task)
        super().done(result)

    def showEvent(self, event):  # noqa: N802 (Qt API name)
        """Start the time estimate once the dialog is on screen."""
        super().showEvent(event)
        self.timing_timer.start()

    def show_help(self) -> None:
        """The algorithm's help: what each model is for, ISE, and the output."""
        alg = QgsApplication.processingRegistry().algorithmById("superres:superresolve")
        QMessageBox.information(self, "Super-resolve layer", alg.shortHelpString() if alg else "")


def _cancel(task: Optional[QgsTask]) -> None:
    """Cancel a task that may have ended (and been deleted by the task manager)."""
    try:
        if task is not None and task.status() not in (QgsTask.TaskStatus.Complete, QgsTask.TaskStatus.Terminated):
            task.cancel()
    except RuntimeError:
        pass


def _writable(folder: Path) -> bool:
    import os
    return os.access(folder, os.W_OK)
