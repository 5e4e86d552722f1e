"""Without torch the plugin and provider load, the algorithm is listed, baselines run."""
import subprocess
import sys

from helpers import LANDSAT

SCRIPT = r"""
import sys, os, tempfile, pathlib
sys.modules['torch'] = None
root = pathlib.Path(sys.argv[1]); links = pathlib.Path(tempfile.mkdtemp())
(links / 'raster_super_resolution').symlink_to(root, target_is_directory=True)
sys.path.insert(0, str(links))
from qgis.core import QgsApplication
app = QgsApplication([], False); app.initQgis()
sys.path.insert(0, '/usr/share/qgis/python/plugins')
import processing
from processing.core.Processing import Processing
Processing.initialize()
import raster_super_resolution as pkg
plugin = pkg.classFactory(None); plugin.initProcessing()
assert QgsApplication.processingRegistry().algorithmById('superres:superresolve') is not None
out = sys.argv[3]
processing.run('superres:superresolve', {'INPUT': sys.argv[2], 'MODEL': 'bicubic', 'SCALE': '2',
               'ISE_ITERATIONS': 0, 'OUTPUT': out})
print('BASELINE_OK', os.path.exists(out))
from qgis.core import QgsProcessingException
for model, ise in (('dganet', 0), ('bicubic', 2)):
    try:
        processing.run('superres:superresolve', {'INPUT': sys.argv[2], 'MODEL': model, 'SCALE': '4',
                       'ISE_ITERATIONS': ise, 'OUTPUT': out + model + '.tif'})
    except QgsProcessingException as exc:
        print('REFUSED', model, ise, str(exc).replace('\n', ' '))
"""


def test_plugin_without_torch(tmp_path):
    from helpers import ROOT
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(ROOT), str(LANDSAT), str(tmp_path / "o.tif")],
                          capture_output=True, text=True, timeout=300,
                          env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin", "GDAL_PAM_ENABLED": "NO"})
    assert "BASELINE_OK True" in proc.stdout, proc.stdout + proc.stderr
    refused = [line for line in proc.stdout.splitlines() if line.startswith("REFUSED")]
    assert len(refused) == 2
    for r in refused:
        # inside QGIS the fix is the plugin's installer, or pip into the folder the plugin reads
        assert "needs PyTorch" in r and "Raster > Raster Super-Resolution > Install PyTorch…" in r
        assert "-m pip install --target " in r and "/raster_super_resolution_deps/python3." in r
        assert "make" not in r
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.tif"]
