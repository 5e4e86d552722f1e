"""The result layer looks like its input and says where it came from.

The input's renderer (band mapping, min/max or stretch, colour ramp, opacity)
and its brightness, contrast and saturation are captured when a run starts
and given to the result, with band numbers mapped to the output's bands
(``BANDS`` may pick and reorder them). The output's provenance tags go into
the layer's metadata abstract, shown in Layer Properties > Metadata.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Sequence

from qgis.core import (QgsPalettedRasterRenderer, QgsProcessingLayerPostProcessorInterface,
                       QgsRasterLayer, QgsRasterRenderer)


@dataclass
class LayerLook:
    """What makes a raster layer look the way it does, detached from the layer."""

    renderer: QgsRasterRenderer
    band_count: int
    brightness: int = 0
    contrast: int = 0
    gamma: float = 1.0
    saturation: int = 0
    grayscale: int = 0


def capture_look(layer: Optional[QgsRasterLayer]) -> Optional[LayerLook]:
    """The input's look (call on the main thread), or None without a renderer."""
    if layer is None or not layer.isValid() or layer.renderer() is None:
        return None
    look = LayerLook(layer.renderer().clone(), layer.bandCount())
    bc, hs = layer.brightnessFilter(), layer.hueSaturationFilter()
    if bc is not None:
        look.brightness, look.contrast, look.gamma = bc.brightness(), bc.contrast(), bc.gamma()
    if hs is not None:
        look.saturation, look.grayscale = hs.saturation(), int(hs.grayscaleMode())
    return look


_BAND_ACCESSORS = {   # renderer type: (getter, setter) pairs of the bands it draws
    "multibandcolor": (("redBand", "setRedBand"), ("greenBand", "setGreenBand"), ("blueBand", "setBlueBand")),
    "singlebandgray": (("grayBand", "setGrayBand"),),
    "singlebandpseudocolor": (("band", "setBand"),),
    "hillshade": (("band", "setBand"),),
    "contour": (("inputBand", "setInputBand"),),
}


def mapped_renderer(look: LayerLook, bands: Optional[Sequence[int]]) -> Optional[QgsRasterRenderer]:
    """A copy of the input's renderer drawing the output's bands, or None if it cannot.

    Output band i holds input band ``bands[i - 1]`` (all bands in order when
    ``bands`` is empty). A renderer drawing a band the output lacks is not
    copied: QGIS's default is better than a wrong band.
    """
    mapping: Dict[int, int] = {b: i for i, b in enumerate(bands or range(1, look.band_count + 1), start=1)}
    renderer = look.renderer.clone()
    kind = renderer.type()
    alpha = renderer.alphaBand()
    if alpha > 0:
        if alpha not in mapping:
            return None
        renderer.setAlphaBand(mapping[alpha])
    if kind == "paletted":   # no setBand in QGIS 3.22: rebuild it on the mapped band
        if renderer.band() not in mapping:
            return None
        copy = QgsPalettedRasterRenderer(None, mapping[renderer.band()], renderer.classes())
        copy.setOpacity(renderer.opacity())
        return copy
    accessors = _BAND_ACCESSORS.get(kind)
    if accessors is None:   # a renderer that draws no bands of its own (e.g. single colour)
        return renderer
    for getter, setter in accessors:
        band = getattr(renderer, getter)()
        if band <= 0:        # -1: an unused channel (a two-band RGB)
            continue
        if band not in mapping:
            return None
        getattr(renderer, setter)(mapping[band])
    return renderer


def apply_look(look: Optional[LayerLook], target: QgsRasterLayer, bands: Optional[Sequence[int]]) -> bool:
    """Give ``target`` the input's look; returns whether the renderer was copied."""
    if look is None or not target.isValid():
        return False
    renderer = mapped_renderer(look, bands)
    if renderer is None:
        return False
    target.setRenderer(renderer)
    bc, hs = target.brightnessFilter(), target.hueSaturationFilter()
    if bc is not None:
        bc.setBrightness(look.brightness)
        bc.setContrast(look.contrast)
        bc.setGamma(look.gamma)
    if hs is not None:
        hs.setSaturation(look.saturation)
        hs.setGrayscaleMode(look.grayscale)
    target.triggerRepaint()
    return True


def provenance_of(target: QgsRasterLayer) -> Dict[str, str]:
    """The output file's provenance tags (GDAL dataset metadata), empty if none or unreadable."""
    from ..backend.raster_io import gdal_exceptions
    with gdal_exceptions() as gdal:   # this call's own mode: QGIS and other plugins keep theirs
        try:
            ds = gdal.OpenEx(target.source().split("|")[0], gdal.OF_RASTER | gdal.OF_READONLY)
            meta = ds.GetMetadata() or {}
        except RuntimeError:   # not a file GDAL can open (moved, deleted, a web layer)
            meta = {}
        ds = None
    return {k: v for k, v in meta.items() if k.startswith("SR_") or k == "SUPER_RESOLVED"}


def describe_provenance(target: QgsRasterLayer) -> None:
    """Write the provenance into the layer's metadata abstract (Layer Properties > Metadata)."""
    tags = provenance_of(target)
    if not tags:
        return
    metadata = target.metadata()
    lines = [tags.get("SR_NOTE", ""), ""] + [f"{k}: {v}" for k, v in sorted(tags.items()) if k != "SR_NOTE"]
    metadata.setAbstract("\n".join(lines).strip())
    if not metadata.title():
        metadata.setTitle(target.name())
    target.setMetadata(metadata)


def finish_result_layer(target: QgsRasterLayer, look: Optional[LayerLook],
                        bands: Optional[Sequence[int]]) -> None:
    """Look like the input and carry the provenance (the menu action and Processing both call it)."""
    apply_look(look, target, bands)
    describe_provenance(target)


class LookLikeInput(QgsProcessingLayerPostProcessorInterface):
    """Processing's post-processor for a loaded result: ``finish_result_layer``.

    Processing keeps only a C++ pointer to it, so ``create`` keeps the Python
    object alive until it has run.
    """

    _alive = []

    def __init__(self, look: Optional[LayerLook], bands: Optional[Sequence[int]]):
        super().__init__()
        self.look, self.bands = look, list(bands or [])

    @classmethod
    def create(cls, look: Optional[LayerLook], bands: Optional[Sequence[int]]) -> "LookLikeInput":
        """A post-processor that outlives the algorithm's call."""
        instance = cls(look, bands)
        cls._alive.append(instance)
        return instance

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 (QGIS API name)
        """Style the loaded result on the main thread."""
        if isinstance(layer, QgsRasterLayer):
            finish_result_layer(layer, self.look, self.bands)
        if self in self._alive:
            self._alive.remove(self)
