"""Install the plugin into a QGIS profile and build a working qgis_process call.

Used by `make demo`, `make install` and the qgis_process test. Debian's
/usr/bin/qgis_process wrapper passes --noversioncheck, which the 3.22 binary
rejects, so we call qgis_process.bin directly.
"""
from __future__ import annotations

import configparser
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from plugin.torch_env import link_site_packages  # noqa: E402

PLUGIN_NAME = "raster_super_resolution"
#: What a user's plugin folder needs; tests, tools and caches stay out.
SHIPPED = ("__init__.py", "metadata.txt", "README.md", "LICENSE", "backend", "plugin",
           "processing_provider", "ui", "resources")


def qgis_process_binary() -> str:
    """The real qgis_process executable."""
    for name in ("qgis_process.bin", "qgis_process"):
        for folder in ("/usr/bin", "/usr/lib/qgis", "/usr/local/bin"):
            path = Path(folder) / name
            if path.is_file():
                return str(path)
    found = shutil.which("qgis_process.bin") or shutil.which("qgis_process")
    if not found:
        raise FileNotFoundError("qgis_process not found: install QGIS (make setup)")
    return found


def torch_site_packages() -> Optional[Path]:
    """The site-packages folder that holds this Python's torch, if it is a venv's.

    None when torch is missing, or when it comes with the system Python that
    QGIS runs anyway.
    """
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.origin:
        return None
    folder = Path(spec.origin).resolve().parent.parent
    prefix, base = Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()
    if prefix != base and prefix in folder.parents:
        return folder                                 # the venv's own
    return None if base in folder.parents else folder  # the system's: QGIS has it already


def install(profile_dir: Path, link: bool = False, torch_from: Optional[Path] = None) -> Path:
    """Put the plugin in ``profile_dir``'s plugins folder and enable it in QGIS3.ini.

    ``torch_from``, a site-packages folder holding torch, is linked into the
    profile's plugin-owned package folder (``plugin.torch_env``), so QGIS and
    qgis_process import torch from it with no PYTHONPATH.
    """
    plugins = profile_dir / "python" / "plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    target = plugins / PLUGIN_NAME
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.is_dir():
        shutil.rmtree(target)
    if link:
        target.symlink_to(ROOT, target_is_directory=True)
    else:
        target.mkdir()
        for name in SHIPPED:
            src = ROOT / name
            if src.is_dir():
                shutil.copytree(src, target / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            elif src.is_file():
                shutil.copy2(src, target / name)
    enable(profile_dir)
    if torch_from is not None:
        link_site_packages(profile_dir, torch_from)
    return target


def enable(profile_dir: Path) -> None:
    """Mark the plugin enabled in ``profile_dir``'s QGIS3.ini, as the Plugin Manager does."""
    ini_path = profile_dir / "QGIS" / "QGIS3.ini"
    ini_path.parent.mkdir(parents=True, exist_ok=True)
    ini = configparser.RawConfigParser()
    ini.optionxform = str  # QGIS keys are case-sensitive
    if ini_path.exists():
        ini.read(ini_path)
    if not ini.has_section("PythonPlugins"):
        ini.add_section("PythonPlugins")
    ini.set("PythonPlugins", PLUGIN_NAME, "true")
    with open(ini_path, "w") as f:
        ini.write(f, space_around_delimiters=False)


def temporary_config(config_dir: Path) -> Path:
    """A QGIS_CUSTOM_CONFIG_PATH holding a default profile with the plugin linked in.

    The venv's torch is linked as `make install` links it.
    """
    install(config_dir / "profiles" / "default", link=True, torch_from=torch_site_packages())
    return config_dir


def qgis_process_env(config_dir: Path) -> dict:
    """Environment for qgis_process: our config dir, headless Qt and no PYTHONPATH.

    torch comes from the profile, as for a user (``install(torch_from=...)``).
    """
    env = dict(os.environ)
    env["QGIS_CUSTOM_CONFIG_PATH"] = str(config_dir)
    env["QT_QPA_PLATFORM"] = "offscreen"
    env.pop("PYTHONPATH", None)
    return env


def run_qgis_process(config_dir: Path, args, **kwargs) -> subprocess.CompletedProcess:
    """Run qgis_process with ``args`` (a list, never a shell string)."""
    return subprocess.run([qgis_process_binary(), *args], env=qgis_process_env(config_dir),
                          capture_output=True, text=True, **kwargs)


if __name__ == "__main__":
    sys.exit("import this module")
