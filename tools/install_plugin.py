"""`make install`: copy the plugin into a QGIS profile, enable it, and link the venv's PyTorch.

The profile is QGIS_PROFILE_DIR, by default the user's `default` profile. The
venv's site-packages (torch, safetensors) is linked into the profile's
plugin-owned package folder, where the plugin looks for torch at load, so
QGIS and qgis_process need no PYTHONPATH.
"""
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from qgis_profile import install, torch_site_packages  # noqa: E402
from plugin.torch_env import deps_dir  # noqa: E402  (qgis_profile put the source folder on sys.path)

profile = Path(os.environ.get("QGIS_PROFILE_DIR",
                              Path.home() / ".local/share/QGIS/QGIS3/profiles/default"))
torch_from = torch_site_packages()
target = install(profile, torch_from=torch_from)
print(f"Installed and enabled the plugin in {target}.")
if torch_from is not None:
    print(f"PyTorch: {deps_dir(profile)} points at {torch_from}; keep that folder.")
else:
    print("PyTorch: not found in this Python; in QGIS use Raster > Raster Super-Resolution > "
          "Install PyTorch…")
print("Restart QGIS to load it.")
