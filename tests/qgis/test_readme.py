"""Every fenced snippet of README.md runs as written, except those marked not run (issue #21).

A block right after a ``<!-- not run by tests/qgis/test_readme.py: reason -->``
line is skipped. Shell blocks run with ``bash -e`` from the repository root,
as on a machine after the Quick start: ``.venv/bin/python`` is this test's
interpreter (the venv `make setup` builds), ``make install`` is its recipe
(checked against the Makefile), HOME is a fresh folder (so the default QGIS
profile is new), nothing is on PYTHONPATH, and ``/tmp/`` is this test's
temporary folder. Python blocks run in this QGIS as in its Python console
(``processing`` and ``qgis.core`` imported, ``iface`` with the sample crop as
its active layer).

The qgis_process block is the issue's check that, after ``make install`` into a
fresh profile, qgis_process runs dganet with no PYTHONPATH.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from qgis.core import QgsProject, QgsRasterLayer

from helpers import AERIAL, ROOT, read

FENCE = re.compile(r"(?P<before>[^\n]*)\n```(?P<lang>sh|python)\n(?P<code>.*?)\n```", re.S)


def blocks():
    """(language, code) of each README block to run; marked ones are left out."""
    text = (ROOT / "README.md").read_text()
    found = [(m["lang"], m["code"]) for m in FENCE.finditer(text)
             if not m["before"].startswith("<!-- not run by tests/qgis/test_readme.py:")]
    assert len(found) >= 5 and all(code.strip() for _, code in found)
    return found


def shell(code, tmp_path):
    """``code`` as it runs on a machine after the Quick start (see the module docstring)."""
    makefile = (ROOT / "Makefile").read_text()
    assert "install: setup\n\t$(PY) tools/install_plugin.py\n" in makefile
    code = re.sub(r"^make install$", ".venv/bin/python tools/install_plugin.py", code, flags=re.M)
    # /tmp/ first, so that an interpreter under /tmp (a clone there) is left alone
    code = code.replace("/tmp/", f"{tmp_path}/")
    return re.sub(r"(?<![\w/])\.venv/bin/python\b", sys.executable, code)


@pytest.fixture
def env(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "QGIS_CUSTOM_CONFIG_PATH", "QGIS_OPTIONS_PATH")}
    env["HOME"] = str(home)
    return env


def test_readme_snippets_run(tmp_path, env, qgis_iface):
    layer = QgsRasterLayer(str(AERIAL), "osbs")
    QgsProject.instance().addMapLayer(layer)
    qgis_iface.setActiveLayer(layer)
    ran = []
    for lang, code in blocks():
        if lang == "sh":
            proc = subprocess.run(["bash", "-e", "-c", shell(code, tmp_path)], cwd=ROOT, env=env,
                                  capture_output=True, text=True, timeout=900)
            assert proc.returncode == 0, f"{code}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        else:
            console = {"iface": qgis_iface}   # the QGIS Python console imports these itself
            exec("import processing\nfrom qgis.core import *", console)
            exec(code.replace("/tmp/", f"{tmp_path}/"), console)
        ran.append(code)
    assert any("qgis_process.bin run superres:superresolve" in c for c in ran)
    # make install went into the fresh default profile and linked the venv's torch there; a
    # torch installed with the system Python (Debian's python3-torch) is QGIS's already: no link
    profile = tmp_path / "home" / ".local/share/QGIS/QGIS3/profiles/default"
    assert (profile / "python/plugins/raster_super_resolution/LICENSE").is_file()
    pth = profile / "raster_super_resolution_deps" / f"python{sys.version_info[0]}.{sys.version_info[1]}" \
        / "raster_super_resolution_venv.pth"
    import torch
    torch_dir = Path(torch.__file__).resolve().parent.parent
    if sys.prefix != sys.base_prefix and torch_dir.is_relative_to(Path(sys.prefix).resolve()):
        assert pth.read_text().strip() == str(torch_dir)
    else:
        assert torch_dir.is_relative_to(Path(sys.base_prefix).resolve()) and not pth.exists()
    # ... and qgis_process, with no PYTHONPATH, ran dganet there: the same pixels as the PyQGIS
    # and command-line snippets (dganet x4, ISE 5, the same crop)
    qp = read(tmp_path / "sr_qp.tif")
    assert qp.shape == (3, 512, 512)
    np.testing.assert_array_equal(qp, read(tmp_path / "sr.tif"))
    np.testing.assert_array_equal(qp, read(tmp_path / "sr_cli.tif"))
    # the command line's evaluate wrote its reports, the PyQGIS snippets their outputs
    assert (tmp_path / "report_cli.csv").read_text().count("\n") == 6 and (tmp_path / "report_cli.html").is_file()
    assert (tmp_path / "report.csv").read_text().count("\n") == 5 and (tmp_path / "report.html").is_file()
