"""QGIS-tier fixtures: load the plugin the way QGIS does (after DataPlotly's conftest).

The repo root is the plugin folder; a session-wide symlink gives it the
package name QGIS would use, whatever the clone's folder is called.
"""
import configparser
import importlib
import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
PACKAGE = "raster_super_resolution"
_LINKS = Path(tempfile.mkdtemp(prefix="superres-pkg-"))
(_LINKS / PACKAGE).symlink_to(ROOT, target_is_directory=True)
sys.path.insert(0, str(_LINKS))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# QGIS computes statistics when it loads a layer and GDAL saves them beside the
# file (.aux.xml); keep the committed crops pristine.
os.environ["GDAL_PAM_ENABLED"] = "NO"
# auto precision measures once per machine (backend/calibrate.py): once per session here
os.environ.setdefault("SUPERRES_CACHE_DIR", tempfile.mkdtemp(prefix="superres-cache-"))


@pytest.fixture(scope="session", autouse=True)
def plugin(qgis_app, qgis_iface, qgis_processing):
    """Read metadata.txt, then classFactory(iface).initProcessing(), as QGIS does."""
    meta = configparser.ConfigParser()
    meta.read(ROOT / "metadata.txt")
    assert meta["general"]["hasProcessingProvider"] == "yes"
    module = importlib.import_module(PACKAGE)
    instance = module.classFactory(qgis_iface)
    instance.initProcessing()
    yield instance
    instance.unload()


@pytest.fixture(scope="session", autouse=True)
def layer_tree_view(qgis_iface):
    """A real layer tree view over the project's tree, as QGIS's iface has.

    Processing (QGIS 3.44) hands ``iface.layerTreeView()`` to
    ``QgsProcessingGuiUtils.addResultLayers`` when a run loads its outputs;
    pytest-qgis's mock iface would hand it a MagicMock, the call raises inside
    a finished task's slot, and PyQt aborts the process.
    """
    from qgis.core import QgsLayerTreeModel, QgsProject
    from qgis.gui import QgsLayerTreeView
    view = QgsLayerTreeView()
    view.setModel(QgsLayerTreeModel(QgsProject.instance().layerTreeRoot(), view))
    qgis_iface.layerTreeView = lambda: view
    yield view
    del qgis_iface.layerTreeView


@pytest.fixture
def package():
    """The plugin package as imported under its QGIS name."""
    return importlib.import_module(PACKAGE)


@pytest.fixture
def dialog_module(package):
    """The dialog's module, as imported under the plugin's package name."""
    return importlib.import_module(package.__name__ + ".ui.superresolve_dialog")


@pytest.fixture
def layers():
    """The aerial and Landsat crops as project layers (removed afterwards)."""
    from qgis.core import QgsProject, QgsRasterLayer
    from helpers import AERIAL, LANDSAT
    project = QgsProject.instance()
    added = {name: QgsRasterLayer(str(path), name) for name, path in (("aerial", AERIAL), ("landsat", LANDSAT))}
    for layer in added.values():
        project.addMapLayer(layer)
    yield added
    for layer in added.values():
        project.removeMapLayer(layer.id())
