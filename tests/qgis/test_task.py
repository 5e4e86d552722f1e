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


def test_gui_action_and_dialog(qgis_iface, package, monkeypatch):
    plugin = package.classFactory(qgis_iface)
    plugin.initGui()
    try:
        assert isinstance(plugin.action, QAction) and plugin.action.text() == "Super-resolve layer…"
        assert [a.text() for a in plugin.actions] == ["Super-resolve layer…", "Install PyTorch…",
                                                      "Copy diagnostics"]
        dialog_mod = import_module(package.__name__ + ".ui.superresolve_dialog")
        dialog = dialog_mod.SuperResolveDialog()
        models = [dialog.model_combo.itemData(i) for i in range(dialog.model_combo.count())]
        assert models[:4] == ["dganet", "bicubic", "bilinear", "nearest"] and "edsr" in models
        # only the scales a model has weights for: edsr has x4 only, the baselines all three
        scales = lambda: [dialog.scale_combo.itemData(i) for i in range(dialog.scale_combo.count())]  # noqa: E731
        assert dialog.scale_combo.currentData() == "4"
        dialog.model_combo.setCurrentIndex(dialog.model_combo.findData("edsr"))
        assert scales() == ["4"]
        dialog.model_combo.setCurrentIndex(dialog.model_combo.findData("bicubic"))
        assert scales() == ["2", "4", "8"] and dialog.scale_combo.currentData() == "4"
        # a model without weights (the ablation arms, in the plugin zip) is not offered
        spec_type = type(import_module(package.__name__ + ".backend.registry").get_model("edsr"))
        with_weights = spec_type.available_scales
        monkeypatch.setattr(spec_type, "available_scales",
                            lambda self: () if self.name == "edsr" else with_weights(self))
        dialog = dialog_mod.SuperResolveDialog()
        assert [dialog.model_combo.itemData(i) for i in range(dialog.model_combo.count())] == \
            [m for m in models if m != "edsr"]
        dialog.model_combo.setCurrentIndex(dialog.model_combo.findData("bicubic"))
        dialog.scale_combo.setCurrentIndex(dialog.scale_combo.findData("2"))
        dialog.ise_spin.setValue(7)
        params = dialog.parameters()
        assert (params["MODEL"], params["SCALE"], params["ISE_ITERATIONS"]) == ("bicubic", "2", 7)
    finally:
        plugin.unload()


def test_diagnostics_action_copies_versions_device_and_weights(qgis_iface, package):
    import configparser

    import torch
    from osgeo import gdal
    from qgis.core import Qgis

    from helpers import ROOT
    plugin = package.classFactory(qgis_iface)
    plugin.initGui()
    try:
        QgsApplication.clipboard().clear()
        next(a for a in plugin.actions if a.text() == "Copy diagnostics").trigger()
        text = QgsApplication.clipboard().text()
    finally:
        plugin.unload()
    meta = configparser.ConfigParser()
    meta.read(ROOT / "metadata.txt")
    lines = text.splitlines()
    assert lines[0].startswith(f"Raster Super-Resolution {meta['general']['version']} (")
    assert f"QGIS {Qgis.QGIS_VERSION}" in lines and f"GDAL {gdal.__version__}" in lines
    assert f"PyTorch: {torch.__version__} from {torch.__file__.rsplit('/', 1)[0]}" in lines
    cuda = "CUDA: available" if torch.cuda.is_available() else "CUDA: not available (built for CPU only)"
    assert any(line.startswith(cuda) for line in lines)
    assert f"Device (auto): {'cuda' if torch.cuda.is_available() else 'cpu'}" in lines
    weights = [line.strip().split(" ")[0] for line in lines[lines.index("Weights:") + 1:]]
    assert weights == sorted(p.name for p in (ROOT / "resources" / "weights").glob("*.safetensors"))
    assert "  dganet_x4_aerial.safetensors (float32, 2.8 MB)" in lines


def test_without_torch_the_message_bar_offers_the_installer(qgis_iface, package, monkeypatch):
    from qgis.PyQt.QtWidgets import QPushButton
    monkeypatch.setattr(import_module(package.__name__ + ".backend.torch_support"), "TORCH_AVAILABLE", False)
    bar = qgis_iface.messageBar()
    bar.clearWidgets()
    plugin = package.classFactory(qgis_iface)
    plugin.initGui()
    try:
        item = bar.currentItem()
        assert item is not None and "PyTorch is not installed" in item.text()
        buttons = [b.text() for b in item.findChildren(QPushButton)]
        assert "Install PyTorch…" in buttons
    finally:
        plugin.unload()
        bar.clearWidgets()


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
