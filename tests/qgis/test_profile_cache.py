"""Inside QGIS, what ``auto`` precision measured is kept in the profile's folder."""
import importlib
from pathlib import Path

from qgis.core import QgsApplication

PLUGIN = importlib.import_module("raster_super_resolution.plugin.plugin")


def test_the_measurement_cache_lives_in_the_profile(monkeypatch, tmp_path):
    monkeypatch.delenv(PLUGIN.CACHE_ENV, raising=False)
    folder = Path(PLUGIN.use_profile_cache())
    assert Path(QgsApplication.qgisSettingsDirPath()).resolve() in folder.resolve().parents
    from raster_super_resolution.backend import calibrate
    assert calibrate.cache_dir() == folder
    monkeypatch.setenv(PLUGIN.CACHE_ENV, str(tmp_path))       # the user's own setting wins
    assert PLUGIN.use_profile_cache() == str(tmp_path)
