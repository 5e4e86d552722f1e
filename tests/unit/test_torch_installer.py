"""The PyTorch installer's choices: which build, which interpreter, which pip arguments, and what pip does with them."""
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from plugin import torch_env
from plugin import torch_installer as ti


def test_linux_offers_the_cpu_build_first_and_pypi_cuda_second():
    cpu, cuda = ti.variants("linux")
    assert cpu.key == "cpu" and cpu.requirements[0] == f"torch=={ti.TORCH_VERSION}+cpu"
    assert cpu.index_args[:2] == ("--index-url", "https://download.pytorch.org/whl/cpu")
    assert "MB" in cpu.size and "GB" in cuda.size
    assert cuda.key == "pypi" and cuda.requirements[0] == f"torch=={ti.TORCH_VERSION}" and not cuda.index_args
    assert [v.key for v in ti.variants("darwin")] == ["cpu"] and not ti.variants("darwin")[0].index_args


@pytest.mark.parametrize("driver,expected", [(False, "cpu"), (True, "pypi")])
def test_cpu_is_the_default_without_an_nvidia_driver(monkeypatch, driver, expected):
    monkeypatch.setattr(ti, "has_nvidia_driver", lambda: driver)
    assert ti.default_variant("linux") == expected
    assert ti.default_variant("win32") == "cpu"


def test_pip_arguments_are_a_list_with_target_and_numpy_pinned(tmp_path):
    constraints = ti.numpy_constraint(tmp_path)
    assert constraints.read_text() == f"numpy=={np.__version__}\n"
    args = ti.pip_arguments(tmp_path / "site", ti.variants("linux")[0], constraints)
    assert args[:4] == ["install", "--target", str(tmp_path / "site"), "--upgrade"]
    assert args[args.index("--constraint") + 1] == str(constraints)
    assert args[-2:] == [f"torch=={ti.TORCH_VERSION}+cpu", "safetensors"]
    offline = ti.pip_arguments(tmp_path, ti.folder_variant("/w"), None)
    assert offline[-6:] == ["--isolated", "--no-index", "--find-links", "/w", "torch", "safetensors"]
    # pip reads the system-wide config even --isolated; only this makes the folder the one source
    assert ("PIP_CONFIG_FILE", os.devnull) in ti.folder_variant("/w").env


def test_the_interpreter_is_found_when_sys_executable_is_qgis(monkeypatch):
    monkeypatch.setattr(sys, "executable", "/usr/bin/qgis")
    python = ti.find_python()
    assert Path(python).name.startswith("python")
    assert ti.python_version(python) == sys.version_info[:2]


def test_a_version_mismatch_is_refused_naming_what_was_tried():
    with pytest.raises(ti.InstallError, match=r"No Python 3\.2 interpreter found.*tried: .*python.*\(3\.\d+\)"):
        ti.find_python((3, 2))
    with pytest.raises(ti.InstallError, match=r"tried: /nonexistent/python \(does not run\)"):
        ti.find_python(sys.version_info[:2], [Path("/nonexistent/python")])


def test_the_package_folder_goes_first_on_sys_path_with_its_pth_entries(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))
    assert torch_env.add_deps_dir(tmp_path) is None          # no folder yet: nothing added
    elsewhere = tmp_path / "venv-site"
    elsewhere.mkdir()
    link = torch_env.link_site_packages(tmp_path, elsewhere)
    assert link.parent == tmp_path / "raster_super_resolution_deps" / torch_env.python_tag()
    folder = torch_env.add_deps_dir(tmp_path)
    assert sys.path[:2] == [str(folder), str(elsewhere)]
    torch_env.add_deps_dir(tmp_path)
    assert sys.path.count(str(folder)) == 1 and sys.path.count(str(elsewhere)) == 1


def test_pip_errors_come_down_to_one_line():
    log = "Looking in links: /w\nERROR: Could not find a version that satisfies the requirement torch\n" \
          "ERROR: No matching distribution found for torch\n"
    assert ti.last_error(log) == "ERROR: Could not find a version that satisfies the requirement torch"
    assert ti.last_error("Killed\n") == "Killed"


def _wheel(folder, name, version, requires=()):
    """A minimal pure-Python wheel of package ``name`` (an empty ``__init__.py``) requiring ``requires``."""
    import base64
    import hashlib
    import zipfile
    info = f"{name}-{version}.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(
        f"Requires-Dist: {r}\n" for r in requires)
    files = {f"{name}/__init__.py": b"", f"{info}/METADATA": meta.encode(),
             f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = "".join(f"{p},sha256={base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b'=').decode()},"
                     f"{len(d)}\n" for p, d in files.items())
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    with zipfile.ZipFile(folder / f"{name}-{version}-py3-none-any.whl", "w") as z:
        for arc, data in files.items():
            z.writestr(arc, data)


def test_pip_installs_into_the_profiles_folder_with_qgiss_own_numpy(tmp_path):
    """The dialog's pip command, run offline by real pip: into the profile's package folder, numpy pinned.

    The command is composed as ``ui/torch_install_dialog.py`` composes it
    (``deps_dir``, ``numpy_constraint`` beside it, ``pip_arguments``). The
    stand-in torch requires numpy and the folder offers QGIS's version and a
    newer one: unpinned, pip would take the newer, a second numpy.
    """
    import subprocess
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _wheel(wheels, "torch", ti.TORCH_VERSION, ["numpy"])
    _wheel(wheels, "safetensors", "0.0.1")
    for version in (np.__version__, "99.0"):
        _wheel(wheels, "numpy", version)
    profile = tmp_path / "profile"
    target = torch_env.deps_dir(profile)
    assert target == profile / "raster_super_resolution_deps" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    constraints = ti.numpy_constraint(target.parent)
    assert constraints.parent == profile / "raster_super_resolution_deps"
    assert constraints.read_text() == f"numpy=={np.__version__}\n"
    variant = ti.folder_variant(str(wheels))
    args = ti.pip_arguments(target, variant, constraints)
    assert args[args.index("--target") + 1] == str(target)
    assert args[args.index("--constraint") + 1] == str(constraints)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(variant.env)
    out = subprocess.run([sys.executable, "-m", "pip"] + args, capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    installed = {p.name for p in target.glob("*.dist-info")}
    # torch and safetensors, and no numpy but QGIS's own version (unpinned: numpy-99.0)
    assert installed - {f"numpy-{np.__version__}.dist-info"} == \
        {f"torch-{ti.TORCH_VERSION}.dist-info", "safetensors-0.0.1.dist-info"}, installed
    assert (target / "torch" / "__init__.py").is_file()
