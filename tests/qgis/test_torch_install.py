"""The "Install PyTorch…" dialog installs with pip into the plugin's folder, where the plugin finds it.

No network: the test builds two small wheels (a stand-in ``torch`` and
``safetensors``) and installs them with the dialog's offline choice
(``--no-index --find-links``).
"""
import base64
import hashlib
import subprocess
import sys
import time
import zipfile
from importlib import import_module

from qgis.core import QgsApplication

from helpers import ROOT


def build_wheel(folder, name, version, code):
    """A minimal pure-Python wheel holding ``<name>/__init__.py`` = ``code``."""
    files = {f"{name}/__init__.py": code.encode(),
             f"{name}-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
             f"{name}-{version}.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                                  b"Tag: py3-none-any\n"}
    record = "".join(f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},"
                     f"{len(data)}\n" for path, data in files.items())
    files[f"{name}-{version}.dist-info/RECORD"] = (record + f"{name}-{version}.dist-info/RECORD,,\n").encode()
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for arc, data in files.items():
            z.writestr(arc, data)
    return path


def run_dialog(package, profile, folder, timeout=180):
    """Open the installer on ``profile``, install from ``folder``, and wait until pip is done."""
    dialog = import_module(package.__name__ + ".ui.torch_install_dialog").TorchInstallDialog(profile=profile)
    dialog.folder_radio.setChecked(True)
    dialog.folder_widget.setFilePath(str(folder))
    dialog.install_button.click()
    start = time.time()
    while dialog.process is None or dialog.process.state() != dialog.process.NotRunning \
            or not dialog.install_button.isEnabled() and not dialog.installed_version:
        if time.time() - start > timeout:
            raise TimeoutError(dialog.log_view.toPlainText())
        QgsApplication.processEvents()
        time.sleep(0.05)
    return dialog


def test_offline_install_then_the_plugin_finds_it(tmp_path, package):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    build_wheel(wheels, "torch", "2.13.0", "__version__ = '2.13.0'\nSTAND_IN = True\n")
    build_wheel(wheels, "safetensors", "0.0.1", "")
    profile = tmp_path / "profile"
    dialog = run_dialog(package, profile, wheels)
    target = profile / "raster_super_resolution_deps" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    log = dialog.log_view.toPlainText()
    assert dialog.status_label.text() == f"PyTorch 2.13.0 is installed in {target}. Restart QGIS to use it.", log
    assert "Successfully installed safetensors-0.0.1 torch-2.13.0" in log
    # pip ran as QGIS's Python (not QGIS's executable), with QGIS's numpy pinned
    command = log.splitlines()[0].split()
    assert command[1:4] == ["-m", "pip", "install"] and "python" in command[0].rsplit("/", 1)[-1]
    constraints = command[command.index("--constraint") + 1]
    assert open(constraints).read().startswith("numpy==")
    assert (target / "torch" / "__init__.py").is_file()
    # the plugin's discovery puts the folder first: a fresh Python imports the stand-in torch
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); from plugin.torch_env import add_deps_dir; "
             "add_deps_dir(sys.argv[2]); import torch; print(torch.__file__, torch.STAND_IN)")
    out = subprocess.run([sys.executable, "-c", probe, str(ROOT), str(profile)], capture_output=True, text=True)
    assert out.stdout.strip() == f"{target / 'torch' / '__init__.py'} True", out.stderr


def test_a_failed_install_says_why_in_one_line(tmp_path, package):
    empty = tmp_path / "no-wheels"
    empty.mkdir()
    dialog = run_dialog(package, tmp_path / "profile", empty)
    status = dialog.status_label.text()
    assert status.startswith("Not installed. pip failed (exit 1): ERROR: Could not find a version that "
                             "satisfies the requirement torch"), status
    assert "\n" not in status and dialog.install_button.isEnabled() and not dialog.installed_version
