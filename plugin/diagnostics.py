"""The "Copy diagnostics" text: what a bug report needs, from the running QGIS."""
from __future__ import annotations

import platform
import sys
from pathlib import Path

from ..backend.provenance import plugin_version
from .torch_env import deps_dir

ROOT = Path(__file__).resolve().parent.parent


def torch_lines() -> list:
    """PyTorch, CUDA and the device ``auto`` resolves to."""
    from ..backend import torch_support as ts
    if not ts.TORCH_AVAILABLE:
        return [f"PyTorch: not importable ({ts.TORCH_IMPORT_ERROR})", "CUDA: n/a", "Device (auto): cpu"]
    torch = ts.torch
    cuda = torch.cuda.is_available()
    gpu = f", {torch.cuda.get_device_name(0)}" if cuda else ""
    return [f"PyTorch: {torch.__version__} from {Path(torch.__file__).parent}",
            f"CUDA: {'available' if cuda else 'not available'} (built for {torch.version.cuda or 'CPU only'}{gpu})",
            f"Device (auto): {ts.resolve_device('auto')}"]


def weights_lines() -> list:
    """Each weights file present, with how it is stored."""
    from ..backend.registry import WEIGHTS_DIR
    from ..backend.weights import read_metadata
    lines = []
    for path in sorted(WEIGHTS_DIR.glob("*.safetensors")):
        try:
            stored = read_metadata(path).get("stored_dtype", "float32")
        except Exception as exc:   # a damaged file is worth reporting, not failing on
            stored = f"unreadable: {exc}"
        lines.append(f"  {path.name} ({stored}, {path.stat().st_size / 1e6:.1f} MB)")
    return lines or ["  none"]


def diagnostics_text() -> str:
    """QGIS, GDAL, Python, PyTorch, CUDA, device, plugin version and the weights present."""
    from osgeo import gdal
    from qgis.core import Qgis
    folder = deps_dir()
    return "\n".join([
        f"Raster Super-Resolution {plugin_version()} ({ROOT})",
        f"QGIS {Qgis.QGIS_VERSION}",
        f"GDAL {gdal.__version__}",
        f"Python {platform.python_version()} ({sys.base_exec_prefix}); {platform.platform()}",
        *torch_lines(),
        f"Plugin package folder: {folder} ({'present' if folder.is_dir() else 'absent'})",
        "Weights:",
        *weights_lines(),
    ])
