"""`superres:superresolve`, "Super-resolve raster": parses parameters, hands off to the backend."""
from pathlib import Path

from qgis.core import (QgsProcessing, QgsProcessingAlgorithm, QgsProcessingException,
                       QgsProcessingParameterBand, QgsProcessingParameterBoolean,
                       QgsProcessingParameterDefinition,
                       QgsProcessingParameterEnum, QgsProcessingParameterExtent,
                       QgsProcessingParameterNumber, QgsProcessingParameterRasterDestination,
                       QgsProcessingParameterRasterLayer, QgsProcessingParameterString)
from qgis.PyQt.QtGui import QIcon

from ..backend.errors import Cancelled, SuperResError
from ..backend.engine import PRECISIONS
from ..backend.job import SuperResolveJob, run_job
from ..backend.registry import WEIGHT_SETS, analyst_models, plain_description
from ..plugin.result_layer import LookLikeInput, capture_look
from .provider import ICON

SCALES = ("2", "4", "8")
DEVICES = ("auto", "cpu", "cuda")
ISE_KERNELS = ("weights", "bicubic", "bilinear")


def command_line_help(param, help_text: str) -> str:
    """``help_text``, plus how to pass a static-string enum to qgis_process.

    qgis_process 3.22 lists such an enum's options by number and says to pass
    "Number of selected option", but only the value itself is accepted.
    """
    if isinstance(param, QgsProcessingParameterEnum) and param.usesStaticStrings():
        options = param.options()
        values = (", ".join(options[:-1]) + " or " + options[-1] + " itself") if len(options) <= 4 \
            else "the value's name"
        default = param.defaultValue()
        example = default[0] if isinstance(default, list) else default
        help_text += (f" With qgis_process pass {values} (e.g. {param.name()}={example}), "
                      "not the option's number.")
    return help_text


class SuperResolveAlgorithm(QgsProcessingAlgorithm):
    """Super-resolve a raster layer x2, x4 or x8 with a model from the registry."""

    INPUT = "INPUT"
    MODEL = "MODEL"
    SCALE = "SCALE"
    ISE_ITERATIONS = "ISE_ITERATIONS"
    EXTENT = "EXTENT"
    BANDS = "BANDS"
    DEVICE = "DEVICE"
    TILE_SIZE = "TILE_SIZE"
    TILE_OVERLAP = "TILE_OVERLAP"
    ISE_KERNEL = "ISE_KERNEL"
    NODATA = "NODATA"
    ZERO_COLLAR = "ZERO_COLLAR"
    WEIGHTS = "WEIGHTS"
    SELF_ENSEMBLE = "SELF_ENSEMBLE"
    OUTPUT_MASK = "OUTPUT_MASK"
    PRECISION = "PRECISION"
    COG = "COG"
    DASK_SCHEDULER = "DASK_SCHEDULER"
    ADAPT_STEPS = "ADAPT_STEPS"
    OUTPUT = "OUTPUT"
    _look = None   # the input's look, captured on the main thread

    def name(self):
        """Algorithm id."""
        return "superresolve"

    def displayName(self):
        """Toolbox name."""
        return "Super-resolve raster"

    def shortHelpString(self):
        """Help shown beside the dialog."""
        models = "".join(f"<li><b>{m.title}</b> (<code>{m.name}</code>): {plain_description(m)}</li>"
                         for m in analyst_models())
        return ("<p>Makes a raster with SCALE times smaller pixels covering exactly the same "
                "ground, in the input's CRS and data type. The finer detail is the model's "
                "estimate, not a measurement; the output's metadata says so.</p>"
                f"<p>Models:</p><ul>{models}</ul>"
                "<p>A model works best on imagery like the imagery it was trained on: similar pixel "
                "size, sensor and data type.</p>"
                "<p>ISE (image-specific enhancement) corrects the result a few times so that, "
                "shrunk back, it matches the input. Nodata stays nodata: the layer's declared value, or "
                "what Input nodata (advanced) says; none makes every pixel data. Runs on a CUDA GPU when "
                "there is one, otherwise the CPU.</p>"
                "<p>Research models (the loss-ablation arms) are compared in Evaluate "
                "super-resolution.</p>")

    def icon(self):
        """Toolbox icon."""
        return QIcon(ICON)

    def createInstance(self):
        """A fresh instance (Processing runs each on its own thread)."""
        return SuperResolveAlgorithm()

    def _add(self, param, help_text, advanced=False):
        param.setHelp(command_line_help(param, help_text))
        if advanced:
            param.setFlags(param.flags() | QgsProcessingParameterDefinition.Flag.FlagAdvanced)
        self.addParameter(param)

    def initAlgorithm(self, config=None):
        """Declare the parameters; their names are a public API."""
        self._add(QgsProcessingParameterRasterLayer(self.INPUT, "Input raster layer"),
                  "A raster layer stored in a file GDAL can read (GeoTIFF, JPEG2000, ...).")
        curated = analyst_models()
        model = QgsProcessingParameterEnum(self.MODEL, "Model", options=[m.name for m in curated],
                                           defaultValue="dganet")
        model.setUsesStaticStrings(True)
        self._add(model, " ".join(f"{m.name}: {m.title}." for m in curated)
                  + " The interpolation baselines need no PyTorch.")
        scale = QgsProcessingParameterEnum(self.SCALE, "Scale factor", options=list(SCALES),
                                           defaultValue="4")
        scale.setUsesStaticStrings(True)
        self._add(scale, "Output pixels are this many times smaller. A model fails at once on a "
                         "scale it has no weights for, naming the scales it has and the models "
                         "that have this one.")
        self._add(QgsProcessingParameterNumber(self.ISE_ITERATIONS, "ISE iterations",
                                               QgsProcessingParameterNumber.Type.Integer, 5, minValue=0,
                                               maxValue=100),
                  "Iterations of image-specific enhancement (back-projection); 0 disables it.")
        self._add(QgsProcessingParameterExtent(self.EXTENT, "Extent", optional=True),
                  "Area to process, in any CRS; default the whole layer. It is clipped to the "
                  "layer and snapped outward to the input pixel grid.")
        self._add(QgsProcessingParameterBand(self.BANDS, "Bands", None, self.INPUT, optional=True,
                                             allowMultiple=True),
                  "Bands to super-resolve, in this order; default all. Three Red/Green/Blue "
                  "bands use the RGB model; anything else runs band by band.")
        device = QgsProcessingParameterEnum(self.DEVICE, "Device", options=list(DEVICES),
                                            defaultValue="auto")
        device.setUsesStaticStrings(True)
        self._add(device, "auto uses a CUDA GPU when PyTorch sees one; cuda fails if there is none.",
                  advanced=True)
        self._add(QgsProcessingParameterNumber(self.TILE_SIZE, "Tile size (input pixels, 0 = automatic)",
                                               QgsProcessingParameterNumber.Type.Integer,
                                               0, minValue=0, maxValue=8192),
                  "Tiles bound the memory used. 0 chooses a size whose margins cost at most 15% "
                  "more computation, within the memory there is (logged).", advanced=True)
        self._add(QgsProcessingParameterNumber(self.TILE_OVERLAP, "Tile margin (input pixels)",
                                               QgsProcessingParameterNumber.Type.Integer, None,
                                               optional=True, minValue=0),
                  "Context read around each tile and cropped away. Empty: the model's receptive "
                  "field plus the growth ISE adds, so tiles match a one-piece run.", advanced=True)
        kernel = QgsProcessingParameterEnum(self.ISE_KERNEL, "ISE resampling kernel",
                                            options=list(ISE_KERNELS), defaultValue="weights")
        kernel.setUsesStaticStrings(True)
        self._add(kernel, "How ISE shrinks and enlarges images. weights: the kernel the model's "
                          "training used to shrink images (bicubic for every shipped model; the "
                          "log says 'from the weights'); bicubic: bicubic whatever the weights "
                          "say; bilinear: the paper's literal choice. Baselines use bicubic.",
                  advanced=True)
        weights = QgsProcessingParameterEnum(self.WEIGHTS, "Weights",
                                             options=["auto"] + [w.name for w in WEIGHT_SETS],
                                             defaultValue="auto")
        weights.setUsesStaticStrings(True)
        self._add(weights, "auto: the set trained on imagery nearest the input's pixel size and data "
                           "type (logged). " + "; ".join(f"{w.name}: {w.title}" for w in WEIGHT_SETS) + ".",
                  advanced=True)
        self._add(QgsProcessingParameterBoolean(self.SELF_ENSEMBLE, "Self-ensemble (8 flips and rotations)",
                                                defaultValue=False),
                  "Average the network over the 8 flips and 90-degree rotations of the input: "
                  "slightly better, 8 times slower. Networks only.", advanced=True)
        self._add(QgsProcessingParameterString(self.NODATA, "Input nodata", defaultValue="declared",
                                               optional=True),
                  "Which input values are nodata, as GDAL's -srcnodata: declared (the layer's own "
                  "values; empty means the same), none (every pixel is data, e.g. saturated highlights "
                  "at 255 that would otherwise become holes; no zero collar either), or numbers "
                  "separated by commas, one for every band or one per band (band 1 first), e.g. 0 or "
                  "0,0,0. The output declares the same values. The log says how many pixels were "
                  "treated as nodata.", advanced=True)
        self._add(QgsProcessingParameterBoolean(self.ZERO_COLLAR, "Treat a zero collar as nodata",
                                                defaultValue=True),
                  "When the input declares no nodata but zeros line its edge (as in Landsat scenes), "
                  "treat 0 as nodata and declare it in the output (only with Input nodata "
                  "'declared').", advanced=True)
        self._add(QgsProcessingParameterBoolean(self.OUTPUT_MASK, "Write a mask band", defaultValue=False),
                  "Add an internal mask band to the output: 255 where valid, 0 where nodata.",
                  advanced=True)
        precision = QgsProcessingParameterEnum(self.PRECISION, "Precision", options=list(PRECISIONS),
                                               defaultValue="auto")
        precision.setUsesStaticStrings(True)
        self._add(precision, "auto: the fastest of float32 and bfloat16 (a few hundredths of a dB at most), "
                             "measured once on this machine; the run log gives the speeds.", advanced=True)
        self._add(QgsProcessingParameterBoolean(self.COG, "Cloud-Optimised GeoTIFF", defaultValue=False),
                  "Write the output as a Cloud-Optimised GeoTIFF with overviews (GDAL's COG driver).",
                  advanced=True)
        self._add(QgsProcessingParameterString(self.DASK_SCHEDULER, "Dask scheduler", optional=True),
                  "Run the tiles on a dask.distributed cluster: the scheduler's address (e.g. "
                  "tcp://10.0.0.5:8786), whose workers see the input and the plugin's folder at the "
                  "same paths. Empty: run here.", advanced=True)
        self._add(QgsProcessingParameterNumber(self.ADAPT_STEPS, "Image-specific adaptation steps",
                                               QgsProcessingParameterNumber.Type.Integer, 0, minValue=0,
                                               maxValue=10000),
                  "Before the tiles, fine-tune a copy of the network on this image: its own pixels, "
                  "degraded by the scale, as input and the pixels as target (small rate, fixed seed). "
                  "Part of the pairs is held back, and the network kept is the one whose held-out "
                  "loss is lowest, the original if it never falls (logged). 0 disables it; networks "
                  "only, not with a Dask scheduler. Costs about half a CPU-second per step.",
                  advanced=True)
        self._add(QgsProcessingParameterRasterDestination(self.OUTPUT, "Super-resolved"),
                  "GeoTIFF to write. It appears only when the run succeeds.")

    def prepareAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API name)
        """On the main thread: remember how the input is drawn, for the loaded result."""
        self._look = capture_look(self.parameterAsRasterLayer(parameters, self.INPUT, context))
        return True

    def processAlgorithm(self, parameters, context, feedback):
        """Parse parameters into a SuperResolveJob and run it in the backend."""
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        if layer is None:
            raise QgsProcessingException("INPUT is not a raster layer.")
        if layer.providerType() != "gdal":
            raise QgsProcessingException(
                f"INPUT '{layer.name()}' is a {layer.providerType()} layer, not a file. Save it "
                "first (right-click > Export > Save As... GeoTIFF) and super-resolve the file.")
        extent = None
        if parameters.get(self.EXTENT):
            rect = self.parameterAsExtent(parameters, self.EXTENT, context, layer.crs())
            extent = (rect.xMinimum(), rect.yMinimum(), rect.xMaximum(), rect.yMaximum())
        overlap = parameters.get(self.TILE_OVERLAP)
        kernel = self.parameterAsEnumString(parameters, self.ISE_KERNEL, context)
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        job = SuperResolveJob(
            input_path=layer.source().split("|")[0],
            output_path=output,
            model=self.parameterAsEnumString(parameters, self.MODEL, context),
            scale=int(self.parameterAsEnumString(parameters, self.SCALE, context)),
            ise_iterations=self.parameterAsInt(parameters, self.ISE_ITERATIONS, context),
            extent=extent,
            bands=self.parameterAsInts(parameters, self.BANDS, context) or None,
            device=self.parameterAsEnumString(parameters, self.DEVICE, context),
            tile_size=self.parameterAsInt(parameters, self.TILE_SIZE, context) or None,
            tile_overlap=None if overlap in (None, "") else self.parameterAsInt(parameters, self.TILE_OVERLAP, context),
            ise_kernel=None if kernel == "weights" else kernel,
            overwrite=True,  # Processing asked the user before choosing an existing file
            write_mask=self.parameterAsBool(parameters, self.OUTPUT_MASK, context),
            zero_collar="auto" if self.parameterAsBool(parameters, self.ZERO_COLLAR, context) else "off",
            weights=self.parameterAsEnumString(parameters, self.WEIGHTS, context) or "auto",
            self_ensemble=self.parameterAsBool(parameters, self.SELF_ENSEMBLE, context),
            precision=self.parameterAsEnumString(parameters, self.PRECISION, context) or "auto",
            cog=self.parameterAsBool(parameters, self.COG, context),
            dask=self.parameterAsString(parameters, self.DASK_SCHEDULER, context).strip() or None,
            adapt_steps=self.parameterAsInt(parameters, self.ADAPT_STEPS, context),
            src_nodata=self.parameterAsString(parameters, self.NODATA, context),   # checked by run_job
        )
        try:
            run_job(job, progress=lambda f: feedback.setProgress(100.0 * f),
                    is_cancelled=feedback.isCanceled, log=feedback.pushInfo)
        except Cancelled as exc:
            # the user's own cancel is not an error: one info line, no output
            said = str(exc) if str(exc).startswith("Cancelled") else f"Cancelled: {exc}"
            feedback.pushInfo(f"{said} No output was written.")
            return {}
        except SuperResError as exc:
            raise QgsProcessingException(str(exc)) from None
        if context.willLoadLayerOnCompletion(output):
            details = context.layerToLoadOnCompletionDetails(output)
            details.name = f"{layer.name()} {job.model} x{job.scale}"
            details.setPostProcessor(LookLikeInput.create(self._look, job.bands))
        return {self.OUTPUT: output}

    def flags(self):
        """Cancellable; runs on a background thread."""
        return super().flags() | QgsProcessingAlgorithm.Flag.FlagCanCancel

    def tags(self):
        """Search words."""
        return ["super-resolution", "upscale", "sharpen", "resample", "dganet", "ise", "deep learning"]

    def helpUrl(self):
        """README section on the algorithm."""
        return (Path(__file__).resolve().parent.parent / "README.md").as_uri()
