"""The input's nodata as the analyst decides (like GDAL's ``-srcnodata``).

``SuperResolveJob.src_nodata`` is ``"declared"`` (the layer's own values,
the default), ``"none"`` (every pixel is data) or one value for every band
or one per band of the input. ``parse_src_nodata`` reads the text the CLI
and the algorithm take, ``resolve_src_nodata`` checks it against the input,
and ``nodata_report`` says in the run log what was treated as nodata, with a
warning when a declared value at the data type's limit marks scattered
pixels (saturated highlights) rather than areas.
"""
from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from .encoding import gdal_type_name, type_range
from .errors import SuperResError

DECLARED, NONE = "declared", "none"
#: Where the values of a ``declared`` run come from, in the log.
DECLARED_ORIGIN = "declared by the input"
#: What ``SuperResolveJob.src_nodata`` holds: a keyword, or values (one, or one per input band).
SrcNodata = Union[str, Sequence[float]]
#: A nodata pixel with at most this many nodata pixels among its 8 neighbours is a lone one.
LONE_NEIGHBOURS = 1
#: Nodata is "scattered" when at least this share of its pixels are lone ones.
SCATTERED_SHARE = 0.5

_FORMS = ("'declared' (the layer's own value), 'none', or numbers separated by commas: one for "
          "every band or one per band, e.g. 0 or 0,0,0")


def parse_src_nodata(value: Optional[SrcNodata]) -> SrcNodata:
    """``declared``, ``none`` or a tuple of floats from text (or values); a one-line error otherwise.

    Empty or None means ``declared``. ``nan`` is a value (for float rasters).
    """
    if value is None:
        return DECLARED
    if not isinstance(value, str):
        values = list(value)
        try:
            parsed = tuple(float(v) for v in values)
        except (TypeError, ValueError):
            raise SuperResError(f"NODATA {values!r} is not {_FORMS}.") from None
        if not parsed:
            raise SuperResError(f"NODATA is an empty list: give {_FORMS}.")
        return parsed
    text = value.strip().lower()
    if text in ("", DECLARED):
        return DECLARED
    if text == NONE:
        return NONE
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise SuperResError(f"NODATA '{value.strip()}' is not {_FORMS}.") from None


def _fits(value: float, dtype: np.dtype) -> bool:
    """Whether ``dtype`` holds ``value`` exactly (integers) or within its range (floats)."""
    if dtype.kind not in "iu" and dtype.kind != "f":
        return True   # complex and other types: left to the comparison itself
    if math.isnan(value):
        return dtype.kind == "f"
    if dtype.kind == "f":   # what rounds to a finite value of the type: 3.4028235e38 is Float32's largest
        with np.errstate(over="ignore"):
            return math.isinf(value) or bool(np.isfinite(dtype.type(value)))
    lo, hi = type_range(dtype)
    return math.isfinite(value) and value == int(value) and lo <= value <= hi


def resolve_src_nodata(choice: SrcNodata, declared: Sequence[Optional[float]], bands: Sequence[int],
                       dtype) -> Tuple[List[Optional[float]], str]:
    """The nodata of each selected band, and where it comes from (for the log).

    ``declared`` holds every input band's own value (None where it has
    none); ``bands`` are the selected 1-based bands. Values are one for all
    bands or one per input band (band 1 first, as GDAL's ``-srcnodata``),
    each one the data type can hold. Raises a one-line ``SuperResError``.
    """
    choice = parse_src_nodata(choice)
    if choice == DECLARED:
        return [declared[b - 1] for b in bands], DECLARED_ORIGIN
    if choice == NONE:
        return [None] * len(bands), "NODATA none"
    dtype = np.dtype(dtype)
    count = len(declared)
    if len(choice) not in (1, count):
        raise SuperResError(f"NODATA has {len(choice)} values but the input has {count} bands: give "
                            f"one value for every band, or {count} (band 1 first).")
    bad = [v for v in choice if not _fits(v, dtype)]
    if bad:
        lo, hi = type_range(dtype)
        holds = (f"whole numbers from {lo:g} to {hi:g}" if dtype.kind in "iu"
                 else f"numbers from {lo:g} to {hi:g}, inf or nan")
        raise SuperResError(f"NODATA {', '.join(f'{v:g}' for v in bad)} does not fit the input's data type "
                            f"{gdal_type_name(dtype)}, which holds {holds}.")
    per_band = list(choice) * count if len(choice) == 1 else list(choice)
    # stored as the data type holds it, so pixels compare equal (0.1 in Float32)
    values = [float(dtype.type(per_band[b - 1])) if dtype.kind in "iuf" else per_band[b - 1] for b in bands]
    return values, "NODATA as asked"


def _lone_share(mask: np.ndarray) -> float:
    """Share of the True pixels of a 2-D mask with at most ``LONE_NEIGHBOURS`` True 8-neighbours."""
    m = mask.astype(np.int16)
    p = np.pad(m, 1)
    h, w = m.shape
    neighbours = sum(p[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)) - m
    return float((neighbours[mask] <= LONE_NEIGHBOURS).mean()) if mask.any() else 0.0


def _values_text(nodata: Sequence[Optional[float]]) -> str:
    """``255 in every band``, ``none`` or ``0, none, 5``."""
    shown = ["none" if v is None else f"{v:g}" for v in nodata]
    if len(set(shown)) == 1:
        return shown[0] + (" in every band" if len(shown) > 1 and shown[0] != "none" else "")
    return ", ".join(shown)


def nodata_report(sample: np.ndarray, valid: np.ndarray, nodata: Sequence[Optional[float]], dtype,
                  origin: str, band_numbers: Sequence[int], whole: bool, scale: int) -> List[str]:
    """Log lines: how many pixels are nodata, and a warning about scattered extreme values.

    ``sample`` and ``valid`` are the run's statistics sample (C, h, w) and its
    validity; ``whole`` says the sample is the whole window (counts are then
    exact, else shares of a regular sample). The warning, one line, comes
    when a declared value (``origin`` is ``DECLARED_ORIGIN``) equals the
    data type's minimum or maximum and most of its pixels have at most one
    nodata neighbour: single pixels, not areas (saturated highlights rather
    than a fill).
    """
    dtype = np.dtype(dtype)
    total = int(np.prod(sample.shape[1:]))
    bad = ~valid
    per_band = bad.reshape(bad.shape[0], -1).sum(axis=1)
    union = int(bad.any(axis=0).sum())

    def amount(n: int) -> str:
        share = f"{100.0 * n / max(total, 1):.2f}%"
        return f"{n:,} ({share})" if whole else f"about {share}"

    head = f"Input nodata: {_values_text(nodata)} ({origin})"
    if union == 0:
        lines = [f"{head}: no pixel is nodata"
                 + ("" if whole else f" in a regular sample of {total:,} pixels") + "."]
    else:
        where = f"of {total:,} pixels" if whole else f"of the pixels (a regular sample of {total:,})"
        text = f"{head}: {amount(union)} {where} treated as nodata"
        if len(per_band) > 1:
            text += " in at least one band; per band " + ", ".join(
                f"{b}: {amount(int(n))}" for b, n in zip(band_numbers, per_band))
        lines = [text + "."]
    if origin != DECLARED_ORIGIN or dtype.kind not in "iuf":
        return lines
    lo, hi = type_range(dtype)
    flagged = []
    for c, nd in enumerate(nodata):
        if nd is None or not math.isfinite(nd) or nd not in (lo, hi):
            continue
        at_value = sample[c] == dtype.type(nd)
        if at_value.any() and _lone_share(at_value) >= SCATTERED_SHARE:
            flagged.append(c)
    if flagged:
        nd = nodata[flagged[0]]
        limit = "maximum" if nd == hi else "minimum"
        count = int(np.any([sample[c] == dtype.type(nodata[c]) for c in flagged], axis=0).sum())
        which = ("" if len(flagged) == len(nodata) else
                 f" in band{'s' if len(flagged) > 1 else ''} " + ", ".join(str(band_numbers[c]) for c in flagged))
        what = "saturated highlights" if limit == "maximum" else "the darkest pixels"
        lines.append(f"Warning: the declared nodata {nd:g} is the {gdal_type_name(dtype)} {limit}, and its "
                     f"{f'{count:,} ' if whole else ''}pixels{which} lie scattered one by one, not in areas: "
                     f"likely {what}, each of which becomes a {scale}x{scale} hole in the output. If they "
                     "are data, run with NODATA none (--src-nodata none).")
    return lines


def _same(a: Optional[float], b: Optional[float]) -> bool:
    """Equal nodata values (NaN equals NaN; None only None)."""
    if a is None or b is None:
        return a is b
    return a == b or (math.isnan(a) and math.isnan(b))


def dataset_nodata(nodata: Sequence[Optional[float]]) -> Optional[float]:
    """The one nodata value a GeoTIFF output declares for all its bands, or None.

    GeoTIFF keeps a single nodata value per file (GDAL uses the last band's
    for every band), so bands whose values differ, or bands without one
    beside bands with one, share the first band's value that is declared.
    """
    return next((v for v in nodata if v is not None), None)


def needs_one_nodata(nodata: Sequence[Optional[float]]) -> bool:
    """True when the bands' nodata differ, so the output must rewrite some to one value."""
    first = dataset_nodata(nodata)
    return first is not None and not all(_same(v, first) for v in nodata)


class OneNodataWriter:
    """Passes tiles on to ``writer`` with every band's nodata pixels at one value.

    ``nodata`` is the engine's per band (what its tiles carry); ``value`` the
    output's (``dataset_nodata``). A valid pixel that equals ``value`` in a
    band whose own nodata differs moves one step, as the encoder does for
    its own band, so no valid pixel reads as nodata. Anything else is the
    wrapped writer's.
    """

    def __init__(self, writer, nodata: Sequence[Optional[float]], value: float, dtype):
        self.writer = writer
        self.nodata = list(nodata)
        self.value = value
        dtype = np.dtype(dtype)
        v = dtype.type(value)
        if dtype.kind in "iu":
            self.moved = v + 1 if value < type_range(dtype)[1] else v - 1
        else:   # towards zero, so the type's largest value stays finite
            self.moved = np.nextafter(v, dtype.type(-np.inf if value > 0 else np.inf))

    def write(self, window, values: np.ndarray, valid: Optional[np.ndarray] = None) -> None:
        """Rewrite the bands whose nodata is not ``value``, then write (``GdalWriter.write``)."""
        if not values.flags.writeable:   # e.g. a Dask worker's result
            values = values.copy()
        for c, nd in enumerate(self.nodata):
            if _same(nd, self.value):
                continue
            band = values[c]
            if valid is not None:
                s = band.shape[-1] // valid.shape[-1]
                bad = np.repeat(np.repeat(~valid[c], s, axis=0), s, axis=1)
            else:
                bad = np.isnan(band) if nd is None or math.isnan(nd) else band == nd
            if not math.isnan(self.value):
                band[~bad & (band == self.value)] = self.moved
            band[bad] = self.value
        self.writer.write(window, values, valid)

    def __getattr__(self, name):
        """``flush``, ``commit`` and the rest: the wrapped writer's."""
        return getattr(self.writer, name)
