"""`superres:evaluate` through processing.run: its table holds real numbers."""
import csv

import processing
from osgeo import gdal

from helpers import AERIAL


def test_evaluate_algorithm(tmp_path):
    res = processing.run("superres:evaluate", {
        "INPUT": str(AERIAL), "SCALE": "4", "MODELS": ["bicubic", "dganet", "gdalwarp-cubic"], "ISE_ITERATIONS": "0,2",
        "OUTPUT_HTML": str(tmp_path / "r.html"), "OUTPUT_CSV": str(tmp_path / "r.csv"),
        "OUTPUT_FOLDER": str(tmp_path / "sr")})
    rows = list(csv.DictReader(open(res["OUTPUT_CSV"])))
    assert [(r["model"], r["ise"]) for r in rows] == [("bicubic", "0"), ("bicubic", "2"),
                                                      ("dganet", "0"), ("dganet", "2"), ("gdalwarp-cubic", "0")]
    assert [r["weights"] for r in rows] == ["", "", "aerial", "aerial", ""]   # auto: 10 cm Byte
    for r in rows:
        assert 10 < float(r["psnr_db"]) < 50 and 0 < float(r["ssim"]) < 1 and float(r["sam_deg"]) > 0
    # ISE brings the result closer to the LR input
    assert float(rows[1]["lr_consistency_pct"]) < float(rows[0]["lr_consistency_pct"])
    assert "PSNR" in (tmp_path / "r.html").read_text()
    ds = gdal.Open(str(tmp_path / "sr" / "dganet_ise2_x4.tif"))
    assert (ds.RasterXSize, ds.RasterYSize) == (128, 128)
    assert ds.GetGeoTransform() == gdal.Open(str(AERIAL)).GetGeoTransform()
