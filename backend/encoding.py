"""Turning SR floats into the output data type, with nodata kept sacred."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np


_GDAL_NAMES = {"uint8": "Byte", "int8": "Int8", "uint16": "UInt16", "int16": "Int16",
               "uint32": "UInt32", "int32": "Int32", "float32": "Float32", "float64": "Float64"}


def gdal_type_name(dtype) -> str:
    """GDAL's name for a numpy data type (without importing GDAL)."""
    return _GDAL_NAMES.get(np.dtype(dtype).name, np.dtype(dtype).name)


def type_range(dtype: np.dtype):
    """The (min, max) a numpy dtype can hold."""
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
    else:
        info = np.finfo(dtype)
    return float(info.min), float(info.max)


def encode(values: np.ndarray, valid: np.ndarray, dtype, nodata: Sequence[Optional[float]]) -> np.ndarray:
    """Round and clip (C, H, W) floats to ``dtype``; invalid pixels become nodata.

    A valid value that would equal its band's nodata is moved to the nearest
    other value, towards the unrounded SR value, so it never reads as nodata.
    Invalid pixels of a band without nodata become NaN (float types) or 0.
    """
    dtype = np.dtype(dtype)
    lo, hi = type_range(dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        clipped = np.clip(np.nan_to_num(values, nan=0.0), lo, hi)
        out = (np.rint(clipped) if dtype.kind in "iu" else clipped).astype(dtype)
    for c, nd in enumerate(nodata):
        band, ok = out[c], valid[c]
        if nd is None or (isinstance(nd, float) and np.isnan(nd)):
            band[~ok] = np.nan if dtype.kind == "f" else 0
            continue
        nd_t = dtype.type(nd)
        clash = ok & (band == nd_t)
        if clash.any():
            up = values[c][clash] >= float(nd)
            if dtype.kind in "iu":
                step_up = nd_t + 1 if float(nd) < hi else nd_t - 1
                step_dn = nd_t - 1 if float(nd) > lo else nd_t + 1
                band[clash] = np.where(up, step_up, step_dn).astype(dtype)
            else:
                band[clash] = np.where(up, np.nextafter(nd_t, dtype.type(np.inf)),
                                       np.nextafter(nd_t, dtype.type(-np.inf))).astype(dtype)
        band[~ok] = nd_t
    return out
