"""The plugin's own action runs through a QgsTask and adds the result as a layer."""
import time

from qgis.core import QgsApplication, QgsProject, QgsRasterLayer
from qgis.PyQt.QtWidgets import QAction

from helpers import LANDSAT


def _wait(task, timeout=300):
    start = time.time()
    while time.time() - start < timeout:
        QgsApplication.processEvents()
        if task.status() in (task.Complete, task.Terminated) and getattr(task, "_done", False):
            return
        time.sleep(0.05)
    raise TimeoutError("task did not finish")


def test_background_run_adds_named_layer(tmp_path, package):
    project = QgsProject.instance()
    layer = QgsRasterLayer(str(LANDSAT), "landsat")
    project.addMapLayer(layer)
    finished = []
    task = package.plugin.runner.run_in_background(
        {"INPUT": layer.id(), "MODEL": "dganet", "SCALE": "4", "ISE_ITERATIONS": 1,
         "OUTPUT": str(tmp_path / "task.tif")}, project,
        on_finished=lambda ok, lyr: (finished.append((ok, lyr)), setattr(task, "_done", True)))
    _wait(task)
    ok, result = finished[0]
    assert ok and result.isValid() and result.name() == "landsat dganet x4"
    assert project.mapLayersByName("landsat dganet x4")
    assert result.width() == 512


def test_cancelled_task_adds_nothing(tmp_path, package):
    project = QgsProject.instance()
    before = set(project.mapLayers())
    finished = []
    task = package.plugin.runner.run_in_background(
        {"INPUT": str(LANDSAT), "MODEL": "dganet", "SCALE": "8", "ISE_ITERATIONS": 10, "TILE_SIZE": 8,
         "OUTPUT": str(tmp_path / "cancel.tif")}, project,
        on_finished=lambda ok, lyr: (finished.append((ok, lyr)), setattr(task, "_done", True)))
    while task.progress() <= 0 and task.status() != task.Complete:
        QgsApplication.processEvents()
        time.sleep(0.01)
    task.cancel()
    _wait(task)
    assert finished == [(False, None)]
    assert set(project.mapLayers()) == before
    assert list(tmp_path.iterdir()) == []


def test_gui_action_and_dialog(qgis_iface, package):
    plugin = package.classFactory(qgis_iface)
    plugin.initGui()
    try:
        assert isinstance(plugin.action, QAction) and plugin.action.text() == "Super-resolve layer…"
        from importlib import import_module
        dialog_mod = import_module(package.__name__ + ".ui.superresolve_dialog")
        dialog = dialog_mod.SuperResolveDialog()
        dialog.model_combo.setCurrentIndex(dialog.model_combo.findData("bicubic"))
        dialog.scale_combo.setCurrentIndex(dialog.scale_combo.findData("2"))
        dialog.ise_spin.setValue(7)
        params = dialog.parameters()
        assert (params["MODEL"], params["SCALE"], params["ISE_ITERATIONS"]) == ("bicubic", "2", 7)
    finally:
        plugin.unload()
