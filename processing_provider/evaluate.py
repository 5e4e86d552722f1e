"""`superres:evaluate`, "Evaluate super-resolution": degrade, super-resolve, compare."""
import os

from qgis.core import (QgsProcessingAlgorithm, QgsProcessingException, QgsProcessingParameterBand,
                       QgsProcessingParameterEnum, QgsProcessingParameterFileDestination,
                       QgsProcessingParameterFolderDestination, QgsProcessingParameterRasterLayer,
                       QgsProcessingParameterString)
from qgis.PyQt.QtGui import QIcon

from ..backend.errors import SuperResError
from ..backend.evaluate import DEFINITIONS, GDALWARP_CUBIC, evaluate_file, format_table, write_csv, write_html
from ..backend.registry import WEIGHT_SETS, model_names
from .provider import ICON
from .superresolve import SCALES, command_line_help


class EvaluateAlgorithm(QgsProcessingAlgorithm):
    """Decide on your own data whether super-resolution is worth it."""

    INPUT = "INPUT"
    SCALE = "SCALE"
    MODELS = "MODELS"
    ISE_ITERATIONS = "ISE_ITERATIONS"
    BANDS = "BANDS"
    WEIGHTS = "WEIGHTS"
    ADAPT_STEPS = "ADAPT_STEPS"
    OUTPUT_HTML = "OUTPUT_HTML"
    OUTPUT_CSV = "OUTPUT_CSV"
    OUTPUT_FOLDER = "OUTPUT_FOLDER"

    def name(self):
        """Algorithm id."""
        return "evaluate"

    def displayName(self):
        """Toolbox name."""
        return "Evaluate super-resolution"

    def shortHelpString(self):
        """Help shown beside the dialog."""
        return ("<p>Degrades a high-resolution raster by SCALE, super-resolves it with each model "
                "and ISE count, and compares the results with the original: PSNR, SSIM, SAM, "
                f"ERGAS, LR consistency and speed.</p><p>{DEFINITIONS}</p>")

    def icon(self):
        """Toolbox icon."""
        return QIcon(ICON)

    def createInstance(self):
        """A fresh instance."""
        return EvaluateAlgorithm()

    def initAlgorithm(self, config=None):
        """Declare the parameters."""
        params = [
            (QgsProcessingParameterRasterLayer(self.INPUT, "High-resolution raster"),
             "The reference: it is degraded, then super-resolved back."),
            (QgsProcessingParameterEnum(self.SCALE, "Scale factor", options=list(SCALES), defaultValue="4"),
             "Degradation and super-resolution factor."),
            (QgsProcessingParameterEnum(self.MODELS, "Models", options=list(model_names()) + [GDALWARP_CUBIC],
                                        allowMultiple=True, defaultValue=["bicubic", "dganet"]),
             f"Models to compare; include bicubic for the baseline. {GDALWARP_CUBIC} is GDAL's "
             "own cubic warp (gdalwarp -r cubic), ISE 0 only."),
            (QgsProcessingParameterString(self.ISE_ITERATIONS, "ISE iterations (comma-separated)",
                                          defaultValue="0,5"),
             "Each model runs once per ISE count, e.g. 0,5,10."),
            (QgsProcessingParameterBand(self.BANDS, "Bands", None, self.INPUT, optional=True,
                                        allowMultiple=True), "Bands to evaluate; default all."),
            (QgsProcessingParameterEnum(self.WEIGHTS, "Weights", options=["auto"] + [w.name for w in WEIGHT_SETS],
                                        defaultValue="auto"),
             "auto: as a run on the degraded raster would choose (pixel size and data type)."),
            (QgsProcessingParameterString(self.ADAPT_STEPS, "Adaptation steps (comma-separated)",
                                          defaultValue="0"),
             "Each network also runs adapted to the degraded raster for each step count "
             "(ADAPT_STEPS of Super-resolve raster), e.g. 0,150; 0 is the network as it is."),
            (QgsProcessingParameterFileDestination(self.OUTPUT_HTML, "Report (HTML)", "HTML files (*.html)"),
             "The table with the metric definitions."),
            (QgsProcessingParameterFileDestination(self.OUTPUT_CSV, "Table (CSV)", "CSV files (*.csv)",
                                                   optional=True), "The same table as CSV."),
            (QgsProcessingParameterFolderDestination(self.OUTPUT_FOLDER, "Super-resolved rasters",
                                                     optional=True), "Where to write each SR result."),
        ]
        for param, help_text in params:
            if isinstance(param, QgsProcessingParameterEnum):
                param.setUsesStaticStrings(True)
            param.setHelp(command_line_help(param, help_text))
            self.addParameter(param)

    def processAlgorithm(self, parameters, context, feedback):
        """Parse parameters, run the backend evaluation, write the tables."""
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        if layer is None or layer.providerType() != "gdal":
            raise QgsProcessingException("INPUT must be a raster layer stored in a file.")
        try:
            ise = [int(v) for v in self.parameterAsString(parameters, self.ISE_ITERATIONS, context).split(",")]
        except ValueError:
            raise QgsProcessingException("ISE_ITERATIONS is a comma-separated list of integers, e.g. 0,5") from None
        try:
            adapt = [int(v) for v in (self.parameterAsString(parameters, self.ADAPT_STEPS, context) or "0").split(",")]
        except ValueError:
            raise QgsProcessingException("ADAPT_STEPS is a comma-separated list of integers, e.g. 0,150") from None
        html = self.parameterAsFileOutput(parameters, self.OUTPUT_HTML, context)
        csv = self.parameterAsFileOutput(parameters, self.OUTPUT_CSV, context)
        folder = self.parameterAsString(parameters, self.OUTPUT_FOLDER, context) or None
        if folder:
            folder = self.parameterAsFileOutput(parameters, self.OUTPUT_FOLDER, context)
            os.makedirs(folder, exist_ok=True)
        scale = int(self.parameterAsEnumString(parameters, self.SCALE, context))
        try:
            rows = evaluate_file(layer.source().split("|")[0], scale,
                                 self.parameterAsEnumStrings(parameters, self.MODELS, context), ise,
                                 self.parameterAsInts(parameters, self.BANDS, context) or None,
                                 sr_folder=folder,
                                 weights=self.parameterAsEnumString(parameters, self.WEIGHTS, context) or "auto",
                                 adapt=adapt)
        except SuperResError as exc:
            raise QgsProcessingException(str(exc)) from None
        feedback.pushInfo(format_table(rows))
        write_html(rows, html, f"Super-resolution x{scale} on {layer.name()}")
        results = {self.OUTPUT_HTML: html}
        if csv:
            write_csv(rows, csv)
            results[self.OUTPUT_CSV] = csv
        if folder:
            results[self.OUTPUT_FOLDER] = folder
        return results
