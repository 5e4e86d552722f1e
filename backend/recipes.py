"""The recipes of the shipped weights; ``make train`` replays them.

Each recipe names its model, scale, band flavour, training data, loss and
budget. The weights file records the recipe it was trained with.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Tuple


@dataclass(frozen=True)
class Recipe:
    """How one weights file is trained."""

    model: str
    scale: int
    bands: int                      # 3: RGB flavour, 1: band-by-band flavour
    domains: Tuple[str, ...]        # packed-data domains to draw patches from
    steps: int
    batch: int = 16
    patch: int = 128                # HR patch side
    lr: float = 1e-4                # Adam, seed 000 section 2.2
    schedule: str = "constant"      # or "cosine"
    loss: str = "gradient_aware"
    seed: int = 0
    max_minutes: float = 0.0        # 0: no wall-clock cap

    @property
    def name(self) -> str:
        """File stem of the weights, e.g. ``dganet_x4_rgb``."""
        return f"{self.model}_x{self.scale}_{'rgb' if self.bands == 3 else '1band'}"

    def to_dict(self) -> dict:
        """Plain dict for metadata."""
        d = asdict(self)
        d["domains"] = list(self.domains)
        return d


#: The shipped files, in training priority order (most important first).
RECIPES: Tuple[Recipe, ...] = (
    Recipe("dganet", 4, 3, ("aerial",), steps=2000, max_minutes=32),
    Recipe("dganet", 4, 1, ("landsat", "aerial", "multiband"), steps=1700, max_minutes=28),
    Recipe("dganet", 2, 3, ("aerial",), steps=500, patch=96, max_minutes=14),
    Recipe("dganet", 2, 1, ("landsat", "aerial", "multiband"), steps=500, patch=96, max_minutes=14),
    Recipe("dganet", 8, 3, ("aerial",), steps=900, max_minutes=12),
    Recipe("dganet", 8, 1, ("landsat", "aerial", "multiband"), steps=900, max_minutes=12),
)


def find_recipe(model: str, scale: int, bands: int) -> Recipe:
    """The recipe for one weights file."""
    for r in RECIPES:
        if (r.model, r.scale, r.bands) == (model, scale, bands):
            return r
    raise KeyError(f"no recipe for {model} x{scale} {bands}-band")
