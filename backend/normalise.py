"""Per-run band statistics, normalisation and nodata filling.

Statistics are computed once per run over the valid pixels of the whole
processed extent (a deterministic regular sample for large rasters) and the
same numbers serve every tile and the inverse, so tiles agree at seams.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Tuple

import numpy as np

#: Name recorded in weights metadata: training normalises exactly this way.
NORMALISATION = "per-band percentiles 0.5-99.5 of valid pixels -> [0, 1]"
LOW_PERCENTILE, HIGH_PERCENTILE = 0.5, 99.5
#: Most pixels a statistics sample holds (per band).
SAMPLE_PIXELS = 1_000_000


@dataclass(frozen=True)
class BandStats:
    """Per-band offset and span: ``normalised = (value - low) / span``."""

    low: Tuple[float, ...]
    span: Tuple[float, ...]

    def to_metadata(self) -> str:
        """A compact text form for logs."""
        return ", ".join(f"[{lo:g}, {lo + sp:g}]" for lo, sp in zip(self.low, self.span))


def valid_mask(values: np.ndarray, nodata: Sequence) -> np.ndarray:
    """Boolean (C, H, W): finite and not equal to that band's nodata value."""
    mask = np.isfinite(values) if values.dtype.kind == "f" else np.ones(values.shape, bool)
    for c, nd in enumerate(nodata):
        if nd is not None and not (isinstance(nd, float) and np.isnan(nd)):
            mask[c] &= values[c] != nd
    return mask


def compute_stats(sample: np.ndarray, valid: np.ndarray, integer: bool) -> BandStats:
    """Robust per-band range of the valid pixels of a (C, H, W) sample.

    A band with no valid pixels, or a constant one, gets a span of one unit
    (integers) or a tiny relative span (floats) so nothing divides by zero.
    """
    lows, spans = [], []
    for c in range(sample.shape[0]):
        vals = sample[c][valid[c]].astype(np.float64)
        if vals.size == 0:
            lo, hi = 0.0, 1.0
        else:
            lo, hi = np.percentile(vals, [LOW_PERCENTILE, HIGH_PERCENTILE])
        floor = 1.0 if integer else max(1e-6 * max(abs(lo), abs(hi)), 1e-12)
        lows.append(float(lo))
        spans.append(float(max(hi - lo, floor)))
    return BandStats(tuple(lows), tuple(spans))


def normalise(values: np.ndarray, stats: BandStats) -> np.ndarray:
    """(C, H, W) values to float32 normalised units; invalid pixels are left as they are."""
    low = np.asarray(stats.low, np.float64)[:, None, None]
    span = np.asarray(stats.span, np.float64)[:, None, None]
    with np.errstate(invalid="ignore", over="ignore"):
        return ((values.astype(np.float64) - low) / span).astype(np.float32)


def denormalise(values: np.ndarray, stats: BandStats) -> np.ndarray:
    """Inverse of ``normalise``, in float64."""
    low = np.asarray(stats.low, np.float64)[:, None, None]
    span = np.asarray(stats.span, np.float64)[:, None, None]
    return values.astype(np.float64) * span + low


def fill_invalid(norm: np.ndarray, valid: np.ndarray, iterations: int) -> np.ndarray:
    """Fill invalid pixels from valid neighbours only, so no dark halo forms.

    Each iteration gives every still-invalid pixel the mean of its valid
    3x3 neighbours; after ``iterations`` the rest get 0.5 (mid-range). The
    result depends only on pixels within ``iterations`` of each other, so it
    is the same whether computed per tile or in one piece.
    """
    out = np.where(valid, norm, 0.0).astype(np.float32)
    known = valid.copy()
    for _ in range(iterations):
        if known.all():
            break
        total = _box3(np.where(known, out, 0.0))
        count = _box3(known.astype(np.float32))
        grow = ~known & (count > 0)
        if not grow.any():
            break
        out[grow] = total[grow] / count[grow]
        known |= grow
    out[~known] = 0.5
    return out


def _box3(a: np.ndarray) -> np.ndarray:
    """Sum over each pixel's 3x3 neighbourhood (zero outside), per band."""
    p = np.pad(a, ((0, 0), (1, 1), (1, 1)))
    h, w = a.shape[-2:]
    return sum(p[:, dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3))
