"""Installing PyTorch into the plugin's own package folder with pip.

What to install (``variants``), with which interpreter (``find_python``: the
Python QGIS embeds, never QGIS's own executable) and with which pip arguments
(``pip_arguments``, always a list). The dialog in ``ui/torch_install_dialog.py``
runs them and shows pip's output. Nothing here imports QGIS.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from .torch_env import python_candidates

#: The PyTorch release the plugin is tested with.
TORCH_VERSION = "2.13.0"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
PYPI_INDEX = "https://pypi.org/simple"


class InstallError(Exception):
    """Installing cannot start or did not work; the message says why and what to do."""


@dataclass(frozen=True)
class Variant:
    """One way to install PyTorch.

    Attributes:
        key: ``cpu``, ``pypi`` or ``folder``.
        title: the choice as the dialog shows it.
        size: what it downloads, roughly.
        requirements: pip requirement strings.
        index_args: pip options choosing where packages come from.
        env: environment variables pip runs with.
    """

    key: str
    title: str
    size: str
    requirements: Tuple[str, ...]
    index_args: Tuple[str, ...] = ()
    env: Tuple[Tuple[str, str], ...] = ()


def has_nvidia_driver() -> bool:
    """True when an NVIDIA driver is installed (what a CUDA build needs)."""
    if Path("/proc/driver/nvidia/version").exists():
        return True
    return shutil.which("nvidia-smi") is not None


def variants(platform: str = sys.platform) -> List[Variant]:
    """The install choices on ``platform``, CPU first.

    On Linux PyPI's default torch is the CUDA build, which pulls NVIDIA's
    libraries (gigabytes); PyTorch's CPU index has a CPU-only build. On
    Windows and macOS PyPI's default is already CPU-only (Apple GPUs: MPS).
    """
    req = ("safetensors",)
    if platform.startswith("linux") or platform == "win32":
        cpu = Variant("cpu", "CPU only: PyTorch's CPU build", "about 200 MB to download",
                      (f"torch=={TORCH_VERSION}+cpu",) + req,
                      ("--index-url", CPU_INDEX, "--extra-index-url", PYPI_INDEX))
    else:
        cpu = Variant("cpu", "PyTorch from PyPI (CPU; Apple GPUs through MPS)", "under 100 MB to download",
                      (f"torch=={TORCH_VERSION}",) + req)
    found = [cpu]
    if platform.startswith("linux"):
        found.append(Variant("pypi", "NVIDIA GPU: PyPI's CUDA build", "about 3 GB to download",
                             (f"torch=={TORCH_VERSION}",) + req))
    return found


def folder_variant(folder: str) -> Variant:
    """Install from wheel files in ``folder`` only (offline).

    pip's configuration is ignored, the system-wide file too (``--isolated``
    alone still reads it, and its find-links or index could supply packages).
    """
    return Variant("folder", f"Wheel files in {folder}", "nothing to download", ("torch", "safetensors"),
                   ("--isolated", "--no-index", "--find-links", str(folder)), (("PIP_CONFIG_FILE", os.devnull),))


def default_variant(platform: str = sys.platform) -> str:
    """``pypi`` (CUDA) on Linux with an NVIDIA driver, else ``cpu``."""
    return "pypi" if platform.startswith("linux") and has_nvidia_driver() else "cpu"


def python_version(python: str) -> Optional[Tuple[int, int]]:
    """(major, minor) of the interpreter ``python``, or None if it does not run."""
    try:
        # Bandit B603: a fixed argument list, no shell; ``python`` is a candidate path, not user text
        out = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:2])"],  # nosec B603
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    parts = out.stdout.split()
    return (int(parts[0]), int(parts[1])) if out.returncode == 0 and len(parts) == 2 else None


def find_python(version: Sequence[int] = sys.version_info[:2],
                candidates: Optional[Sequence[Path]] = None) -> str:
    """The interpreter matching the Python QGIS runs (``version``), with pip.

    Raises ``InstallError`` naming what was tried when none matches.
    """
    want = tuple(version[:2])
    tried = []
    for path in python_candidates() if candidates is None else candidates:
        got = python_version(str(path))
        tried.append(f"{path} ({'.'.join(map(str, got)) if got else 'does not run'})")
        if got == want:
            # Bandit B603: a fixed argument list, no shell, the interpreter just identified above
            pip = subprocess.run([str(path), "-m", "pip", "--version"], capture_output=True, text=True)  # nosec B603
            if pip.returncode != 0:
                raise InstallError(f"{path} is QGIS's Python {want[0]}.{want[1]} but has no pip. Install pip for "
                                   "it (Debian/Ubuntu: sudo apt install python3-pip), then try again.")
            return str(path)
    raise InstallError(f"No Python {want[0]}.{want[1]} interpreter found for QGIS's Python; tried: "
                       f"{'; '.join(tried) or 'nothing'}. Install PyTorch by hand with that Python's pip.")


def numpy_constraint(folder: Path) -> Optional[Path]:
    """A pip constraints file pinning QGIS's own numpy, so pip never brings another."""
    try:
        import numpy
    except ImportError:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "constraints.txt"
    path.write_text(f"numpy=={numpy.__version__}\n")
    return path


def pip_arguments(target: Path, variant: Variant, constraints: Optional[Path] = None) -> List[str]:
    """pip's arguments (after ``python -m pip``) to install ``variant`` into ``target``."""
    args = ["install", "--target", str(target), "--upgrade", "--no-warn-script-location",
            "--disable-pip-version-check", "--progress-bar", "off"]
    if constraints is not None:
        args += ["--constraint", str(constraints)]
    return args + list(variant.index_args) + list(variant.requirements)


def check_installed(python: str, target: Path) -> str:
    """Import torch and safetensors from ``target`` in a fresh interpreter; return torch's version.

    Raises ``InstallError`` with the import error when they do not load.
    """
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import torch, safetensors; "
            "print(torch.__version__)")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # Bandit B603: a fixed argument list, no shell; ``code`` is the constant above
    out = subprocess.run([python, "-c", code, str(target)], capture_output=True, text=True, env=env)  # nosec B603
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["no output"])[-1]
        raise InstallError(f"pip finished, but PyTorch does not import from {target}: {last}")
    return out.stdout.strip()


def last_error(log: str) -> str:
    """The line of pip's output that says why it failed."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR:")]
    return (errors or lines or ["no output"])[0 if errors else -1]
