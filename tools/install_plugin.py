"""`make install`: copy the plugin into the default QGIS profile and enable it."""
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from qgis_profile import install  # noqa: E402

profile = Path(os.environ.get("QGIS_PROFILE_DIR",
                              Path.home() / ".local/share/QGIS/QGIS3/profiles/default"))
target = install(profile)
print(f"Installed and enabled the plugin in {target}. Restart QGIS to load it.")
