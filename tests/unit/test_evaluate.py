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
    assert "| bicubic | 5 |" in format_table(rows)


def test_pair_must_match_the_scale():
    with pytest.raises(SuperResError, match="exactly 4 times"):
        evaluate_file(str(LANDSAT), 4, ["bicubic"], [0], bands=[1], lr_path=str(PAIR_LR))


def test_degraded_mode_on_aerial():
    rows = evaluate_file(str(AERIAL), 4, ["bicubic", "dganet"], [0])
    assert all(np.isfinite([r.psnr, r.ssim, r.sam, r.ergas]).all() for r in rows)
    assert rows[0].sam > 0 and 0 < rows[1].ssim < 1
