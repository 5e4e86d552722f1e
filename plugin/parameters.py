"""What the "Super-resolve layer…" dialog hands on: one run's parameters."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Tuple


@dataclass
class SuperResolveParameters:
    """One run of `superres:superresolve`, as the dialog's widgets set it.

    Attributes:
        layer_id: the input layer's id in the project.
        model: a model name from the curated list.
        scale: 2, 4 or 8.
        ise_iterations: ISE iterations (0 disables).
        output: the GeoTIFF to write (never empty: the dialog refuses that).
        extent: (xmin, ymin, xmax, ymax) in ``extent_crs``, or None for the whole layer.
        extent_crs: the extent's CRS as an auth id (e.g. ``EPSG:32617``).
        bands: 1-based input bands, or empty for all.
        device: ``auto``, ``cpu`` or ``cuda``.
        nodata: the input's nodata: ``declared`` (the layer's own), ``none``,
            or values such as ``0,0,0`` (the algorithm's ``NODATA``).
    """

    layer_id: str
    model: str
    scale: int
    ise_iterations: int
    output: str
    extent: Optional[Tuple[float, float, float, float]] = None
    extent_crs: str = ""
    bands: List[int] = field(default_factory=list)
    device: str = "auto"
    nodata: str = "declared"

    def processing_parameters(self) -> dict:
        """The algorithm's parameters (static-string enums passed as their values)."""
        params = {"INPUT": self.layer_id, "MODEL": self.model, "SCALE": str(self.scale),
                  "ISE_ITERATIONS": self.ise_iterations, "DEVICE": self.device, "OUTPUT": self.output}
        if self.extent is not None:
            xmin, ymin, xmax, ymax = self.extent
            params["EXTENT"] = f"{xmin!r},{xmax!r},{ymin!r},{ymax!r}" + (f" [{self.extent_crs}]" if self.extent_crs else "")
        if self.bands:
            params["BANDS"] = list(self.bands)
        if self.nodata != "declared":
            params["NODATA"] = self.nodata
        return params
