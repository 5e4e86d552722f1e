"""How far an input is from the imagery a model's weights were trained on.

The dialog shows ``training_domain`` beside the model and
``domain_warnings`` before a run: a network asked to sharpen pixels, a data
type or bands unlike its training data invents detail of the wrong kind.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

from .errors import SuperResError
from .registry import ModelSpec, get_model, get_weight_set, resolve_weight_set

#: Pixel sizes more than this many times apart count as far (half a decade).
PIXEL_RATIO_FAR = 3.0


def _size(metres: float) -> str:
    return f"{metres * 100:g} cm" if metres < 1 else f"{metres:g} m"


def training_domain(spec: ModelSpec, scale: int, weight_set: str) -> str:
    """One line: what the weights for ``scale`` and ``weight_set`` were trained on.

    The weight set comes from the file's own metadata (``weights_set``),
    its pixel size and sensor from the registry's ``WEIGHT_SETS``.
    """
    from .weights import read_metadata
    meta = read_metadata(spec.weights_path(scale, weight_set))
    ws = get_weight_set(meta.get("weights_set", weight_set))
    steps = f", {meta['steps']} training steps" if meta.get("steps") else ""
    return f"Trained on {ws.title}{steps}."


def domain_warnings(spec: ModelSpec, scale: int, weights: Optional[str], pixel_size_m: Optional[float],
                    dtype: str, band_count: int, rgb: bool) -> List[str]:
    """Plain sentences saying how the input differs from the chosen weights' training data.

    Empty for the interpolation baselines, for inputs like the training
    data, and when the model has no weights at ``scale`` (the run itself
    says so). ``rgb`` is whether the bands are natural-colour R, G, B.
    """
    if spec.kind != "network":
        return []
    try:
        chosen, _why = resolve_weight_set(spec, scale, weights, pixel_size_m, dtype)
    except SuperResError:
        return []
    ws = get_weight_set(chosen)
    said = f"The '{ws.name}' weights were trained on {ws.title}"
    warnings = []
    if pixel_size_m:
        ratio = pixel_size_m / ws.pixel_size_m
        if max(ratio, 1 / ratio) > PIXEL_RATIO_FAR:
            times = f"{max(ratio, 1 / ratio):.0f} times {'larger' if ratio > 1 else 'smaller'}"
            warnings.append(f"{said}; this layer's pixels are {_size(pixel_size_m)}, {times}. "
                            "The model may add detail of the wrong size: compare with bicubic in "
                            "the preview.")
    else:
        warnings.append("The layer's pixel size in metres is unknown (no CRS), so it cannot be "
                        f"compared with the training data ({_size(ws.pixel_size_m)} pixels).")
    if dtype != ws.dtype:
        warnings.append(f"This layer is {dtype}; the '{ws.name}' weights were trained on {ws.dtype} "
                        "imagery. Values are rescaled per band, but the imagery may differ in kind.")
    if ws.bands == 3 and not (rgb and band_count == 3):
        which = ("3 bands are not marked red, green, blue" if band_count == 3
                 else f"{band_count} band{'s' if band_count != 1 else ''} {'are' if band_count != 1 else 'is'} not RGB")
        warnings.append(f"{said}: red, green and blue together. This layer's {which}, so each band "
                        "runs alone as a grey image, which the model was not trained on.")
    return warnings



def check_input(path: str, bands: Optional[List[int]], model: str, scale: int,
                weights: Optional[str] = "auto") -> Tuple[str, List[str]]:
    """For a raster file: what the weights a run would use were trained on, and the warnings.

    The first item is "" for baselines and models without weights at ``scale``.
    """
    from .encoding import gdal_type_name
    from .job import RGB_INTERP
    from .raster_io import read_info
    spec = get_model(model)
    info = read_info(path)
    chosen = [info.bands[b - 1] for b in (bands or range(1, info.band_count + 1))]
    rgb = tuple(b.color_interp for b in chosen) == RGB_INTERP
    dtype = gdal_type_name(info.dtype)
    warnings = domain_warnings(spec, scale, weights, info.pixel_size_m, dtype, len(chosen), rgb)
    domain = ""
    if spec.kind == "network" and spec.available_sets(scale):
        try:
            name, _why = resolve_weight_set(spec, scale, weights, info.pixel_size_m, dtype)
        except SuperResError:
            return domain, warnings
        others = [get_weight_set(w).title for w in spec.available_sets(scale) if w != name]
        domain = (f"Weights '{name}' for this layer. {training_domain(spec, scale, name)}"
                  + (f" Also installed: {'; '.join(others)}." if others else ""))
    return domain, warnings
