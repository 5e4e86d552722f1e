"""Runs `superres:superresolve` as a QgsTask and adds the result as a layer."""
from pathlib import Path
from typing import Callable, Dict, List, Optional

from qgis.core import (Qgis, QgsApplication, QgsProcessingAlgRunnerTask, QgsProcessingContext,
                       QgsProcessingFeedback, QgsProject, QgsRasterLayer, QgsTask)
from qgis.PyQt.QtCore import QTimer
from qgis.PyQt.QtWidgets import QPushButton

from .result_layer import capture_look, finish_result_layer

ALGORITHM_ID = "superres:superresolve"
TITLE = "Super-resolution"
# Tasks, contexts and feedbacks must outlive this call; keep them until each task ends.
_RUNNING: Dict[int, tuple] = {}


class RunFeedback(QgsProcessingFeedback):
    """Processing feedback that logs each line as it comes (Log Messages > Processing)
    and keeps the errors, so the message bar can say what went wrong."""

    def __init__(self):
        super().__init__(True)
        self.errors: List[str] = []

    def reportError(self, error, fatalError=False):  # noqa: N802,N803 (QGIS API names)
        """Remember the error, then log it as Processing does."""
        self.errors.append(error)
        super().reportError(error, fatalError)


def input_layer(parameters: dict, project: QgsProject) -> Optional[QgsRasterLayer]:
    """The project's layer INPUT names (an id or the layer itself), if it is one."""
    source = parameters["INPUT"]
    layer = project.mapLayer(source) if isinstance(source, str) else source
    return layer if isinstance(layer, QgsRasterLayer) else None


def layer_name(parameters: dict, project: QgsProject) -> str:
    """"<input> <model> x<scale>", the name of the result layer (<input>: the layer's name,
    or the file's name without its extension)."""
    layer = input_layer(parameters, project)
    base = layer.name() if layer is not None else Path(str(parameters["INPUT"]).split("|")[0]).stem
    return f"{base} {parameters.get('MODEL', 'dganet')} x{parameters.get('SCALE', '4')}"


def zoom_to(canvas, layer: QgsRasterLayer) -> None:
    """Show all of ``layer`` on ``canvas``."""
    canvas.setExtent(canvas.mapSettings().layerExtentToOutputExtent(layer, layer.extent()))
    canvas.refresh()


def drop_generic_notices(message_bar, description: str, seconds: float = 5.0) -> None:
    """Keep QGIS's own "Task complete/failed: <description>" item for our task off the bar.

    QGIS 3.22 announces every task of 5 s or more that way (in the message
    bar where the desktop has no notifications), which would say "failed"
    beside our "Cancelled"; ours says more. Only items whose text is this
    task's own description go (titles are translated, the text is ours),
    those there now and those added in the next ``seconds``.
    """
    def sweep() -> None:
        for item in list(message_bar.items()):
            try:
                if item.text() == description:
                    message_bar.popWidget(item)
            except RuntimeError:   # already closed
                pass

    def added(_item) -> None:   # the signal's item arrives as a bare QWidget: sweep instead
        QTimer.singleShot(0, sweep)   # not while the bar is adding it

    sweep()
    message_bar.widgetAdded.connect(added)
    QTimer.singleShot(int(seconds * 1000), lambda: message_bar.widgetAdded.disconnect(added))


def run_in_background(parameters: dict, project: Optional[QgsProject] = None,
                      on_finished: Optional[Callable[[bool, Optional[QgsRasterLayer]], None]] = None,
                      message_bar=None, canvas=None) -> QgsProcessingAlgRunnerTask:
    """Queue the algorithm in QGIS's task manager; QGIS stays responsive.

    The task is named after the input layer; its progress follows the tiles
    and its log lines reach Log Messages (Processing) as they come. On
    success the output is added to ``project`` (the current one by
    default), named after the input, model and scale, drawn like the input,
    and a message offers to zoom to it on ``canvas``. A cancel is reported
    once, as information; a failure shows its error. Cancel or failure adds
    nothing; the backend has already removed any partial file.
    """
    project = project or QgsProject.instance()
    alg = QgsApplication.processingRegistry().createAlgorithmById(ALGORITHM_ID)
    context = QgsProcessingContext()
    context.setProject(project)
    feedback = RunFeedback()
    params = dict(parameters)
    params.setdefault("OUTPUT", "TEMPORARY_OUTPUT")
    name = layer_name(params, project)
    look = capture_look(input_layer(params, project))
    bands = list(params.get("BANDS") or [])
    if hasattr(QgsTask.Flag, "Silent"):
        # QGIS 3.26+: we report the end ourselves, so QGIS skips its generic "Task complete/failed"
        task = QgsProcessingAlgRunnerTask(alg, params, context, feedback, QgsTask.Flag.CanCancel | QgsTask.Flag.Silent)
    else:
        task = QgsProcessingAlgRunnerTask(alg, params, context, feedback)
    description = f"Super-resolving {name}"
    task.setDescription(description)

    def push(text: str, level, seconds: int, layer: Optional[QgsRasterLayer] = None) -> None:
        if message_bar is None:
            return
        item = message_bar.createMessage(TITLE, text)
        if layer is not None and canvas is not None:
            button = QPushButton("Zoom to layer")
            button.clicked.connect(lambda: zoom_to(canvas, layer))
            item.layout().addWidget(button)
        message_bar.pushWidget(item, level, seconds)

    def executed(successful: bool, results: dict) -> None:
        """Add the layer on success; report either way."""
        _RUNNING.pop(id(task), None)
        layer = None
        if successful and results.get("OUTPUT"):
            layer = QgsRasterLayer(results["OUTPUT"], name)
            finish_result_layer(layer, look, bands)
            project.addMapLayer(layer)
            push(f"Added {name}.", Qgis.MessageLevel.Success, 10, layer)
        elif feedback.isCanceled():
            push(f"Cancelled: {name} was not made.", Qgis.MessageLevel.Info, 5)
        else:
            why = feedback.errors[-1] if feedback.errors else "see Log Messages (Processing)."
            push(f"{name} failed: {why}", Qgis.MessageLevel.Warning, 0)
        if message_bar is not None:
            drop_generic_notices(message_bar, description)
        if on_finished is not None:
            on_finished(successful, layer)

    task.executed.connect(executed)
    _RUNNING[id(task)] = (task, context, feedback, alg)
    QgsApplication.taskManager().addTask(task)
    return task
