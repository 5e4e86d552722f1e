"""Two runs at once (as QGIS may start them) share no mutable model state."""
import dataclasses
import threading

import numpy as np

from backend.job import SuperResolveJob, run_job
from helpers import AERIAL, LANDSAT, read


def test_two_jobs_in_threads_match_sequential(tmp_path):
    jobs = [SuperResolveJob(str(LANDSAT), str(tmp_path / "a.tif"), "dganet", 4, 1, tile_size=64),
            SuperResolveJob(str(AERIAL), str(tmp_path / "b.tif"), "dganet", 4, 0, tile_size=64)]
    errors = []

    def work(job):
        try:
            run_job(job)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(j,)) for j in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for job, name in zip(jobs, ("a_ref.tif", "b_ref.tif")):
        ref = tmp_path / name
        run_job(dataclasses.replace(job, output_path=str(ref)))   # same job, alone
        np.testing.assert_array_equal(read(job.output_path), read(ref))
