"""Where the plugin finds PyTorch inside QGIS.

QGIS runs its own Python (Debian's /usr/bin/python3, OSGeo4W's, the QGIS.app
one), which rarely has torch. The plugin looks in that Python first, then in
a folder it owns under the QGIS profile:

    <profile>/raster_super_resolution_deps/python<major>.<minor>/

which it puts at the front of ``sys.path`` (``.pth`` files there are read, so
the folder may also point elsewhere). The installer dialog pip-installs torch
into it; `make install` writes a ``.pth`` there pointing at the venv it built.
The Python version in the name keeps a QGIS upgrade from loading packages built
for another Python. Nothing here imports QGIS unless no profile is given.
"""
from __future__ import annotations

import shutil
import site
import sys
from pathlib import Path
from typing import List, Optional, Sequence

DEPS_FOLDER = "raster_super_resolution_deps"
#: The .pth file `make install` writes, pointing at the venv's site-packages.
LINK_NAME = "raster_super_resolution_venv.pth"


def python_tag(version: Optional[Sequence[int]] = None) -> str:
    """``python3.11`` for the running (or the given) Python version."""
    major, minor = (version or sys.version_info)[:2]
    return f"python{major}.{minor}"


def profile_dir() -> Path:
    """The active QGIS profile's folder (QGIS must be running)."""
    from qgis.core import QgsApplication
    return Path(QgsApplication.qgisSettingsDirPath())


def deps_dir(profile: Optional[Path] = None, version: Optional[Sequence[int]] = None) -> Path:
    """The plugin-owned package folder of ``profile`` (default: QGIS's active one)."""
    return Path(profile or profile_dir()) / DEPS_FOLDER / python_tag(version)


def add_deps_dir(profile: Optional[Path] = None) -> Optional[Path]:
    """Put the profile's package folder, and what its ``.pth`` files name, first on ``sys.path``.

    Returns the folder, or None when it does not exist. Calling it again adds
    nothing twice.
    """
    folder = deps_dir(profile)
    if not folder.is_dir():
        return None
    before = list(sys.path)
    site.addsitedir(str(folder))   # appends the folder and its .pth entries
    added = [p for p in sys.path if p not in before]
    sys.path[:] = added + [p for p in before if p not in added]
    return folder


def link_site_packages(profile: Path, site_packages: Path) -> Path:
    """Make ``profile``'s package folder point at ``site_packages`` (what `make install` does)."""
    folder = deps_dir(profile)
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / LINK_NAME
    link.write_text(f"{Path(site_packages).resolve()}\n")
    return link


def python_candidates() -> List[Path]:
    """Interpreters that may be the Python QGIS embeds, most likely first.

    Inside QGIS ``sys.executable`` is QGIS itself, or whatever ``python3`` is
    first on PATH (a pyenv shim, say), so the embedded Python's own prefix
    comes first. The caller checks the version (``torch_installer.find_python``).
    """
    tag = python_tag()
    found: List[Path] = []
    for prefix in dict.fromkeys((sys.base_exec_prefix, sys.exec_prefix)):
        if sys.platform == "win32":
            found += [Path(prefix) / "python.exe", Path(prefix) / "python3.exe"]
        else:
            found += [Path(prefix) / "bin" / tag, Path(prefix) / "bin" / "python3"]
    if Path(sys.executable).name.lower().startswith("python"):
        found.append(Path(sys.executable))
    found += [Path(p) for p in (shutil.which(tag), shutil.which("python3")) if p]
    return [p for p in dict.fromkeys(found) if p.is_file()]


def install_hint(profile: Optional[Path] = None) -> str:
    """How to get PyTorch, as told inside QGIS (and qgis_process)."""
    candidates = python_candidates()
    python = str(candidates[0]) if candidates else python_tag()
    return ("Install it from QGIS: Raster > Raster Super-Resolution > Install PyTorch…, then restart "
            "QGIS. Without the QGIS window (qgis_process), install it with the Python QGIS runs: "
            f"{python} -m pip install --target {deps_dir(profile)} torch safetensors")
