"""The plugin class: registers the provider and adds the menu and toolbar actions."""
import os

from qgis.core import Qgis, QgsApplication
from qgis.PyQt.QtGui import QIcon
from qgis.PyQt.QtWidgets import QAction, QPushButton

from ..processing_provider.provider import ICON, SuperResProvider

MENU = "&Raster Super-Resolution"
TOOLBAR = "Raster Super-Resolution"
#: Where ``auto`` precision keeps what it measured (backend/calibrate.py), unless set already.
CACHE_ENV = "SUPERRES_CACHE_DIR"


def use_profile_cache() -> str:
    """Point the backend's cache into the QGIS profile's folder (a user's own setting wins)."""
    return os.environ.setdefault(CACHE_ENV, os.path.join(QgsApplication.qgisSettingsDirPath(),
                                                         "raster_super_resolution", "cache"))


class SuperResPlugin:
    """Thin plugin class: provider in ``initProcessing``, actions in ``initGui``.

    The action sits in the Raster menu and on a toolbar of its own (a fresh
    profile hides the Raster toolbar); the algorithms are in the Processing
    Toolbox.
    """

    def __init__(self, iface):
        self.iface = iface
        self.provider = None
        self.actions = []
        self.action = None
        self.toolbar = None
        self.dialog = None

    def initProcessing(self):  # noqa: N802 (QGIS API name)
        """Register the `superres` provider (also called by qgis_process)."""
        use_profile_cache()
        provider = SuperResProvider()
        # addProvider refuses (and deletes) a duplicate id: keep only one we own
        self.provider = provider if QgsApplication.processingRegistry().addProvider(provider) else None

    def initGui(self):  # noqa: N802
        """Register the provider, add the actions, and offer the installer if torch is missing."""
        self.initProcessing()
        parent = self.iface.mainWindow()
        self.action = QAction(QIcon(ICON), "Super-resolve layer…", parent)
        self.action.triggered.connect(self.show_dialog)
        install = QAction("Install PyTorch…", parent)
        install.triggered.connect(self.show_installer)
        diagnostics = QAction("Copy diagnostics", parent)
        diagnostics.triggered.connect(self.copy_diagnostics)
        self.actions = [self.action, install, diagnostics]
        for action in self.actions:
            self.iface.addPluginToRasterMenu(MENU, action)
        self.toolbar = self.iface.addToolBar(TOOLBAR)
        self.toolbar.setObjectName("RasterSuperResolutionToolbar")
        self.toolbar.addAction(self.action)
        from ..backend.torch_support import TORCH_AVAILABLE
        if not TORCH_AVAILABLE:
            self.offer_installer()

    def unload(self):
        """Remove the actions and the provider."""
        for action in self.actions:
            self.iface.removePluginRasterMenu(MENU, action)
        if self.toolbar is not None:
            self.toolbar.deleteLater()
        if self.dialog is not None:
            self.dialog.close()
        self.actions, self.action, self.toolbar, self.dialog = [], None, None, None
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None

    def show_dialog(self):
        """Show the dialog (not modal: drawing an extent needs the map); Run starts a background task."""
        from ..ui.superresolve_dialog import SuperResolveDialog
        if self.dialog is not None:
            self.dialog.close()
        self.dialog = SuperResolveDialog(self.iface, self.iface.mainWindow())
        self.dialog.accepted.connect(self.run_dialog)
        self.dialog.show()

    def run_dialog(self):
        """Run what the dialog asked for."""
        from .runner import run_in_background
        run_in_background(self.dialog.parameters().processing_parameters(),
                          message_bar=self.iface.messageBar(), canvas=self.iface.mapCanvas())

    def show_installer(self):
        """The PyTorch installer dialog."""
        from ..ui.torch_install_dialog import TorchInstallDialog
        TorchInstallDialog(self.iface.mainWindow()).exec()

    def offer_installer(self):
        """A message-bar notice with a button that opens the installer."""
        bar = self.iface.messageBar()
        item = bar.createMessage("Raster Super-Resolution",
                                 "PyTorch is not installed: the networks cannot run (the baselines can).")
        button = QPushButton("Install PyTorch…")
        button.clicked.connect(self.show_installer)
        item.layout().addWidget(button)
        bar.pushWidget(item, Qgis.MessageLevel.Warning)

    def copy_diagnostics(self):
        """Put the diagnostics text on the clipboard and say so."""
        from .diagnostics import diagnostics_text
        QgsApplication.clipboard().setText(diagnostics_text())
        self.iface.messageBar().pushMessage("Raster Super-Resolution", "Diagnostics copied to the clipboard.",
                                            Qgis.MessageLevel.Info, 5)
