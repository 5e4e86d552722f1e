"""The one list of models: what each supports, and where its weights live.

The Processing MODEL enum, the CLI choices and the README's model table are
all generated from ``MODELS``; nothing else lists models.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Tuple

from .errors import SuperResError

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "resources" / "weights"

#: Band layouts a network can be trained for: the 3-band RGB flavour is used
#: for natural-colour RGB, the 1-band flavour band by band for anything else.
FLAVOURS = {3: "rgb", 1: "1band"}


@dataclass(frozen=True)
class ModelSpec:
    """What one model is and supports.

    Attributes:
        name: static id used by Processing, the CLI and weights file names.
        title: label for dialogs.
        description: one line for help texts and docs.
        kind: ``"interpolation"`` (no weights, runs without torch) or ``"network"``.
        scales: scale factors the architecture can do.
        flavours: band counts weights exist for (networks only).
        resample_mode: interpolation mode (interpolation models only).
        build: ``build(bands, scale) -> torch.nn.Module`` (networks only).
        reference: the paper section it follows.
    """

    name: str
    title: str
    description: str
    kind: str
    scales: Tuple[int, ...] = (2, 4, 8)
    flavours: Tuple[int, ...] = ()
    resample_mode: Optional[str] = None
    build: Optional[Callable] = field(default=None, compare=False, repr=False)
    reference: str = ""

    @property
    def needs_torch(self) -> bool:
        """Networks need PyTorch; interpolation baselines do not."""
        return self.kind == "network"

    def weights_path(self, scale: int, bands: int) -> Path:
        """Where the weights for ``scale`` and a ``bands`` flavour live."""
        return WEIGHTS_DIR / f"{self.name}_x{scale}_{FLAVOURS[bands]}.safetensors"

    def available_scales(self) -> Tuple[int, ...]:
        """Scales this model can run now: all for baselines, else those with weights."""
        if self.kind != "network":
            return self.scales
        return tuple(s for s in self.scales
                     if any(self.weights_path(s, b).is_file() for b in self.flavours))

    def available_flavours(self, scale: int) -> Tuple[int, ...]:
        """Band counts with weights on disk at ``scale``."""
        return tuple(b for b in self.flavours if self.weights_path(scale, b).is_file())


def _build_dganet(bands: int, scale: int):
    from .models.dganet import DGANet
    return DGANet(num_in_ch=bands, num_out_ch=bands, upscale=scale)


MODELS: Tuple[ModelSpec, ...] = (
    ModelSpec("dganet", "DGANet (gradient-aware network)",
              "EDSR-style residual network with pixel-shuffle up-blocks and a global bilinear "
              "residual, trained with L1 + 0.1 L1(Sobel)", "network",
              flavours=(3, 1), build=_build_dganet, reference="seed 000, section 2.2, Table 1"),
    ModelSpec("bicubic", "Bicubic interpolation", "Bicubic (a = -0.75) interpolation baseline",
              "interpolation", resample_mode="bicubic"),
    ModelSpec("bilinear", "Bilinear interpolation", "Bilinear interpolation baseline",
              "interpolation", resample_mode="bilinear"),
    ModelSpec("nearest", "Nearest neighbour", "Nearest-neighbour pixel replication baseline",
              "interpolation", resample_mode="nearest"),
)


def model_names() -> Tuple[str, ...]:
    """The static model ids, in registry order (also the Processing enum order)."""
    return tuple(m.name for m in MODELS)


def get_model(name: str) -> ModelSpec:
    """Return the spec called ``name`` or raise a clear error listing the choices."""
    for spec in MODELS:
        if spec.name == name:
            return spec
    raise SuperResError(f"Unknown model '{name}'. Choose one of: {', '.join(model_names())}.")


def check_scale(spec: ModelSpec, scale: int) -> None:
    """Fail at once when ``spec`` has no weights (or no support) for ``scale``."""
    available = spec.available_scales()
    if scale not in available:
        have = ", ".join(f"x{s}" for s in available) or "none"
        raise SuperResError(
            f"Model '{spec.name}' has no weights for x{scale}; it has: {have}. "
            f"Pick one of those scales, another model, or train x{scale} with "
            f"`make train MODEL={spec.name} SCALE={scale}`.")


def markdown_table() -> str:
    """The README's model table, generated from the registry."""
    rows = ["| MODEL | kind | scales | bands | follows |", "|---|---|---|---|---|"]
    for spec in MODELS:
        if spec.kind == "network":
            scales = ", ".join(f"x{s}" for s in spec.available_scales()) or "none yet"
            bands = " or ".join("3 (RGB)" if b == 3 else "1 (band by band)" for b in spec.flavours)
        else:
            scales = ", ".join(f"x{s}" for s in spec.scales)
            bands = "any (band by band)"
        rows.append(f"| `{spec.name}` | {spec.description} | {scales} | {bands} | "
                    f"{spec.reference or 'baseline'} |")
    return "\n".join(rows)
