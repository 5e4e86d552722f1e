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



@dataclass(frozen=True)
class WeightSet:
    """A family of weights trained on one kind of imagery.

    Attributes:
        name: static id (``WEIGHTS`` parameter value, file-name part).
        title: label for dialogs and docs.
        bands: network flavour: 3 (natural-colour RGB in one pass) or 1 (band by band).
        pixel_size_m: ground pixel size of the training imagery, metres.
        dtype: GDAL data type of the training imagery.
        domains: packed-data domains (``backend/datasets.py``) it is trained on.
    """

    name: str
    title: str
    bands: int
    pixel_size_m: float
    dtype: str
    domains: Tuple[str, ...]


#: The per-domain weight sets. Auto selection picks the one whose pixel size
#: and data type are nearest the input's (``choose_weight_set``).
WEIGHT_SETS: Tuple[WeightSet, ...] = (
    WeightSet("aerial", "Aerial RGB, 10 cm, Byte (NEON)", 3, 0.1, "Byte", ("aerial",)),
    WeightSet("landsat", "Landsat 8 OLI, 30 m, UInt16, band by band", 1, 30.0, "UInt16", ("landsat",)),
    WeightSet("sentinel2", "Sentinel-2 MSI, 10 m, UInt16, band by band", 1, 10.0, "UInt16", ("sentinel2",)),
)


def get_weight_set(name: str) -> WeightSet:
    """The weight set called ``name`` or a clear error listing the choices."""
    for ws in WEIGHT_SETS:
        if ws.name == name:
            return ws
    raise SuperResError(f"Unknown weights '{name}'. Choose auto or one of: "
                        f"{', '.join(w.name for w in WEIGHT_SETS)}.")


@dataclass(frozen=True)
class ModelSpec:
    """What one model is and supports.

    Attributes:
        name: static id used by Processing, the CLI and weights file names.
        title: label for dialogs.
        description: one line for help texts and docs.
        kind: ``"interpolation"`` (no weights, runs without torch) or ``"network"``.
        scales: scale factors the architecture can do.
        sets: weight sets it can have (networks only).
        resample_mode: interpolation mode (interpolation models only).
        build: ``build(bands, scale) -> torch.nn.Module`` (networks only).
        reference: the paper section it follows.
        ablation: an ablation arm, kept for comparison: the repository and
            ``make install`` have its weights, the plugin zip does not. Left
            out of the analyst's list (``analyst_models``).
        summary: one plain-language line for analysts: what it is good for
            (``description`` when empty). What it was trained on is added
            from its weight sets (``plain_description``).
        fixed_tile: for networks whose output depends on the whole window
            they see (attention, global pooling: ``degan``), the side in LR
            pixels of every window the network must run on, margins
            included; it equals the LR side of its training patches. The
            engine pads windows at the raster's edges to this size, so the
            result depends neither on the raster's size nor on TILE_SIZE.
            None: any window.
        fixed_margin: with ``fixed_tile``, the LR pixels cut from each side
            of a window's output (its core is ``fixed_tile - 2 * fixed_margin``).
            Smaller than the convolutional radius, which would leave no core:
            such a network's tiles never equal a one-piece run anyway.
        tile_grid: windows must start on this LR grid (relative to each other)
            for tiles to equal a one-piece run (``gpsr``: 3, LRSAM's stride).
    """

    name: str
    title: str
    description: str
    kind: str
    scales: Tuple[int, ...] = (2, 4, 8)
    sets: Tuple[str, ...] = ()
    resample_mode: Optional[str] = None
    build: Optional[Callable] = field(default=None, compare=False, repr=False)
    reference: str = ""
    ablation: bool = False
    fixed_tile: Optional[int] = None
    fixed_margin: int = 0
    tile_grid: int = 1
    summary: str = ""

    @property
    def needs_torch(self) -> bool:
        """Networks need PyTorch; interpolation baselines do not."""
        return self.kind == "network"

    def weights_path(self, scale: int, weight_set: str) -> Path:
        """Where the weights for ``scale`` and ``weight_set`` live."""
        return WEIGHTS_DIR / f"{self.name}_x{scale}_{weight_set}.safetensors"

    def available_scales(self) -> Tuple[int, ...]:
        """Scales this model can run now: all for baselines, else those with weights."""
        if self.kind != "network":
            return self.scales
        return tuple(s for s in self.scales if self.available_sets(s))

    def available_sets(self, scale: int) -> Tuple[str, ...]:
        """Weight sets with a file on disk at ``scale``."""
        return tuple(w for w in self.sets if self.weights_path(scale, w).is_file())


def _build_dganet(bands: int, scale: int):
    from .models.dganet import DGANet
    return DGANet(num_in_ch=bands, num_out_ch=bands, upscale=scale)


#: ResBlocks of the larger variant: EDSR-baseline's depth (Lim et al. 2017).
LARGE_BLOCKS = 16


def _build_dganet_large(bands: int, scale: int):
    from .models.dganet import DGANet
    return DGANet(num_in_ch=bands, num_out_ch=bands, upscale=scale, num_block=LARGE_BLOCKS)


#: The DEGAN generator that ships: seed 001's widths divided by 4 (never
#: below its narrowest, 16), 4 residual blocks instead of 14, and a global
#: bicubic residual that the paper does not have. Without it (eq. 15: tanh's
#: output is the image) this network stayed a flat image on our CPU budget:
#: 11.4 dB on the validation patches after 45 steps of 16 (a mean image),
#: against 17.1 dB with the residual (bicubic 17.2 dB), in short runs of the
#: content loss (CPU, 2026-11-28). The paper's full generator is
#: ``DEGAN()``'s defaults (``backend/models/degan.py``).
DEGAN_SMALL = dict(num_feat=32, num_block=4, head_channels=(16, 16, 16), tail_channels=(16, 16, 16),
                   diff_base=16, time_hidden=64, ff_dim=256, global_residual=True)
#: The discriminator of a run with a GAN phase (`gan_start` > 0; SRGAN's 8 blocks; 16 channels
#: first, fc 256). The shipped aerial weights had none.
DEGAN_DISCRIMINATOR = dict(num_feat=16, num_block=8, fc_size=256)
#: DEGAN's training patch and fixed window: 128 HR px at x4 (32 LR px).
DEGAN_TILE = 32


def _build_degan(bands: int, scale: int):
    from .models.degan import DEGAN
    return DEGAN(num_in_ch=bands, num_out_ch=bands, upscale=scale, **DEGAN_SMALL)


#: The GPSR that ships: C = 16 up to 64 channels, 2 RS3AM-SR of 2 CRFS
#: levels per decoder. The paper's full network is ``GPSR()``'s defaults
#: (C = 28 up to 112, M = 4).
GPSR_SMALL = dict(num_feat=16, max_feat=64, num_rs3am=2, num_res=2)


def _build_gpsr(bands: int, scale: int):
    from .models.gpsr import GPSR
    return GPSR(num_in_ch=bands, num_out_ch=bands, upscale=scale, **GPSR_SMALL)


#: The RCAN-L that ships: 3 residual groups of 4 RCABs (RCAN: 10 of 20), 64
#: features, reduction 16, channel attention pooled over 7 x 7 windows (RCAN:
#: the whole image, which cannot tile). ``RCAN()``'s defaults are RCAN's depth.
RCAN_SMALL = dict(num_feat=64, num_group=3, num_block=4, reduction=16, pool=7)


def _build_rcan(bands: int, scale: int):
    from .models.rcan import RCAN
    return RCAN(num_in_ch=bands, num_out_ch=bands, upscale=scale, **RCAN_SMALL)


MODELS: Tuple[ModelSpec, ...] = (
    ModelSpec("dganet", "DGANet (gradient-aware network)",
              "EDSR-style residual network with pixel-shuffle up-blocks and a global bilinear "
              "residual, trained with L1 + 0.1 L1(Sobel)", "network",
              sets=("aerial", "landsat", "sentinel2"), build=_build_dganet, reference="seed 000, section 2.2, Table 1",
              summary="The general choice: sharpens aerial photos and satellite bands."),
    ModelSpec("bicubic", "Bicubic interpolation", "Bicubic (a = -0.75) interpolation baseline",
              "interpolation", resample_mode="bicubic",
              summary="Smooth interpolation, nothing learned: the reference to compare with."),
    ModelSpec("bilinear", "Bilinear interpolation", "Bilinear interpolation baseline",
              "interpolation", resample_mode="bilinear",
              summary="Softer interpolation, nothing learned."),
    ModelSpec("nearest", "Nearest neighbour", "Nearest-neighbour pixel replication baseline",
              "interpolation", resample_mode="nearest",
              summary="Repeats each pixel: keeps the values exactly (classes, codes)."),
    # Seed 000's ablations (Tables 4 and 6): the same network trained with
    # another loss at the same budget. Aerial x4 only.
    ModelSpec("edsr", "EDSR (same network, L1 loss)",
              "The DGANet network trained with L1 only (ablation)", "network", scales=(4,),
              sets=("aerial",), build=_build_dganet, reference="seed 000, Table 4 (EDSR row)", ablation=True),
    ModelSpec("dganet_l2", "DGANet network, L2 loss",
              "The DGANet network trained with L2 (ablation)", "network", scales=(4,),
              sets=("aerial",), build=_build_dganet, reference="seed 000, eq. 2 (ablation)", ablation=True),
    ModelSpec("dganet_sg", "DGANet network, second-order gradient loss",
              "The DGANet network trained with L1 + SG (ablation)", "network", scales=(4,),
              sets=("aerial",), build=_build_dganet, reference="seed 003, eq. 5-7", ablation=True),
    # The gradient-aware arm at the ablation's budget: the shipped dganet
    # trains longer, so comparing it with the other arms would not be fair.
    ModelSpec("dganet_ga", "DGANet at the ablation budget",
              "The DGANet recipe stopped at the ablation's budget of 848 steps (ablation)", "network",
              scales=(4,), sets=("aerial",), build=_build_dganet, reference="seed 000, eq. 3-6 (ablation)",
              ablation=True),
    # The remedy where the paper's network saturates: the same design
    # and loss, deeper. Not the paper's model; it never replaces dganet.
    ModelSpec("dganet_large", "DGANet-L (larger variant, 16 ResBlocks; not in the paper)",
              f"The DGANet design with {LARGE_BLOCKS} ResBlocks instead of 5 (not in the paper), "
              "grown from the shipped dganet and trained with the same loss", "network",
              scales=(4,), sets=("aerial",), build=_build_dganet_large,
              reference="seed 000, section 2.2, deepened",
              summary="A deeper DGANet (not in the paper) for natural-colour aerial photos: "
                      "about 3 times slower, about as sharp."),
    # The other seed architectures, in reduced widths that train on the CPU.
    # They build at x2, x4 and x8; x4 is the scale trained so far.
    ModelSpec("degan", "DEGAN (diffusion-enhanced GAN, reduced)",
              "Residual CNN with CBAM, sub-pixel upsampling and a U-Net with a Transformer bottleneck, "
              "the paper's GAN; shipped weights trained on its 0.5 MSE content term only (no VGG19 "
              "here); reduced widths, plus a bicubic global residual (not in the paper); runs on fixed "
              f"{DEGAN_TILE}-px windows", "network", scales=(4,), sets=("aerial",), build=_build_degan,
              reference="seed 001, sections 2.1-2.4", fixed_tile=DEGAN_TILE, fixed_margin=8,
              summary="Seed 001's diffusion-enhanced generator for natural-colour aerial photos "
                      "(reduced, trained on its pixel loss without the GAN phase); slow."),
    ModelSpec("gpsr", "GPSR (gradient-prior network, reduced)",
              "U-Net on the bicubic image with RS3AM-SR decoders and a gradient branch, trained with "
              "L1 + 0.1 multi-scale gradient + 0.001 gradient loss; reduced widths", "network",
              scales=(4,), sets=("aerial",), build=_build_gpsr, reference="seed 002, section 3",
              tile_grid=3,   # gpsr.TILE_MULTIPLE (not imported: the registry loads without torch)
              summary="A gradient-guided network for natural-colour aerial photos (seed 002, "
                      "reduced): about as sharp as DGANet, and many times slower (wide margins)."),
    # A stronger design beside dganet (issue 18): channel attention as in RCAN, made local
    # so that tiles equal a one-piece run. Not a seed paper; x4 and x2 (from the x4 file)
    # trained on the CPU so far, tools/gpu_train.py continues them on a GPU.
    ModelSpec("rcan", "RCAN-L (residual channel attention, local; not a seed paper)",
              "RCAN-style residual-in-residual network, 3 groups of 4 blocks, whose channel attention "
              "pools 7 x 7 windows instead of the whole image (so tiles are exact), plus a bilinear "
              "global residual; trained with L1", "network", scales=(2, 4), sets=("aerial",),
              build=_build_rcan, reference="Zhang et al. 2018 (RCAN), sections 3.1-3.4; reduced, local attention",
              summary="A deeper attention network for natural-colour aerial photos (not a seed paper): "
                      "a little sharper than DGANet at x2, level at x4, several times slower."),
)


def model_names() -> Tuple[str, ...]:
    """The static model ids, in registry order (also the Processing enum order)."""
    return tuple(m.name for m in MODELS)


def analyst_models() -> Tuple[ModelSpec, ...]:
    """The models an analyst picks from: networks with weights, then the baselines.

    Ablation arms are left out (``superres:evaluate``, the CLI and the
    Python API still run them); a new network appears once it has weights.
    """
    networks = [m for m in MODELS if m.kind == "network" and not m.ablation and m.available_scales()]
    return tuple(networks + [m for m in MODELS if m.kind != "network" and not m.ablation])


def trained_on(spec: ModelSpec) -> str:
    """What the model's installed weights were trained on, in words ("" for baselines)."""
    sets = [w.title for w in WEIGHT_SETS
            if w.name in spec.sets and any(spec.weights_path(s, w.name).is_file() for s in spec.scales)]
    return "; ".join(sets)


def plain_description(spec: ModelSpec) -> str:
    """One line for analysts: what the model is good for and what it was trained on."""
    text = spec.summary or spec.description + "."
    if spec.kind != "network":
        return f"{text} Needs no PyTorch."
    domain = trained_on(spec)
    return f"{text} Trained on {domain}." if domain else text


def get_model(name: str) -> ModelSpec:
    """Return the spec called ``name`` or raise a clear error listing the choices."""
    for spec in MODELS:
        if spec.name == name:
            return spec
    raise SuperResError(f"Unknown model '{name}'. Choose one of: {', '.join(model_names())}.")


def check_scale(spec: ModelSpec, scale: int) -> None:
    """Fail at once when ``spec`` has no weights (or no support) for ``scale``.

    The message names the scales this model has and the models that have
    weights at ``scale``: it is read inside QGIS too, so it names no tools.
    """
    available = spec.available_scales()
    if scale not in available:
        have = ", ".join(f"x{s}" for s in available) or "none"
        networks = [m.name for m in MODELS if m.kind == "network" and scale in m.available_scales()]
        baselines = ", ".join(m.name for m in MODELS if m.kind != "network")
        at_scale = (f"At x{scale}, {', '.join(networks)} {'has' if len(networks) == 1 else 'have'} "
                    f"weights, and the baselines {baselines} run at any scale."
                    if networks else f"No network has x{scale} weights; the baselines {baselines} "
                                     "run at any scale.")
        raise SuperResError(f"Model '{spec.name}' has no weights for x{scale}; it has: {have}. {at_scale}")


def markdown_table() -> str:
    """The README's model table, generated from the registry."""
    rows = ["| MODEL | what it is | scales | weight sets: network bands | follows | offered in QGIS |",
            "|---|---|---|---|---|---|"]
    curated = set(analyst_models())
    for spec in MODELS:
        if spec.kind == "network":
            scales = ", ".join(f"x{s}" for s in spec.available_scales()) or "none yet"
            bands = ", ".join(f"{w.name}: {'3 (RGB)' if w.bands == 3 else '1 (band by band)'}"
                              for w in WEIGHT_SETS if w.name in spec.sets)
        else:
            scales = ", ".join(f"x{s}" for s in spec.scales)
            bands = "any (band by band)"
        offered = ("yes" if spec in curated
                   else "research: Evaluate, CLI, Python" if spec.ablation else "once it has weights")
        rows.append(f"| `{spec.name}` | {spec.description} | {scales} | {bands} | "
                    f"{spec.reference or 'baseline'} | {offered} |")
    return "\n".join(rows)


def choose_weight_set(available: Tuple[str, ...], pixel_size_m: Optional[float],
                      dtype: str) -> Tuple[str, str]:
    """Pick the set (of ``available``) nearest the input; return it and why.

    Distance is |log10| of the pixel-size ratio (an unknown size counts 0)
    plus 1 when the GDAL data types differ, so a 30 m UInt16 band goes to
    the Landsat set and a 10 cm Byte photo to the aerial one.
    """
    if not available:
        raise SuperResError("No weights are installed for this model and scale.")
    import math

    def distance(ws: WeightSet) -> float:
        size = 0.0 if not pixel_size_m else abs(math.log10(pixel_size_m / ws.pixel_size_m))
        return size + (0.0 if dtype == ws.dtype else 1.0)
    sets = [get_weight_set(n) for n in available]
    best = min(sets, key=distance)
    size = f"{pixel_size_m:g} m" if pixel_size_m else "unknown pixel size"
    return best.name, (f"weights '{best.name}' ({best.title}) chosen for the input's {size}, {dtype}; "
                       "choose another weight set to override it "
                       "(WEIGHTS in QGIS, --weights on the command line)")


def resolve_weight_set(spec: ModelSpec, scale: int, weights: Optional[str],
                       pixel_size_m: Optional[float], dtype: str) -> Tuple[str, str]:
    """The weight set a run of ``spec`` at ``scale`` uses, and a line saying why.

    ``weights`` ``auto`` (or empty) picks by ``choose_weight_set``; a named
    set must have a file at this scale. The engine and the evaluation both
    ask here, so a report names the set the run really used.
    """
    available = spec.available_sets(scale)
    if weights in (None, "", "auto"):
        return choose_weight_set(available, pixel_size_m, dtype)
    chosen = get_weight_set(weights).name
    if chosen not in available:
        raise SuperResError(f"Model '{spec.name}' x{scale} has no '{chosen}' weights; it has: "
                            f"{', '.join(available) or 'none'}. Choose one of those or auto "
                            "(WEIGHTS in QGIS, --weights on the command line).")
    return chosen, f"weights '{chosen}' ({get_weight_set(chosen).title}), as asked"
