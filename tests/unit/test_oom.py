"""An out-of-memory error (simulated on the CPU) backs off to smaller tiles, same pixels."""
import numpy as np
import torch

from backend.engine import Engine
from backend.job import SuperResolveJob, run_job
from helpers import LANDSAT, read


def test_oom_backs_off_with_identical_output(tmp_path, monkeypatch):
    ref = tmp_path / "ref.tif"
    run_job(SuperResolveJob(str(LANDSAT), str(ref), "bicubic", 2, 3))
    real = Engine.infer_batch
    sizes = []

    def small_gpu(self, norm, valid=None, partial=None, is_cancelled=None):
        sizes.append(norm.shape[-1] * norm.shape[-2])
        if norm.shape[-1] * norm.shape[-2] > 70 * 70:   # pretend a "GPU" too small for big tiles
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(self, norm, valid, partial, is_cancelled)

    monkeypatch.setattr(Engine, "infer_batch", small_gpu)
    out, log = tmp_path / "oom.tif", []
    run_job(SuperResolveJob(str(LANDSAT), str(out), "bicubic", 2, 3), log=log.append)
    np.testing.assert_array_equal(read(out), read(ref))
    assert any("Out of memory" in line for line in log)
    assert max(sizes) > 70 * 70 and min(sizes) <= 70 * 70
