"""The `superres` Processing provider."""
from pathlib import Path

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

ICON = str(Path(__file__).resolve().parent.parent / "resources" / "icons" / "superres.svg")


class SuperResProvider(QgsProcessingProvider):
    """Provides the super-resolution algorithms."""

    def id(self):
        """Provider id used in algorithm ids (`superres:...`)."""
        return "superres"

    def name(self):
        """Name shown in the Processing Toolbox."""
        return "Raster super-resolution"

    def icon(self):
        """Toolbox icon."""
        return QIcon(ICON)

    def loadAlgorithms(self):
        """Register the algorithms."""
        from .evaluate import EvaluateAlgorithm
        from .superresolve import SuperResolveAlgorithm
        self.addAlgorithm(SuperResolveAlgorithm())
        self.addAlgorithm(EvaluateAlgorithm())
