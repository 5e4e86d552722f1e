"""The tile's pre- and post-processing in torch, on the run's device.

The same steps as ``normalise.py`` and ``encoding.py`` (which stay as the
numpy reference and the path without torch), done where the network runs so
that only raw input values go to the device and encoded output values come
back: validity, normalisation, nodata filling, mirror padding, then
de-normalisation, clipping, rounding and nodata after the network.

Arithmetic is float32, except for data types that float32 cannot hold
exactly (Int32, UInt32, Float64), which use float64.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

from .encoding import type_range
from .torch_support import torch

#: numpy types whose values float32 cannot all hold: their arithmetic is float64.
WIDE_KINDS = {np.dtype(t) for t in (np.int32, np.uint32, np.int64, np.uint64, np.float64)}


def compute_dtype(dtype):
    """The torch float type for pre- and post-processing values of numpy ``dtype``."""
    return torch.float64 if np.dtype(dtype) in WIDE_KINDS else torch.float32


def torch_dtype(dtype):
    """The torch type that carries numpy ``dtype`` to and from the device unchanged."""
    dtype = np.dtype(dtype)
    if dtype == np.uint16:
        return torch.int32     # torch has no arithmetic on uint16: widen after the copy
    if dtype == np.uint32:
        return torch.int64
    return torch.from_numpy(np.zeros(0, dtype)).dtype


def to_device(values, device: str):
    """Copy raw (C, h, w) values to ``device`` in their own width (Byte stays Byte).

    ``values`` is a numpy array or a tensor from ``pin``. UInt16 and UInt32,
    which torch cannot compute on, travel as their signed twins and are
    widened on the device, after the copy. Pinned memory makes the copy
    asynchronous on CUDA.
    """
    if not torch.is_tensor(values):
        values = pin(values) if device.startswith("cuda") else _host_tensor(values)
    kind = values.superres_dtype
    t = values.to(device, non_blocking=True)
    if kind == np.uint16:
        return t.to(torch.int32) & 0xFFFF
    if kind == np.uint32:
        return t.to(torch.int64) & 0xFFFFFFFF
    return t


def _host_tensor(values: np.ndarray):
    """A tensor sharing ``values``' memory (UInt16/UInt32 as their signed twins),
    marked with the true type in ``superres_dtype``."""
    values = np.ascontiguousarray(values)
    twin = {np.dtype(np.uint16): np.int16, np.dtype(np.uint32): np.int32}.get(values.dtype)
    t = torch.from_numpy(values.view(twin) if twin else values)
    t.superres_dtype = values.dtype
    return t


def pin(values: np.ndarray):
    """Raw values in page-locked host memory, for an asynchronous copy to a GPU.

    Done by the reader thread, so the copy's set-up overlaps compute.
    """
    t = _host_tensor(values)
    pinned = t.pin_memory()
    pinned.superres_dtype = t.superres_dtype
    return pinned


def valid_mask(raw, nodata: Sequence):
    """Boolean (C, h, w): finite and not equal to that band's nodata value.

    Nodata is compared as the input's own type holds it (as numpy compares
    a Python number with an array); a value the type cannot hold matches nothing.
    """
    if raw.is_floating_point():
        mask = torch.isfinite(raw)
    else:
        mask = torch.ones(raw.shape, dtype=torch.bool, device=raw.device)
    for c, nd in enumerate(nodata):
        if nd is None or (isinstance(nd, float) and math.isnan(nd)):
            continue
        if raw.is_floating_point():
            mask[c] &= raw[c] != torch.tensor(float(nd), dtype=raw.dtype, device=raw.device)
        elif float(nd) == int(nd) and _holds(raw, int(nd)):
            mask[c] &= raw[c] != int(nd)
    return mask


def _holds(raw, value: int) -> bool:
    """True when the (widened) raw integer type can hold ``value``."""
    info = torch.iinfo(raw.dtype)
    return info.min <= value <= info.max


def normalise(raw, low, span, compute):
    """(C, h, w) raw values to float32 normalised units ``(value - low) / span``.

    ``low`` and ``span`` are (C, 1, 1) tensors of type ``compute``. Invalid
    values may come out as NaN or inf; ``fill_invalid`` replaces them.
    """
    return ((raw.to(compute) - low) / span).float()


def fill_invalid(norm, valid, iterations: int, all_valid: Optional[bool] = None):
    """Fill invalid pixels from valid neighbours, as ``normalise.fill_invalid`` does.

    Each iteration gives every still-invalid pixel the mean of its valid 3x3
    neighbours; what is left after ``iterations`` gets 0.5. ``all_valid``,
    when the caller knows it, spares the device a round trip to find out.
    """
    import torch.nn.functional as F
    out = torch.where(valid, norm, torch.zeros((), dtype=norm.dtype, device=norm.device))
    if bool(valid.all()) if all_valid is None else all_valid:
        return out
    known = valid.clone()
    ones = torch.ones((1, 1, 3, 3), dtype=norm.dtype, device=norm.device)
    for _ in range(iterations):
        kf = known.to(norm.dtype)[:, None]
        total = F.conv2d((out * known)[:, None], ones, padding=1)[:, 0]
        count = F.conv2d(kf, ones, padding=1)[:, 0]
        grow = ~known & (count > 0)
        out = torch.where(grow, total / count.clamp(min=1), out)
        known = known | grow
    return torch.where(known, out, torch.full((), 0.5, dtype=norm.dtype, device=norm.device))


def symmetric_pad(x, pads):
    """Pad the last two axes like ``numpy.pad(mode="symmetric")``.

    ``pads`` is ((top, bottom), (left, right)); each edge pixel is repeated,
    then the image is mirrored, as far as needed (also beyond its own size).
    """
    (top, bottom), (left, right) = pads
    if not (top or bottom or left or right):
        return x
    h, w = x.shape[-2:]
    rows = _mirror_index(h, top, bottom, x.device)
    cols = _mirror_index(w, left, right, x.device)
    return x.index_select(-2, rows).index_select(-1, cols)


def _mirror_index(n: int, before: int, after: int, device):
    i = torch.arange(-before, n + after, device=device) % (2 * n)
    return torch.where(i >= n, 2 * n - 1 - i, i)


def denormalise(norm, low, span, compute):
    """Inverse of ``normalise``, in ``compute`` precision."""
    return norm.to(compute) * span + low


def encode(values, valid, dtype, nodata: Sequence[Optional[float]]) -> np.ndarray:
    """Round and clip (C, H, W) SR values to numpy ``dtype`` with nodata; return numpy.

    The rules of ``encoding.encode``: a valid value that would equal its
    band's nodata moves one step towards the unrounded value; invalid pixels
    become nodata (NaN, or 0 for integers, where a band declares none). Only
    the encoded array comes back from the device.
    """
    dtype = np.dtype(dtype)
    lo, hi = type_range(dtype)
    integer = dtype.kind in "iu"
    x = torch.nan_to_num(values, nan=0.0)
    if integer:
        x = torch.round(x.clamp(lo, hi))
    else:
        x = x.clamp(lo, hi)   # inf clips to the type's largest finite value, as numpy does
    fill = []
    for c, nd in enumerate(nodata):
        band, ok = x[c], valid[c]
        if nd is None or (isinstance(nd, float) and math.isnan(nd)):
            fill.append(torch.where(ok, band, torch.full((), float("nan") if not integer else 0.0,
                                                        dtype=band.dtype, device=band.device)))
            continue
        nd_t = float(dtype.type(nd))
        if integer:
            step_up = nd_t + 1 if nd_t < hi else nd_t - 1
            step_dn = nd_t - 1 if nd_t > lo else nd_t + 1
            moved = torch.where(values[c] >= float(nd), step_up, step_dn)
            clash = ok & (band == nd_t)
        else:
            # compare in the output's own precision, as the numpy reference does
            cast = band.to(_float_type(dtype))
            nd_c = torch.tensor(nd_t, dtype=_float_type(dtype), device=band.device)
            clash = ok & (cast == nd_c)
            up = torch.nextafter(nd_c, torch.tensor(float("inf"), dtype=nd_c.dtype, device=band.device))
            dn = torch.nextafter(nd_c, torch.tensor(float("-inf"), dtype=nd_c.dtype, device=band.device))
            moved = torch.where(values[c] >= float(nd), up, dn).to(band.dtype)
        band = torch.where(clash, moved.to(band.dtype), band)
        fill.append(torch.where(ok, band, torch.full((), nd_t, dtype=band.dtype, device=band.device)))
    out = torch.stack(fill)
    return _to_numpy(out, dtype)


def _float_type(dtype):
    return torch.float64 if np.dtype(dtype) == np.float64 else torch.float32


def _to_numpy(x, dtype) -> np.ndarray:
    """Cast on the device to the output type's width, then copy to the host."""
    dtype = np.dtype(dtype)
    if dtype == np.uint16:
        return x.to(torch.int32).to(torch.int16).cpu().numpy().view(np.uint16)
    if dtype == np.uint32:
        return x.to(torch.int64).to(torch.int32).cpu().numpy().view(np.uint32)
    return x.to(torch_dtype(dtype)).cpu().numpy()


def local_range(values, valid, radius: int):
    """Per band, the min and max of the valid pixels within ``radius`` of each pixel,
    and which valid pixels have an invalid one within ``radius`` ("near nodata").

    ``values`` are (C, h, w) floats in a type that holds the data exactly (the
    raw values in the compute type), so the min and max are the data's own.
    Neighbourhoods are cut at the array's edges (a tile's margin covers ``radius``).
    """
    import torch.nn.functional as F
    k = 2 * radius + 1
    big = torch.finfo(values.dtype).max
    x = values[:, None]
    v = valid[:, None]
    hi = F.max_pool2d(torch.where(v, x, -big), k, 1, radius)[:, 0]
    lo = -F.max_pool2d(torch.where(v, -x, -big), k, 1, radius)[:, 0]
    near = F.max_pool2d((~v).to(values.dtype), k, 1, radius)[:, 0] > 0
    return lo, hi, near & valid


def upsample_mask(valid, scale: int):
    """Each pixel's validity repeated over its ``scale`` x ``scale`` block."""
    return valid.repeat_interleave(scale, dim=-2).repeat_interleave(scale, dim=-1)
