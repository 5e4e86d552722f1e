"""The plugin's own action runs through a QgsTask and adds the result as a layer."""
import time
from importlib import import_module

import numpy as np
import pytest
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


@pytest.fixture
def logged():
    """QGIS's message log while the test runs, as (level, text).

    The slot is disconnected after the test, pass or fail: one left on the
    global log is called by later tests' worker threads, and on QGIS 3.44
    with Python 3.14 that crashed test_two_tasks_at_once_match_runs_alone.
    """
    messages = []

    def on_message(message, _tag, level):
        messages.append((level, message))
    log = QgsApplication.messageLog()
    log.messageReceived.connect(on_message)
    yield messages
    log.messageReceived.disconnect(on_message)


def _runner(package):
    return import_module(package.__name__ + ".plugin.runner")


def _styled(layer):
    """Give ``layer`` a look unlike QGIS's default: bands 3, 2, 1 with fixed min/max."""
    from qgis.core import QgsContrastEnhancement, QgsMultiBandColorRenderer
    renderer = QgsMultiBandColorRenderer(layer.dataProvider(), 3, 2, 1)
    for i, setter in enumerate((renderer.setRedContrastEnhancement, renderer.setGreenContrastEnhancement,
                                renderer.setBlueContrastEnhancement)):
        ce = QgsContrastEnhancement(layer.dataProvider().dataType(1))
        ce.setContrastEnhancementAlgorithm(QgsContrastEnhancement.StretchToMinimumMaximum)
        ce.setMinimumValue(10 + i)
        ce.setMaximumValue(200 - i)
        setter(ce)
    renderer.setOpacity(0.8)
    layer.setRenderer(renderer)
    layer.brightnessFilter().setContrast(20)
    return layer


def _look(layer):
    r = layer.renderer()
    ces = (r.redContrastEnhancement(), r.greenContrastEnhancement(), r.blueContrastEnhancement())
    return (r.type(), r.redBand(), r.greenBand(), r.blueBand(), r.opacity(),
            [(c.minimumValue(), c.maximumValue(), c.contrastEnhancementAlgorithm()) for c in ces],
            layer.brightnessFilter().contrast())


def test_background_run_adds_named_layer_drawn_like_its_input(tmp_path, package, qgis_iface):
    from qgis.core import Qgis
    project = QgsProject.instance()
    layer = _styled(QgsRasterLayer(str(AERIAL), "aerial"))
    project.addMapLayer(layer)
    bar = qgis_iface.messageBar()
    bar.clearWidgets()
    finished = []
    task = _runner(package).run_in_background(
        {"INPUT": layer.id(), "MODEL": "dganet", "SCALE": "4", "ISE_ITERATIONS": 1,
         "OUTPUT": str(tmp_path / "task.tif")}, project,
        on_finished=lambda ok, lyr: finished.append((ok, lyr)), message_bar=bar, canvas=qgis_iface.mapCanvas())
    assert task.description() == "Super-resolving aerial dganet x4"
    _until(lambda: finished)
    ok, result = finished[0]
    assert ok and result.isValid() and result.name() == "aerial dganet x4"
    assert project.mapLayersByName("aerial dganet x4") == [result]
    assert result.width() == 512 and result.source() == str(tmp_path / "task.tif")
    # drawn like its input: same renderer, bands, min/max, opacity and contrast
    assert _look(result) == _look(layer) and _look(layer)[1:4] == (3, 2, 1)
    # provenance: the file's tags, and the layer's metadata abstract (Layer Properties)
    assert "SUPER_RESOLVED=YES" in result.htmlMetadata()
    assert "synthesised" in result.metadata().abstract() and "SR_MODEL: dganet" in result.metadata().abstract()
    # one success message, with a button that zooms to the new layer
    from qgis.PyQt.QtWidgets import QPushButton
    item = bar.currentItem()
    assert item.level() == Qgis.Success and item.text() == "Added aerial dganet x4."
    qgis_iface.mapCanvas().setExtent(layer.extent().buffered(1000))
    next(b for b in item.findChildren(QPushButton) if b.text() == "Zoom to layer").click()
    assert qgis_iface.mapCanvas().extent().contains(result.extent())
    assert qgis_iface.mapCanvas().extent().width() < 100     # was 2 km wide
    bar.clearWidgets()
    project.removeMapLayers([layer.id(), result.id()])


def test_processing_dialog_result_is_drawn_like_its_input(tmp_path):
    """Run from the Processing Toolbox (runAndLoadResults loads as its dialog does)."""
    import processing
    project = QgsProject.instance()
    layer = _styled(QgsRasterLayer(str(AERIAL), "aerial"))
    project.addMapLayer(layer)
    processing.runAndLoadResults("superres:superresolve", {"INPUT": layer, "MODEL": "bicubic", "SCALE": "2",
                                                           "ISE_ITERATIONS": 0, "OUTPUT": "TEMPORARY_OUTPUT"})
    result = project.mapLayersByName("aerial bicubic x2")[0]
    assert _look(result) == _look(layer)
    assert "SR_MODEL: bicubic" in result.metadata().abstract()
    project.removeMapLayers([layer.id(), result.id()])


def test_renderer_follows_the_chosen_bands(package):
    result_layer = import_module(package.__name__ + ".plugin.result_layer")
    layer = _styled(QgsRasterLayer(str(AERIAL), "aerial"))
    look = result_layer.capture_look(layer)
    # BANDS 3, 2, 1: output band 1 holds input band 3, so red (input 3) becomes output band 1
    renderer = result_layer.mapped_renderer(look, [3, 2, 1])
    assert (renderer.redBand(), renderer.greenBand(), renderer.blueBand()) == (1, 2, 3)
    assert renderer.redContrastEnhancement().minimumValue() == 10
    # an output without a band the input's renderer draws keeps QGIS's default
    assert result_layer.mapped_renderer(look, [1, 3]) is None


def test_cancelled_task_adds_nothing_and_says_so_once(tmp_path, package, qgis_iface, logged):
    from qgis.core import Qgis
    project = QgsProject.instance()
    before = set(project.mapLayers())
    bar = qgis_iface.messageBar()
    bar.clearWidgets()
    finished = []
    task = _runner(package).run_in_background(
        {"INPUT": str(LANDSAT), "MODEL": "bicubic", "SCALE": "8", "ISE_ITERATIONS": 20, "TILE_SIZE": 8,
         "OUTPUT": str(tmp_path / "cancel.tif")}, project,
        on_finished=lambda ok, lyr: finished.append((ok, lyr)), message_bar=bar)

    noticed = []

    def qgis_notice(task_id, status):   # what QGIS 3.22's window does for tasks of 5 s or more
        ended = QgsApplication.taskManager().task(task_id)
        if status == task.Terminated and ended is not None:
            noticed.append(ended.description())
            bar.pushWidget(bar.createMessage("Task failed", ended.description()), Qgis.Info)
    QgsApplication.taskManager().statusChanged.connect(qgis_notice)
    try:
        _until(lambda: list(tmp_path.glob(".cancel.partial-*")) or finished)   # it is writing
        assert not finished
        task.cancel()
        _until(lambda: finished)
        _until(lambda: any("No output was written" in m for _level, m in logged), timeout=10)
    finally:
        QgsApplication.taskManager().statusChanged.disconnect(qgis_notice)
    assert noticed == ["Super-resolving landsat_b2b3b4_128 bicubic x8"]
    _until(lambda: len(bar.items()) == 1, timeout=5)   # QGIS's generic notice is taken off
    assert finished == [(False, None)]
    assert set(project.mapLayers()) == before
    assert list(tmp_path.iterdir()) == []
    # the user's own cancel: one info message, nothing critical in the log
    assert [(i.level(), i.text()) for i in bar.items()] == [(Qgis.Info, "Cancelled: landsat_b2b3b4_128 "
                                                             "bicubic x8 was not made.")]
    assert [m for level, m in logged if level == Qgis.Critical] == []
    # the run's own line, once, saying where it stopped (before a tile, or inside one)
    assert sum(m.startswith("Cancelled ") and m.endswith("No output was written.") for _level, m in logged) == 1
    bar.clearWidgets()


def test_gui_action_menu_and_own_toolbar(qgis_iface, package):
    plugin = package.classFactory(qgis_iface)
    plugin.initGui()
    try:
        assert isinstance(plugin.action, QAction) and plugin.action.text() == "Super-resolve layer…"
        assert [a.text() for a in plugin.actions] == ["Super-resolve layer…", "Install PyTorch…",
                                                      "Copy diagnostics"]
        # a toolbar of its own: a fresh profile hides the Raster toolbar
        assert plugin.toolbar.windowTitle() == "Raster Super-Resolution"
        assert plugin.toolbar.actions() == [plugin.action]
        plugin.action.trigger()
        assert plugin.dialog.isVisible() and not plugin.dialog.isModal()
        plugin.dialog.close()
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
