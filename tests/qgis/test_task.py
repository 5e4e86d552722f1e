"""The plugin's own action runs through a QgsTask and adds the result as a layer."""
import time
from importlib import import_module

import numpy as np
from qgis.core import QgsApplication, QgsProject, QgsRasterLayer, QgsTask
from qgis.PyQt.QtWidgets import QAction

from helpers import AERIAL, LANDSAT, read


def _until(condition, timeout=300):
    start = time.time()
    while not condition():
        if time.time() - start > timeout:
            raise TimeoutError("task did not finish")
        QgsApplication.processEvents()
        time.sleep(0.02)


def _runner(package):
    return import_module(package.__name__ + ".plugin.runner")


def test_background_run_adds_named_layer(tmp_path, package):
    project = QgsProject.instance()
    layer = QgsRasterLayer(str(AERIAL), "aerial")
    project.addMapLayer(layer)
    finished = []
    _runner(package).run_in_background(
        {"INPUT": layer.id(), "MODEL": "dganet", "SCALE": "4", "ISE_ITERATIONS": 1,
         "OUTPUT": str(tmp_path / "task.tif")}, project,
        on_finished=lambda ok, lyr: finished.append((ok, lyr)))
    _until(lambda: finished)
    ok, result = finished[0]
    assert ok and result.isValid() and result.name() == "aerial dganet x4"
    assert project.mapLayersByName("aerial dganet x4") == [result]
    assert result.width() == 512 and result.source() == str(tmp_path / "task.tif")


def test_cancelled_task_adds_nothing(tmp_path, package):
    project = QgsProject.instance()
    before = set(project.mapLayers())
    finished = []
    task = _runner(package).run_in_background(
        {"INPUT": str(LANDSAT), "MODEL": "bicubic", "SCALE": "8", "ISE_ITERATIONS": 20, "TILE_SIZE": 8,
         "OUTPUT": str(tmp_path / "cancel.tif")}, project,
        on_finished=lambda ok, lyr: finished.append((ok, lyr)))
    _until(lambda: list(tmp_path.glob(".cancel.partial-*")) or finished)   # it is writing
    assert not finished
    task.cancel()
    _until(lambda: finished)
    assert finished == [(False, None)]
    assert set(project.mapLayers()) == before
    assert list(tmp_path.iterdir()) == []


def test_gui_action_and_dialog(qgis_iface, package):
    plugin = package.classFactory(qgis_iface)
    plugin.initGui()
    try:
        assert isinstance(plugin.action, QAction) and plugin.action.text() == "Super-resolve layer…"
        dialog_mod = import_module(package.__name__ + ".ui.superresolve_dialog")
        dialog = dialog_mod.SuperResolveDialog()
        dialog.model_combo.setCurrentIndex(dialog.model_combo.findData("bicubic"))
        dialog.scale_combo.setCurrentIndex(dialog.scale_combo.findData("2"))
        dialog.ise_spin.setValue(7)
        params = dialog.parameters()
        assert (params["MODEL"], params["SCALE"], params["ISE_ITERATIONS"]) == ("bicubic", "2", 7)
    finally:
        plugin.unload()


def test_two_tasks_at_once_match_runs_alone(tmp_path, package):
    """Two runs in QGIS at the same time (each loads its own network) give the pixels of runs alone."""
    project = QgsProject.instance()
    params = [{"INPUT": str(LANDSAT), "MODEL": "dganet", "SCALE": "2", "ISE_ITERATIONS": 1, "BANDS": [1, 3],
               "OUTPUT": str(tmp_path / "a.tif")},
              {"INPUT": str(AERIAL), "MODEL": "dganet", "SCALE": "2", "ISE_ITERATIONS": 1,
               "OUTPUT": str(tmp_path / "b.tif")}]
    finished, statuses = {}, []
    manager = QgsApplication.taskManager()

    def status_changed(_task_id, status):
        statuses.append(status)
    manager.statusChanged.connect(status_changed)   # before the tasks start, so no change is missed
    try:
        for i, p in enumerate(params):
            _runner(package).run_in_background(
                p, project, on_finished=lambda ok, lyr, i=i: finished.update({i: (ok, lyr)}))
        _until(lambda: len(finished) == 2)
    finally:
        manager.statusChanged.disconnect(status_changed)
    running = [s for s in statuses if s in (QgsTask.Running, QgsTask.Complete)]
    assert running[:2] == [QgsTask.Running, QgsTask.Running], statuses   # both ran before either ended
    assert all(ok and lyr.isValid() and project.mapLayer(lyr.id()) is lyr for ok, lyr in finished.values())
    job = package.backend.job
    for i, p in enumerate(params):
        ref = tmp_path / f"ref{i}.tif"
        job.run_job(job.SuperResolveJob(p["INPUT"], str(ref), "dganet", 2, 1, bands=p.get("BANDS")))
        np.testing.assert_array_equal(read(p["OUTPUT"]), read(ref))
