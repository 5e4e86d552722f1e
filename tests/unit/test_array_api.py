"""``super_resolve_array`` gives a file run's pixels with the same settings; 2-D in, 2-D out."""
import numpy as np

from backend.job import SuperResolveJob, run_job, super_resolve_array
from helpers import AERIAL, LANDSAT, read


def test_rgb_array_with_nodata_equals_the_file_run(tmp_path):
    """A 3-band array is taken as R, G, B and ``nodata`` is applied, as the file's bands say."""
    out = tmp_path / "o.tif"
    run_job(SuperResolveJob(str(AERIAL), str(out), "dganet", 4, 5))
    img = read(AERIAL)
    assert (img == 255).any()                          # the crop declares and has nodata 255
    np.testing.assert_array_equal(super_resolve_array(img, 4, "dganet", 5, nodata=255), read(out))
    # without the nodata the pixels differ: the argument is really used
    assert not np.array_equal(super_resolve_array(img, 4, "dganet", 5), read(out))


def test_two_d_in_two_d_out_equals_a_one_band_file_run(tmp_path):
    out = tmp_path / "b2.tif"
    run_job(SuperResolveJob(str(LANDSAT), str(out), "dganet", 2, 2, bands=[2]))
    band = read(LANDSAT)[1]
    sr = super_resolve_array(band, 2, "dganet", 2)
    assert sr.shape == (256, 256) and sr.dtype == np.uint16
    np.testing.assert_array_equal(sr, read(out)[0])
    # a preallocated 2-D output is filled in place
    dest = np.zeros((256, 256), np.uint16)
    super_resolve_array(band, 2, "dganet", 2, out=dest)
    np.testing.assert_array_equal(dest, sr)
