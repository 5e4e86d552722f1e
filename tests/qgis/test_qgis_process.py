"""`qgis_process run superres:superresolve` in a subprocess, with the plugin in a temporary profile."""
import sys

import numpy as np
import pytest
from osgeo import gdal

from helpers import LANDSAT, ROOT, read

sys.path.insert(0, str(ROOT / "tools"))
from qgis_profile import run_qgis_process, temporary_config  # noqa: E402


def test_qgis_process_run(tmp_path):
    cfg = temporary_config(tmp_path / "cfg")
    out = tmp_path / "qp.tif"
    proc = run_qgis_process(cfg, ["run", "superres:superresolve", "--", f"INPUT={LANDSAT}",
                                  "MODEL=dganet", "SCALE=4", "ISE_ITERATIONS=2", f"OUTPUT={out}"],
                            timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Tiles: 1 of up to 256 px" in proc.stdout and "Device: cpu" in proc.stdout
    ds = gdal.Open(str(out))
    assert (ds.RasterXSize, ds.RasterYSize) == (512, 512)
    # the same pixels as the backend library gives
    sys.path.insert(0, str(ROOT))
    from backend.job import SuperResolveJob, run_job
    ref = tmp_path / "ref.tif"
    run_job(SuperResolveJob(str(LANDSAT), str(ref), "dganet", 4, 2))
    np.testing.assert_array_equal(read(out), read(ref))


def test_qgis_process_bad_parameter_is_clear(tmp_path):
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: DEVICE=cuda would run")
    cfg = temporary_config(tmp_path / "cfg")
    proc = run_qgis_process(cfg, ["run", "superres:superresolve", "--", f"INPUT={LANDSAT}",
                                  "MODEL=bicubic", "SCALE=2", "DEVICE=cuda",
                                  f"OUTPUT={tmp_path / 'o.tif'}"], timeout=300)
    assert proc.returncode != 0
    assert "no CUDA GPU" in proc.stdout + proc.stderr
    assert not (tmp_path / "o.tif").exists()
