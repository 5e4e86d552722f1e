"""`qgis_process run superres:superresolve` in a subprocess, with the plugin in a temporary profile."""
import sys

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
