"""Provenance tags written into every output GeoTIFF.

They say the raster was super-resolved, by which model, weights (and their
hash), scale and ISE, by which plugin version and when, so a result found
later is not mistaken for a measurement. QGIS shows them in the layer's
properties (Information); ``gdalinfo`` lists them.
"""
from __future__ import annotations

import configparser
import os
import time
from pathlib import Path
from typing import Dict, Optional

ROOT = Path(__file__).resolve().parent.parent

NOTE_NETWORK = ("Detail finer than the input's pixels was synthesised by a neural network: it is an "
                "estimate, not a measurement.")
NOTE_INTERPOLATION = ("Resampled by interpolation: no detail was added beyond the input's; the finer "
                      "pixels are a smooth estimate.")


def plugin_version() -> str:
    """The plugin version in metadata.txt ("?" when the file is missing)."""
    meta = configparser.ConfigParser()
    meta.read(ROOT / "metadata.txt", encoding="utf-8")
    return meta.get("general", "version", fallback="?")


def provenance_tags(*, model: str, network: bool, scale: int, ise_iterations: int, ise_kernel: str,
                    weight_set: str = "", weights_file: Optional[Path] = None,
                    weights_hash: str = "", self_ensemble: bool = False, source: str = "",
                    now: Optional[float] = None) -> Dict[str, str]:
    """The dataset metadata of one output (GDAL's default domain).

    ``weights_hash`` is the ``tensor_sha256`` the weights file records and
    the loader checks. TIFFTAG_SOFTWARE and TIFFTAG_DATETIME are the
    standard TIFF tags other programs read. The time is now, or
    SOURCE_DATE_EPOCH when set (reproducible outputs, as in reproducible builds).
    """
    if now is None:
        epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
        now = float(epoch) if epoch.strip().isdigit() else time.time()
    version = plugin_version()
    tags = {
        "SUPER_RESOLVED": "YES",
        "SR_NOTE": NOTE_NETWORK if network else NOTE_INTERPOLATION,
        "SR_MODEL": model,
        "SR_WEIGHTS": weight_set or "none",
        "SR_SCALE": str(scale),
        "SR_ISE_ITERATIONS": str(ise_iterations),
        "SR_ISE_KERNEL": ise_kernel,
        "SR_SELF_ENSEMBLE": "YES" if self_ensemble else "NO",
        "SR_PLUGIN_VERSION": version,
        "SR_TIMESTAMP": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "TIFFTAG_SOFTWARE": f"Raster Super-Resolution {version}",
        "TIFFTAG_DATETIME": time.strftime("%Y:%m:%d %H:%M:%S", time.gmtime(now)),
    }
    if weights_file is not None:
        tags["SR_WEIGHTS_FILE"] = Path(weights_file).name
        tags["SR_WEIGHTS_TENSOR_SHA256"] = weights_hash
    if source:
        tags["SR_SOURCE"] = source
    return tags
