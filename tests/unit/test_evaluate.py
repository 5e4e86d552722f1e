"""Evaluation on a degraded HR raster and on a real LR/HR pair (Landsat B2_60m -> B2)."""
import numpy as np
import pytest

from backend.errors import SuperResError
from backend.evaluate import evaluate_file, format_table, write_csv
from helpers import AERIAL, DATA, LANDSAT, read

PAIR_LR = DATA / "landsat_b2_60m_64.tif"   # the package authors' 60 m B2, same corner as LANDSAT


def test_b2_60m_is_close_to_a_2x2_box_mean_of_b2():
    hr = read(LANDSAT)[0].astype(float)
    lr = read(PAIR_LR)[0].astype(float)
    box = hr.reshape(64, 2, 64, 2).mean(axis=(1, 3))
    assert np.abs(lr - box).mean() < 10 < np.abs(lr - hr[::2, ::2]).mean()


def test_real_pair_mode(tmp_path):
    rows = evaluate_file(str(LANDSAT), 2, ["bicubic", "nearest"], [0, 5], bands=[1], lr_path=str(PAIR_LR))
    by = {(r.model, r.ise): r for r in rows}
    assert 20 < by["bicubic", 0].psnr < 45
    assert by["bicubic", 0].psnr > by["nearest", 0].psnr
    assert by["bicubic", 5].lr_consistency < 0.2 * by["bicubic", 0].lr_consistency
    write_csv(rows, tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_text().count("\n") == 5
    assert "| bicubic | - | 5 |" in format_table(rows)


def test_pair_must_match_the_scale():
    with pytest.raises(SuperResError, match="exactly 4 times"):
        evaluate_file(str(LANDSAT), 4, ["bicubic"], [0], bands=[1], lr_path=str(PAIR_LR))


def _reference_metrics(hr, sr, s):
    """PSNR and SSIM per band by scikit-image, MSE, SAM and ERGAS written out, s pixels shaved."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity
    a = hr[:, s:-s, s:-s].astype(np.float64)
    b = sr[:, s:-s, s:-s].astype(np.float64)
    ranges = [255.0 if hr.dtype == np.uint8 else float(np.ptp(hr[c])) for c in range(hr.shape[0])]
    cos = (a * b).sum(0) / np.sqrt((a * a).sum(0) * (b * b).sum(0))
    return dict(
        psnr_bands=[peak_signal_noise_ratio(a[c], b[c], data_range=r) for c, r in enumerate(ranges)],
        ssim_bands=[structural_similarity(b[c], a[c], data_range=r, gaussian_weights=True, sigma=1.5,
                                          use_sample_covariance=False) for c, r in enumerate(ranges)],
        mse=float(((a - b) ** 2).mean()),   # equal band sizes: the mean of the per-band MSEs
        sam=float(np.degrees(np.arccos(np.clip(cos, -1, 1))).mean()),
        ergas=100 / s * float(np.sqrt(np.mean([((a[c] - b[c]) ** 2).mean() / a[c].mean() ** 2
                                                for c in range(a.shape[0])]))))


def _check_row(row, ref):
    assert row.psnr_bands == pytest.approx(ref["psnr_bands"], abs=1e-9)
    assert row.ssim_bands == pytest.approx(ref["ssim_bands"], abs=1e-6)
    assert row.psnr == pytest.approx(np.mean(ref["psnr_bands"]), abs=1e-9)
    assert row.ssim == pytest.approx(np.mean(ref["ssim_bands"]), abs=1e-6)
    assert row.mse == pytest.approx(ref["mse"], rel=1e-9)
    assert row.sam == pytest.approx(ref["sam"], abs=1e-6)
    assert row.ergas == pytest.approx(ref["ergas"], rel=1e-6)


def test_degraded_mode_on_aerial(tmp_path):
    """Each row's numbers, recomputed from the SR raster it wrote with scikit-image and by hand."""
    rows = evaluate_file(str(AERIAL), 4, ["bicubic", "dganet"], [0], sr_folder=str(tmp_path))
    hr = read(AERIAL)
    for row in rows:
        sr = read(tmp_path / f"{row.model}_ise0_x4.tif")
        ref = _reference_metrics(hr, sr, 4)
        _check_row(row, ref)
        assert 15 < row.psnr < 40 and 0.2 < row.ssim < 0.99 and row.sam > 0   # a real, imperfect result
    assert rows[1].weights == "aerial" and rows[1].psnr > rows[0].psnr        # the network beats bicubic


def test_gdalwarp_cubic_row_is_gdalwarp_itself(tmp_path):
    """The report's `gdalwarp -r cubic` row equals the gdalwarp program's output."""
    import subprocess
    import torch
    from osgeo import gdal
    from backend.evaluate import gdalwarp_cubic
    from backend.resample import degrade
    hr = read(LANDSAT)[:1]
    lr = degrade(torch.from_numpy(hr.astype(np.float64))[None], 4, hr.dtype)[0].numpy().astype(hr.dtype)
    drv = gdal.GetDriverByName("GTiff")
    ds = drv.Create(str(tmp_path / "lr.tif"), 32, 32, 1, gdal.GDT_UInt16)
    ds.SetGeoTransform((500000.0, 120.0, 0.0, 7000000.0, 0.0, -120.0))
    ds.GetRasterBand(1).WriteArray(lr[0])
    ds = None
    subprocess.run(["gdalwarp", "-q", "-r", "cubic", "-ts", "128", "128", str(tmp_path / "lr.tif"),
                    str(tmp_path / "up.tif")], check=True)
    assert np.array_equal(gdalwarp_cubic(lr, 4), read(tmp_path / "up.tif"))
    rows = evaluate_file(str(LANDSAT), 4, ["bicubic", "gdalwarp-cubic"], [0, 5], bands=[1])
    assert [(r.model, r.ise) for r in rows] == [("bicubic", 0), ("bicubic", 5), ("gdalwarp-cubic", 0)]
    assert abs(rows[2].psnr - rows[0].psnr) < 1.0 and rows[2].grad_error > 0


def test_mse_and_per_band_metrics(tmp_path):
    """UInt16: R is each HR band's own range; the per-band numbers match scikit-image's."""
    rows = evaluate_file(str(LANDSAT), 2, ["bicubic"], [0], sr_folder=str(tmp_path))
    hr, sr = read(LANDSAT), read(tmp_path / "bicubic_ise0_x2.tif")
    assert len(rows[0].psnr_bands) == len(rows[0].ssim_bands) == 3
    ref = _reference_metrics(hr, sr, 2)
    _check_row(rows[0], ref)
    assert len(set(np.round(ref["psnr_bands"], 3))) == 3   # the bands really differ


def test_network_costs_count_flops_as_seed_001_table_2():
    from backend.evaluate import network_costs
    c = network_costs("dganet", 4, lr_side=16, repeats=1)
    # per LR pixel: head, 5 ResBlocks, body conv, first UpBlock conv; per 2x pixel: second
    # UpBlock conv; per HR pixel: tail. 2 FLOPs per multiply-add; the bilinear residual is free.
    macs_per_hr_px = 9 * (3 * 64 + 10 * 64 * 64 + 64 * 64 + 64 * 256) / 16 + 9 * 64 * 256 / 4 + 9 * 64 * 3
    assert c["gflops_per_mp"] == pytest.approx(2 * macs_per_hr_px / 1e3, rel=1e-9)
    assert c["params"] == 705_155 and c["cpu_s_per_mp"] > 0
    # attention (DEGAN's Transformer) is counted from the shapes: Q K^T and the weighted sum
    from backend.evaluate import _sdpa_flops
    assert _sdpa_flops((2, 4, 100, 16), (2, 4, 80, 16)) == 4 * 2 * 4 * 100 * 80 * 16
