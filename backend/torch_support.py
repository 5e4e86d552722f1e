"""Optional PyTorch import: the plugin loads and baselines run without it."""
from __future__ import annotations

from .errors import SuperResError

try:  # torch is optional: the interpolation baselines work without it.
    import torch  # noqa: F401
    TORCH_AVAILABLE = True
    TORCH_IMPORT_ERROR = ""
except Exception as exc:  # ImportError, or a broken install raising OSError
    torch = None
    TORCH_AVAILABLE = False
    TORCH_IMPORT_ERROR = str(exc)

TORCH_FIX = (
    "Install PyTorch into the Python that QGIS uses, e.g. run `make setup` in the plugin "
    "folder or `python3 -m pip install torch safetensors`"
)


def require_torch(what: str):
    """Return the torch module, or raise a clear error naming ``what`` needs it."""
    if not TORCH_AVAILABLE:
        raise SuperResError(
            f"{what} needs PyTorch, which cannot be imported ({TORCH_IMPORT_ERROR}). {TORCH_FIX}."
        )
    return torch


def resolve_device(requested: str) -> str:
    """Map ``auto``/``cpu``/``cuda`` to a usable torch device name.

    ``auto`` picks CUDA when torch sees a GPU; an explicit ``cuda`` without one
    is an error rather than a silent fallback.
    """
    requested = (requested or "auto").lower()
    if requested not in ("auto", "cpu", "cuda"):
        raise SuperResError(f"Unknown device '{requested}': use auto, cpu or cuda.")
    if not TORCH_AVAILABLE:
        if requested == "cuda":
            require_torch("The cuda device")
        return "cpu"
    has_cuda = torch.cuda.is_available()
    if requested == "cuda" and not has_cuda:
        raise SuperResError(
            "DEVICE is 'cuda' but PyTorch sees no CUDA GPU on this machine. "
            "Use DEVICE 'auto' or 'cpu', or install a CUDA build of PyTorch."
        )
    if requested == "auto":
        return "cuda" if has_cuda else "cpu"
    return requested
