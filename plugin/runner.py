"""Runs `superres:superresolve` as a QgsTask and adds the result as a layer."""
from typing import Callable, Dict, Optional

from qgis.core import (Qgis, QgsApplication, QgsProcessingAlgRunnerTask, QgsProcessingContext,
                       QgsProcessingFeedback, QgsProject, QgsRasterLayer)

ALGORITHM_ID = "superres:superresolve"
# Tasks, contexts and feedbacks must outlive this call; keep them until each task ends.
_RUNNING: Dict[int, tuple] = {}


def layer_name(parameters: dict, project: QgsProject) -> str:
    """"<input> <model> x<scale>", the name of the result layer."""
    source = parameters["INPUT"]
    layer = project.mapLayer(source) if isinstance(source, str) else source
    base = layer.name() if layer is not None else str(source)
    return f"{base} {parameters.get('MODEL', 'dganet')} x{parameters.get('SCALE', '4')}"


def run_in_background(parameters: dict, project: Optional[QgsProject] = None,
                      on_finished: Optional[Callable[[bool, Optional[QgsRasterLayer]], None]] = None,
                      message_bar=None) -> QgsProcessingAlgRunnerTask:
    """Queue the algorithm in QGIS's task manager; QGIS stays responsive.

    On success the output is added to ``project`` (the current one by
    default), named after the input, model and scale. Cancel or failure adds
    nothing; the backend has already removed any partial file.
    """
    project = project or QgsProject.instance()
    alg = QgsApplication.processingRegistry().createAlgorithmById(ALGORITHM_ID)
    context = QgsProcessingContext()
    context.setProject(project)
    feedback = QgsProcessingFeedback()
    params = dict(parameters)
    params.setdefault("OUTPUT", "TEMPORARY_OUTPUT")
    name = layer_name(params, project)
    task = QgsProcessingAlgRunnerTask(alg, params, context, feedback)

    def executed(successful: bool, results: dict) -> None:
        """Add the layer on success; report either way."""
        _RUNNING.pop(id(task), None)
        layer = None
        if successful and results.get("OUTPUT"):
            layer = QgsRasterLayer(results["OUTPUT"], name)
            project.addMapLayer(layer)
            if message_bar is not None:
                message_bar.pushMessage("Super-resolution", f"Added {name}", Qgis.Success, 5)
        elif message_bar is not None:
            message_bar.pushMessage("Super-resolution", "Cancelled or failed: see the log "
                                    "messages (Processing tab).", Qgis.Warning, 10)
        if on_finished is not None:
            on_finished(successful, layer)

    task.executed.connect(executed)
    _RUNNING[id(task)] = (task, context, feedback, alg)
    QgsApplication.taskManager().addTask(task)
    return task
