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

#: How to get PyTorch, in the words of the front end in use; the QGIS plugin
#: replaces this command-line default with its own (``set_install_hint``).
INSTALL_HINT = (
    "Install it into the Python that runs this command: `make setup` in the source folder builds "
    ".venv with it; in another virtual environment, pip install torch safetensors "
    "--extra-index-url https://download.pytorch.org/whl/cpu (the CPU build, about 190 MB)"
)


def set_install_hint(text: str) -> None:
    """Make ``require_torch``'s errors name ``text`` as the way to install PyTorch."""
    global INSTALL_HINT
    INSTALL_HINT = text


def require_torch(what: str):
    """Return the torch module, or raise a clear error naming ``what`` needs it."""
    if not TORCH_AVAILABLE:
        raise SuperResError(
            f"{what} needs PyTorch, which cannot be imported ({TORCH_IMPORT_ERROR}). {INSTALL_HINT}."
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
