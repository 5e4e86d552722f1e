"""Safetensors weights with metadata: saving, checking and loading.

Weights are never pickles. A file is refused unless its metadata names the
architecture, scale and bands asked for, its tensors have the shapes the
architecture expects, and its recorded hash matches the tensors.

The repository keeps float32 files. The plugin zip carries half-size copies
(``convert_weights``): their tensors are stored as ``stored_dtype`` (float16
or bfloat16), ``tensor_sha256`` is the hash of those stored tensors, and
``source_tensor_sha256`` the hash of the float32 file they came from. The
loader checks the stored tensors, then casts them to the network's float32.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Dict, Mapping

from .errors import SuperResError

FORMAT_VERSION = "1"
#: Largest weights file accepted (the shipped ones are a few MB).
MAX_BYTES = 64 * 1024 * 1024
REQUIRED_KEYS = ("format_version", "architecture", "scale", "bands", "normalisation",
                 "degradation", "tensor_sha256")
#: Tensor types a file may store (``stored_dtype`` metadata; float32 when absent).
STORED_DTYPES = ("float32", "float16", "bfloat16")


def tensor_hash(state: Mapping) -> str:
    """sha256 over the tensors' names, shapes, dtypes and bytes, in name order."""
    import torch
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(str(t.dtype).encode())
        h.update(t.view(-1).view(dtype=torch.uint8).numpy().tobytes())
    return h.hexdigest()


def save_weights(path, state: Mapping, metadata: Mapping[str, object]) -> None:
    """Write ``state`` to ``path`` as safetensors, with string metadata and its hash."""
    from safetensors.torch import save_file
    meta: Dict[str, str] = {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}
    meta["format_version"] = FORMAT_VERSION
    state = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    meta["tensor_sha256"] = tensor_hash(state)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp), metadata=meta)
    tmp.replace(path)


def read_metadata(path) -> Dict[str, str]:
    """The metadata of a safetensors file, or a clear error if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise SuperResError(f"Weights file not found: {path}. Reinstall the plugin.")
    size = path.stat().st_size
    if size > MAX_BYTES or size < 16:
        raise SuperResError(f"Weights file {path.name} has an implausible size ({size} bytes): "
                            "it is damaged or not ours; reinstall the plugin.")
    try:
        from safetensors import safe_open
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception as exc:
        raise SuperResError(f"Weights file {path.name} is not a readable safetensors file ({exc}); "
                            "it is damaged: reinstall the plugin or retrain it.") from None


def load_weights(path, architecture: str, scale: int, bands: int, model) -> Dict[str, str]:
    """Load ``path`` into ``model`` after checking metadata, shapes and hash.

    Returns the metadata. Raises ``SuperResError`` naming what does not match.
    """
    path = Path(path)
    meta = read_metadata(path)
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    if missing:
        raise SuperResError(f"Weights file {path.name} lacks metadata {', '.join(missing)}; "
                            "it was not made by this project's trainer.")
    wanted = {"architecture": architecture, "scale": str(scale), "bands": str(bands)}
    for key, value in wanted.items():
        if meta[key] != value:
            raise SuperResError(f"Weights file {path.name} is for {key} {meta[key]}, "
                                f"but {key} {value} was asked for; the file is misnamed or mixed up.")
    stored = meta.get("stored_dtype", "float32")
    if stored not in STORED_DTYPES:
        raise SuperResError(f"Weights file {path.name} stores its tensors as '{stored}'; this "
                            f"version reads {', '.join(STORED_DTYPES)}. Reinstall the plugin.")
    from safetensors.torch import load_file
    try:
        state = load_file(str(path))
    except Exception as exc:
        raise SuperResError(f"Weights file {path.name} is damaged ({exc}); reinstall the plugin.") from None
    expected = model.state_dict()
    bad = sorted(set(expected) ^ set(state))
    bad += [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if bad:
        raise SuperResError(f"Weights file {path.name} does not fit the {architecture} "
                            f"x{scale} {bands}-band network (tensors {', '.join(bad[:4])}).")
    odd = sorted(k for k, v in state.items() if v.is_floating_point() and str(v.dtype) != f"torch.{stored}")
    if odd:
        raise SuperResError(f"Weights file {path.name} says its tensors are {stored}, but "
                            f"{', '.join(odd[:4])} {'is' if len(odd) == 1 else 'are'} not: it is damaged.")
    if tensor_hash(state) != meta["tensor_sha256"]:
        raise SuperResError(f"Weights file {path.name} fails its hash check: it is damaged.")
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()})
    return meta


def convert_weights(src, dst, dtype: str) -> Dict[str, str]:
    """Write a copy of the weights ``src`` with its float tensors stored as ``dtype``.

    ``src`` must pass its own hash check. The copy records ``stored_dtype``,
    its own ``tensor_sha256`` (over the converted tensors) and the source's
    as ``source_tensor_sha256``; the loader casts it back to float32.
    Returns the copy's metadata.
    """
    import torch
    from safetensors.torch import load_file
    if dtype not in STORED_DTYPES:
        raise SuperResError(f"Unknown stored dtype '{dtype}'; use one of {', '.join(STORED_DTYPES)}.")
    meta = read_metadata(src)
    state = load_file(str(src))
    if tensor_hash(state) != meta.get("tensor_sha256"):
        raise SuperResError(f"Weights file {Path(src).name} fails its hash check: it is damaged.")
    target = getattr(torch, dtype)
    converted = {k: v.to(target) if v.is_floating_point() else v for k, v in state.items()}
    out = {k: v for k, v in meta.items() if k not in ("format_version", "tensor_sha256")}
    out["stored_dtype"] = dtype
    out.setdefault("source_tensor_sha256", meta["tensor_sha256"])
    save_weights(dst, converted, out)
    return read_metadata(dst)
