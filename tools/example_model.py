"""The example graphical model `resources/models/clip_superresolve_warp.model3`.

Clip raster by extent (GDAL) -> Super-resolve raster -> Warp (reproject, GDAL):
an analyst's area, made finer, then put in the CRS they work in. Open it in
Processing > Graphical Modeler (Open Model…) or add it to the Toolbox's
Models. ``build_model`` is what the test runs; ``python tools/example_model.py``
(with QGIS's Python) rewrites the file.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODEL_FILE = ROOT / "resources" / "models" / "clip_superresolve_warp.model3"


def build_model():
    """The three-step model as a QgsProcessingModelAlgorithm.

    QGIS's Processing (GDAL provider) and the plugin's provider must be loaded.
    """
    from qgis.core import (QgsApplication, QgsProcessingModelAlgorithm,
                           QgsProcessingModelChildAlgorithm, QgsProcessingModelChildParameterSource as Source,
                           QgsProcessingModelOutput, QgsProcessingModelParameter,
                           QgsProcessingParameterCrs, QgsProcessingParameterEnum, QgsProcessingParameterExtent,
                           QgsProcessingParameterNumber, QgsProcessingParameterRasterLayer)
    from qgis.PyQt.QtCore import QPointF
    model = QgsProcessingModelAlgorithm("Clip, super-resolve and reproject", "Raster super-resolution")
    model.setHelpContent({"ALG_DESC": "Clips a raster to an area (GDAL), super-resolves it with DGANet "
                                      "and ISE, and warps the result to another CRS (GDAL)."})
    inputs = [
        (QgsProcessingParameterRasterLayer("input", "Raster to super-resolve"), 80),
        (QgsProcessingParameterExtent("area", "Area"), 160),
        (QgsProcessingParameterEnum("scale", "Scale factor", options=["2", "4", "8"], defaultValue="4",
                                    usesStaticStrings=True), 240),
        (QgsProcessingParameterNumber("ise", "ISE iterations", QgsProcessingParameterNumber.Type.Integer, 5,
                                      minValue=0, maxValue=100), 320),
        (QgsProcessingParameterCrs("crs", "Output CRS", "EPSG:4326"), 400),
    ]
    for definition, y in inputs:
        component = QgsProcessingModelParameter(definition.name())
        component.setPosition(QPointF(120, y))
        model.addModelParameter(definition, component)

    def child(alg_id: str, child_id: str, description: str, x: float, sources: dict):
        step = QgsProcessingModelChildAlgorithm(alg_id)
        step.setChildId(child_id)
        step.setDescription(description)
        step.setPosition(QPointF(x, 240))
        # as the modeler's dialog does: every other parameter at its default
        alg = QgsApplication.processingRegistry().algorithmById(alg_id)
        for param in alg.parameterDefinitions():
            if not param.isDestination() and param.name() not in sources:
                sources[param.name()] = Source.fromStaticValue(param.defaultValue())
        for name, source in sources.items():
            step.addParameterSources(name, [source])
        return step

    clip = child("gdal:cliprasterbyextent", "clip", "Clip raster by extent", 360,
                 {"INPUT": Source.fromModelParameter("input"), "PROJWIN": Source.fromModelParameter("area"),
                  "DATA_TYPE": Source.fromStaticValue(0)})
    superres = child("superres:superresolve", "superresolve", "Super-resolve raster", 600,
                     {"INPUT": Source.fromChildOutput("clip", "OUTPUT"),
                      "MODEL": Source.fromStaticValue("dganet"),
                      "SCALE": Source.fromModelParameter("scale"),
                      "ISE_ITERATIONS": Source.fromModelParameter("ise")})
    warp = child("gdal:warpreproject", "warp", "Warp (reproject)", 840,
                 {"INPUT": Source.fromChildOutput("superresolve", "OUTPUT"),
                  "TARGET_CRS": Source.fromModelParameter("crs"),
                  "RESAMPLING": Source.fromStaticValue(0)})
    output = QgsProcessingModelOutput("Super-resolved", "Super-resolved, reprojected")
    output.setChildOutputName("OUTPUT")
    output.setChildId("warp")
    output.setPosition(QPointF(1000, 320))
    warp.setModelOutputs({"Super-resolved": output})
    for step in (clip, superres, warp):
        model.addChildAlgorithm(step)
    model.updateDestinationParameters()   # the output becomes parameter "warp:Super-resolved"
    return model


def main() -> int:
    """Write the model file with QGIS's Python and the plugin loaded."""
    import os
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from qgis.core import QgsApplication
    app = QgsApplication([], False)
    app.initQgis()
    sys.path.append("/usr/share/qgis/python/plugins")
    from processing.core.Processing import Processing
    Processing.initialize()
    import tempfile   # the plugin under its QGIS package name, as tests/qgis/conftest.py does
    links = Path(tempfile.mkdtemp())
    (links / "raster_super_resolution").symlink_to(ROOT, target_is_directory=True)
    sys.path.insert(0, str(links))
    from raster_super_resolution.processing_provider.provider import SuperResProvider
    provider = SuperResProvider()
    QgsApplication.processingRegistry().addProvider(provider)
    model = build_model()
    MODEL_FILE.parent.mkdir(parents=True, exist_ok=True)
    if not model.toFile(str(MODEL_FILE)):
        print(f"Could not write {MODEL_FILE}", file=sys.stderr)
        return 1
    print(f"Wrote {MODEL_FILE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
