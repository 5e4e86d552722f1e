"""The plugin class: registers the provider and adds the menu/toolbar action."""

from qgis.core import QgsApplication
from qgis.PyQt.QtGui import QIcon
from qgis.PyQt.QtWidgets import QAction

from ..processing_provider.provider import ICON, SuperResProvider

MENU = "&Raster Super-Resolution"


class SuperResPlugin:
    """Thin plugin class: provider in ``initProcessing``, actions in ``initGui``."""

    def __init__(self, iface):
        self.iface = iface
        self.provider = None
        self.action = None

    def initProcessing(self):  # noqa: N802 (QGIS API name)
        """Register the `superres` provider (also called by qgis_process)."""
        provider = SuperResProvider()
        # addProvider refuses (and deletes) a duplicate id: keep only one we own
        self.provider = provider if QgsApplication.processingRegistry().addProvider(provider) else None

    def initGui(self):  # noqa: N802
        """Register the provider, then add the "Super-resolve layer..." action."""
        self.initProcessing()
        self.action = QAction(QIcon(ICON), "Super-resolve layer…", self.iface.mainWindow())
        self.action.triggered.connect(self.show_dialog)
        self.iface.addPluginToRasterMenu(MENU, self.action)
        self.iface.addRasterToolBarIcon(self.action)

    def unload(self):
        """Remove the action and the provider."""
        if self.action is not None:
            self.iface.removePluginRasterMenu(MENU, self.action)
            self.iface.removeRasterToolBarIcon(self.action)
            self.action = None
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None

    def show_dialog(self):
        """Ask for the parameters, then run the algorithm as a background task."""
        from ..ui.superresolve_dialog import SuperResolveDialog
        from .runner import run_in_background
        dialog = SuperResolveDialog(self.iface.mainWindow())
        if dialog.exec_():
            run_in_background(dialog.parameters(), message_bar=self.iface.messageBar())


