"""`qgis_process run superres:superresolve` in a subprocess, with the plugin in a temporary profile.

`make install` into a fresh default profile, then qgis_process running dganet
with no PYTHONPATH, is tests/qgis/test_readme.py (the README's own commands).
"""
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
from osgeo import gdal

from helpers import LANDSAT, ROOT, read

sys.path.insert(0, str(ROOT / "tools"))
from qgis_profile import run_qgis_process, temporary_config  # noqa: E402


def test_qgis_process_run(tmp_path):
    cfg = temporary_config(tmp_path / "cfg")
    out = tmp_path / "qp.tif"
    proc = run_qgis_process(cfg, ["run", "superres:superresolve", "--", f"INPUT={LANDSAT}",
                                  "MODEL=dganet", "SCALE=2", "ISE_ITERATIONS=2", "TILE_SIZE=128", f"OUTPUT={out}"],
                            timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Tiles: 1 of up to 128 px" in proc.stdout
    assert f"Device: {'cuda' if torch.cuda.is_available() else 'cpu'}" in proc.stdout
    ds = gdal.Open(str(out))
    assert (ds.RasterXSize, ds.RasterYSize) == (256, 256)
    # the same pixels as the backend library gives
    sys.path.insert(0, str(ROOT))
    from backend.job import SuperResolveJob, run_job
    ref = tmp_path / "ref.tif"
    run_job(SuperResolveJob(str(LANDSAT), str(ref), "dganet", 2, 2, tile_size=128))
    np.testing.assert_array_equal(read(out), read(ref))


def test_qgis_process_bad_parameter_is_clear(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: DEVICE=cuda would run")
    cfg = temporary_config(tmp_path / "cfg")
    proc = run_qgis_process(cfg, ["run", "superres:superresolve", "--", f"INPUT={LANDSAT}",
                                  "MODEL=bicubic", "SCALE=2", "DEVICE=cuda",
                                  f"OUTPUT={tmp_path / 'o.tif'}"], timeout=300)
    assert proc.returncode != 0
    assert "no CUDA GPU" in proc.stdout + proc.stderr
    assert not (tmp_path / "o.tif").exists()


def test_plugin_zip_installs_into_a_clean_profile_and_runs_dganet(tmp_path):
    from helpers import AERIAL
    from qgis_profile import PLUGIN_NAME, enable, link_site_packages, torch_site_packages
    package = tmp_path / "plugin.zip"
    # a draft: everything but the publisher's keys, which only an upload needs
    built = subprocess.run([sys.executable, str(ROOT / "tools" / "package.py"), "--draft", "--out",
                            str(package)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    # what "Install from ZIP" does: unpack into the profile's plugins folder and enable it;
    # torch comes from the plugin's own package folder, as the installer or make install leave it
    cfg = tmp_path / "cfg"
    profile = cfg / "profiles" / "default"
    zipfile.ZipFile(package).extractall(profile / "python" / "plugins")
    enable(profile)
    if torch_site_packages() is not None:   # None: torch is in the system Python QGIS runs
        link_site_packages(profile, torch_site_packages())
    out = tmp_path / "zip.tif"
    proc = run_qgis_process(cfg, ["run", "superres:superresolve", "--", f"INPUT={AERIAL}", "MODEL=dganet",
                                  "SCALE=4", "ISE_ITERATIONS=0", "PRECISION=fp32", f"OUTPUT={out}"],
                            timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Model dganet x4 (dganet_x4_aerial.safetensors, one RGB pass)" in proc.stdout
    assert (profile / "python" / "plugins" / PLUGIN_NAME / "LICENSE").is_file()
    # float16-stored weights: within a grey level of the repository's float32 weights
    sys.path.insert(0, str(ROOT))
    from backend.job import SuperResolveJob, run_job
    ref = tmp_path / "ref.tif"
    run_job(SuperResolveJob(str(AERIAL), str(ref), "dganet", 4, 0, precision="fp32"))  # weights alone
    diff = np.abs(read(out).astype(int) - read(ref).astype(int))
    assert read(out).shape == (3, 512, 512) and diff.max() <= 1, (diff.max(), diff.mean())
    assert 0 < (diff > 0).mean() < 0.02   # really the converted weights (0.5 % of pixels move by 1)
