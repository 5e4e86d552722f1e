"""The "Super-resolve layer…" dialog: collects parameters, computes nothing."""
from pathlib import Path

from qgis.core import QgsMapLayerProxyModel
from qgis.gui import QgsFileWidget
from qgis.PyQt import uic

from ..backend.registry import MODELS, get_model

FORM, BASE = uic.loadUiType(str(Path(__file__).with_suffix(".ui")))


class SuperResolveDialog(BASE, FORM):
    """Choose layer, model, scale, ISE iterations and output."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setupUi(self)
        self.layer_combo.setFilters(QgsMapLayerProxyModel.RasterLayer)
        for spec in MODELS:
            if spec.available_scales():   # the zip leaves the ablation arms' weights out
                self.model_combo.addItem(spec.title, spec.name)
        self.model_combo.currentIndexChanged.connect(self.offer_scales)
        self.offer_scales()
        self.output_widget.setStorageMode(QgsFileWidget.SaveFile)
        self.output_widget.setFilter("GeoTIFF (*.tif *.tiff)")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

    def offer_scales(self) -> None:
        """List the scales the chosen model has weights for, keeping the choice (×4 first)."""
        kept = self.scale_combo.currentData() or "4"
        scales = [str(s) for s in get_model(self.model_combo.currentData()).available_scales()]
        self.scale_combo.clear()
        for scale in scales:
            self.scale_combo.addItem(f"×{scale}", scale)
        self.scale_combo.setCurrentIndex(scales.index(kept) if kept in scales else 0)

    def parameters(self) -> dict:
        """The `superres:superresolve` parameters the user chose."""
        layer = self.layer_combo.currentLayer()
        return {
            "INPUT": layer.id() if layer is not None else None,
            "MODEL": self.model_combo.currentData(),
            "SCALE": self.scale_combo.currentData(),
            "ISE_ITERATIONS": self.ise_spin.value(),
            "OUTPUT": self.output_widget.filePath() or "TEMPORARY_OUTPUT",
        }
