"""Runs inside QGIS (`qgis --code`) for `make gui-check`; see tools/gui_check.py.

Steps run from timers so QGIS's event loop keeps going: open the sample,
trigger the Raster menu entry, preview in the dialog, run, wait for the task,
show the result and its provenance, take screenshots, record the project's
layers and quit.
"""
import json
import os
import sys
import time
import traceback
from pathlib import Path

from qgis.core import Qgis, QgsApplication, QgsProject
from qgis.PyQt.QtCore import QTimer
from qgis.PyQt.QtGui import QGuiApplication
from qgis.PyQt.QtWidgets import QApplication, QDialogButtonBox, QToolBar
from qgis.utils import iface, plugins

OUT = Path(os.environ["SUPERRES_GUI_OUT"])
PLUGIN = "raster_super_resolution"
STATE = {"steps": [], "layers": [], "log": [], "progress": [], "start": time.time()}


def note(text):
    """One line of the session's record."""
    STATE["steps"].append(f"{time.time() - STATE['start']:6.1f} s  {text}")
    write()


def write():
    """Save the record (the checker reads it even if QGIS dies later)."""
    STATE["layers"] = [layer.name() for layer in QgsProject.instance().mapLayers().values()]
    (OUT / "result.json").write_text(json.dumps(STATE, indent=1, default=str))


def screen(name):
    """The whole X screen (dialogs included)."""
    QGuiApplication.primaryScreen().grabWindow(0).save(str(OUT / name))


def wait(condition, then, timeout=600, every=250):
    """Call ``then`` once ``condition()`` holds, polling from a timer."""
    started = time.time()

    def poll():
        try:
            if condition():
                then()
            elif time.time() - started > timeout:
                fail(f"timed out waiting ({then.__name__})")
            else:
                QTimer.singleShot(every, poll)
        except Exception:
            fail(traceback.format_exc())
    QTimer.singleShot(every, poll)


def fail(message):
    """Record the error and quit."""
    STATE["error"] = message
    write()
    QgsProject.instance().setDirty(False)
    QgsApplication.exit(1)


def step(function):
    """Run a step, recording any exception as the session's error."""
    def run():
        try:
            function()
        except Exception:
            fail(traceback.format_exc())
    run.__name__ = function.__name__
    return run


@step
def open_sample():
    """Check the plugin and its toolbar, open the sample, zoom to it."""
    main = iface.mainWindow()
    main.resize(1680, 1050)
    main.showMaximized()
    plugin = plugins.get(PLUGIN)
    if plugin is None:
        return fail(f"the plugin is not loaded; plugins: {sorted(plugins)}")
    note(f"plugin loaded from {Path(__import__(PLUGIN).__file__).parent}")
    toolbar = main.findChild(QToolBar, "RasterSuperResolutionToolbar")
    note(f"own toolbar: {'visible' if toolbar is not None and toolbar.isVisible() else 'MISSING or hidden'}")
    raster_toolbar = iface.rasterToolBar()
    note(f"Raster toolbar visible in this fresh profile: {raster_toolbar.isVisible()}")
    sample = Path(__import__(PLUGIN).__file__).parent / "resources" / "sample" / "NEON_OSBS_029.tif"
    layer = iface.addRasterLayer(str(sample), "NEON_OSBS_029")
    STATE["input"] = layer.id()
    STATE["expected_layer"] = "NEON_OSBS_029 dganet x4"
    iface.mapCanvas().setExtent(layer.extent())
    iface.mapCanvas().refresh()
    manager = QgsApplication.taskManager()
    manager.taskAdded.connect(task_added)
    QgsApplication.messageLog().messageReceived.connect(
        lambda message, tag, level: STATE["log"].append(f"{time.time() - STATE['start']:6.1f} s [{tag}] {message}"))
    note(f"opened {sample.name}: {layer.width()} x {layer.height()} px")
    QTimer.singleShot(1500, open_dialog)


def task_added(task_id):
    """Record the task's name and its progress as it comes."""
    task = QgsApplication.taskManager().task(task_id)
    note(f"task added: '{task.description()}'")
    task.progressChanged.connect(
        lambda p: STATE["progress"].append(f"{time.time() - STATE['start']:6.1f} s {p:5.1f}%"))


@step
def open_dialog():
    """Raster menu > Super-resolve layer…, then Preview."""
    menu = next(a.menu() for a in iface.rasterMenu().actions()
                if a.menu() is not None and a.text().replace("&", "") == "Raster Super-Resolution")
    action = next(a for a in menu.actions() if a.text() == "Super-resolve layer…")
    note("Raster > Raster Super-Resolution > Super-resolve layer… triggered")
    action.trigger()
    dialog = plugins[PLUGIN].dialog
    dialog.move(40, 60)
    note(f"dialog: layer {dialog.layer_combo.currentLayer().name()}, model {dialog.model_combo.currentData()}, "
         f"scale x{dialog.scale_combo.currentData()}, ISE {dialog.ise_spin.value()}, "
         f"output {dialog.output_widget.filePath()}")
    note(f"dialog models: {[dialog.model_combo.itemText(i) for i in range(dialog.model_combo.count())]}")
    dialog.preview_button.click()
    note("Preview clicked")
    wait(lambda: dialog.preview_button.isEnabled() and dialog.timing_key is not None, preview_shown)


@step
def preview_shown():
    """Screenshots of the dialog and preview, then Run."""
    dialog = plugins[PLUGIN].dialog
    note(f"preview: {dialog.preview_status.text()}")
    note(f"estimate: {dialog.estimate_label.text()}")
    note(f"warning shown: {dialog.warning_label.isVisible()}")
    QApplication.processEvents()
    dialog.grab().save(str(OUT / "1_dialog.png"))
    dialog.preview_box.grab().save(str(OUT / "2_preview.png"))
    screen("1_screen_dialog.png")
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    note("Run clicked")
    STATE["run_started"] = time.time()
    manager = QgsApplication.taskManager()
    wait(lambda: manager.countActiveTasks() == 0
         and QgsProject.instance().mapLayersByName(STATE["expected_layer"]), task_done, timeout=900)


@step
def task_done():
    """Record the result's look and message, then show all of it."""
    note(f"task finished after {time.time() - STATE['run_started']:.1f} s")
    layer = QgsProject.instance().mapLayersByName(STATE["expected_layer"])[0]
    source = QgsProject.instance().mapLayer(STATE["input"])
    note(f"result renderer: {layer.renderer().type()} like the input's {source.renderer().type()}")
    bar = iface.messageBar().currentItem()
    note(f"message bar: {bar.text() if bar else None}")
    canvas = iface.mapCanvas()
    canvas.setExtent(layer.extent())
    canvas.refresh()
    QTimer.singleShot(3000, map_shots)


@step
def map_shots():
    """The map with the result; then zoom in on its middle."""
    canvas = iface.mapCanvas()
    iface.mainWindow().grab().save(str(OUT / "3_map.png"))
    layer = QgsProject.instance().mapLayersByName(STATE["expected_layer"])[0]
    centre = layer.extent().center()
    from qgis.core import QgsRectangle
    canvas.setExtent(QgsRectangle(centre.x() - 4, centre.y() - 2.5, centre.x() + 4, centre.y() + 2.5))
    canvas.refresh()
    QTimer.singleShot(3000, zoomed_shot)


@step
def zoomed_shot():
    """The result close up; then hide it to show the input alone."""
    iface.mainWindow().grab().save(str(OUT / "4_map_zoomed.png"))
    layer = QgsProject.instance().mapLayersByName(STATE["expected_layer"])[0]
    # the input alone, same view: what the result sits beside
    root = QgsProject.instance().layerTreeRoot()
    root.findLayer(layer.id()).setItemVisibilityChecked(False)
    iface.mapCanvas().refresh()
    QTimer.singleShot(3000, input_shot)


@step
def input_shot():
    """The input close up; then open Layer Properties on the result."""
    iface.mainWindow().grab().save(str(OUT / "5_input_zoomed.png"))
    layer = QgsProject.instance().mapLayersByName(STATE["expected_layer"])[0]
    QgsProject.instance().layerTreeRoot().findLayer(layer.id()).setItemVisibilityChecked(True)
    STATE["provenance_html"] = "SUPER_RESOLVED" in layer.htmlMetadata()
    note(f"abstract: {layer.metadata().abstract().splitlines()[0] if layer.metadata().abstract() else None}")
    QTimer.singleShot(2500, properties_shot)
    iface.showLayerProperties(layer, "mOptsPage_Information")   # modal: the timer grabs and closes it


@step
def properties_shot():
    """Layer Properties: Information scrolled to the provenance tags, then Metadata's abstract."""
    from qgis.PyQt.QtWidgets import QListWidget, QTextBrowser
    dialog = QApplication.activeModalWidget()
    if dialog is None:
        return fail("Layer Properties did not open")
    dialog.resize(1100, 800)
    found = False   # the tags are near the end ("More information"): scroll there
    for browser in dialog.findChildren(QTextBrowser):   # QGIS built without WebKit
        found = browser.find("SUPER_RESOLVED") or found
    try:
        from qgis.PyQt.QtWebKitWidgets import QWebView
        for view in dialog.findChildren(QWebView):
            found = view.findText("SUPER_RESOLVED") or found
    except ImportError:
        pass
    QApplication.processEvents()
    dialog.grab().save(str(OUT / "6_layer_properties_information.png"))
    pages = dialog.findChild(QListWidget, "mOptionsListWidget")
    row = next((i for i in range(pages.count()) if pages.item(i).text() == "Metadata"), None) if pages else None
    if row is not None:
        pages.setCurrentRow(row)
        QApplication.processEvents()
        dialog.grab().save(str(OUT / "7_layer_properties_metadata.png"))
    note(f"layer properties shown; provenance found on the Information page: {found}; metadata page: {row is not None}")
    dialog.reject()
    QTimer.singleShot(500, cancel_run)


@step
def cancel_run():
    """A second run, cancelled from the task manager as a user would."""
    iface.messageBar().clearWidgets()
    plugin = plugins[PLUGIN]
    plugin.action.trigger()
    dialog = plugin.dialog
    dialog.layer_combo.setLayer(QgsProject.instance().mapLayer(STATE["input"]))
    # gpsr, the slowest network (its margins are wide), so the run is still going when the
    # cancel comes: dganet_large and rcan finish inside the 7 s since the engine got faster
    dialog.model_combo.setCurrentIndex(dialog.model_combo.findData("gpsr"))
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    STATE["cancelled_layer"] = "NEON_OSBS_029 gpsr x4"     # the name it would have, as the user sees it
    note("second run (gpsr) started, to be cancelled")
    STATE["cancel_at"] = time.time() + 7   # past QGIS's 5 s notification threshold
    wait(lambda: time.time() > STATE["cancel_at"], do_cancel)


@step
def do_cancel():
    """Cancel the running task, as the task manager's cancel does."""
    manager = QgsApplication.taskManager()
    for task in manager.activeTasks():
        note(f"cancelling '{task.description()}' at {task.progress():.0f}%")
        task.cancel()
    wait(lambda: manager.countActiveTasks() == 0, cancelled)


@step
def cancelled():
    """Give QGIS a moment to post its messages."""
    QTimer.singleShot(1500, after_cancel)


@step
def after_cancel():
    """Record the message bar after the cancel."""
    items = [(int(item.level()), item.title(), item.text()) for item in iface.messageBar().items()]
    STATE["message_bar_after_cancel"] = items
    note(f"message bar after cancel: {items}")
    iface.mainWindow().grab().save(str(OUT / "8_cancelled.png"))
    QTimer.singleShot(500, finish)


@step
def finish():
    """Save the record and quit QGIS."""
    note("done")
    write()
    QgsProject.instance().setDirty(False)
    QgsApplication.exit(0)


def excepthook(kind, value, tb):
    """An error anywhere (a plugin slot included) ends the session instead of a modal error dialog."""
    fail("".join(traceback.format_exception(kind, value, tb)))


sys.excepthook = excepthook
if Qgis.QGIS_VERSION_INT < 32200:
    fail(f"QGIS {Qgis.QGIS_VERSION} is older than 3.22")
else:
    QTimer.singleShot(3000, open_sample)
