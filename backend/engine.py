"""The inference engine: a model, its device and precision, the run's statistics and ISE.

An ``Engine`` is built once per run (``build_engine`` from an ``EngineConfig``)
and is read-only afterwards, so tiles can be computed in any order, in
batches, or on other workers. Nothing is shared between runs: each run loads
its own network.
"""
from __future__ import annotations

import math
import os
import platform
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Optional, Sequence, Tuple

import numpy as np

from .encoding import gdal_type_name
from .errors import SuperResError
from .normalise import BandStats
from .registry import ModelSpec, get_model, get_weight_set, resolve_weight_set
from .resample import KERNELS, ise_growth, numpy_upsample
from .torch_support import require_torch, torch

#: Pixels of nodata filling done before inference (also part of the margin).
FILL_ITERATIONS = 8
#: Precision settings: ``auto`` is the fastest path measured on this machine (``calibrate``).
PRECISIONS = ("auto", "bf16", "fp32")
#: Environment override of ``auto`` (e.g. ``SUPERRES_PRECISION=fp32``).
PRECISION_ENV = "SUPERRES_PRECISION"


def available_cores() -> int:
    """CPU cores this process may run on (the affinity mask, not the whole machine)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:   # not on Linux
        return max(1, os.cpu_count() or 1)


def _cpu_flags() -> Optional[set]:
    """The CPU's feature flags from ``/proc/cpuinfo``, or None where there is no such file."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def bf16_supported(device: str) -> bool:
    """True when ``device`` runs bf16 convolutions natively (AVX512-BF16/AMX, or a CUDA GPU that has it).

    oneDNN's own answer is True on any AVX512 core, where bf16 is emulated
    and about 3x slower than fp32 (issue 33's Xeon), so on Linux the CPU's
    flags decide. ``auto`` does not rely on this: it measures (``calibrate``).
    """
    if torch is None:
        return False
    if device.startswith("cuda"):
        return bool(torch.cuda.is_bf16_supported())
    flags = _cpu_flags()
    if flags is not None and platform.machine() in ("x86_64", "AMD64", "i686"):
        return bool(flags & {"avx512_bf16", "amx_bf16"})
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:   # an old or unusual build: play safe
        return False


def resolve_path(requested: Optional[str], device: str) -> Tuple[str, bool, str]:
    """(precision, channels_last, how it was chosen) for ``requested`` on ``device``.

    ``auto`` (the default) takes the environment's ``SUPERRES_PRECISION`` if
    set, else the fastest path measured on this machine (``calibrate``; the
    note gives the speeds). ``bf16`` on a device without native bf16 falls
    back to fp32 (emulated bf16 is slower than fp32); ``fp32`` is plain fp32.
    """
    requested = (requested or "auto").lower()
    if requested == "auto":
        requested = os.environ.get(PRECISION_ENV, "auto").lower() or "auto"
    if requested == "fp32+cl":   # a path already chosen, handed to Dask workers (``fixed_precision``)
        return "fp32", True, "fp32+cl"
    if requested not in PRECISIONS:
        raise SuperResError(f"Unknown precision '{requested}': use {', '.join(PRECISIONS)}.")
    if requested == "fp32":
        return "fp32", False, "fp32"
    if requested == "bf16":
        return ("bf16", True, "bf16") if bf16_supported(device) else ("fp32", False, "fp32 (no native bf16)")
    from .calibrate import calibrate
    measured = calibrate(device)
    return measured.precision, measured.channels_last, measured.describe()


def resolve_precision(requested: Optional[str], device: str) -> str:
    """``bf16`` or ``fp32`` for ``requested`` (``auto``/``bf16``/``fp32``) on ``device`` (``resolve_path``)."""
    return resolve_path(requested, device)[0]


@dataclass(frozen=True)
class EngineConfig:
    """Everything needed to build the same engine anywhere (picklable, for Dask workers).

    Attributes:
        model: registry model name.
        scale: 2, 4 or 8.
        stats: the run's per-band statistics.
        n_bands: bands processed.
        rgb: the bands are natural-colour R, G, B.
        dtype: numpy data type name of input and output (``uint8``, ...).
        nodata: per-band nodata (None where a band has none).
        device: torch device name; ``auto`` picks CUDA when present.
        ise_iterations: ISE iterations N (seed 000, Algorithm 1); 0 disables.
        ise_kernel: ``bicubic``/``bilinear``; None follows the weights.
        weights: weight set or ``auto``.
        pixel_size_m: ground pixel size, for the ``auto`` weight choice.
        self_ensemble: average the network over the 8 flips and rotations.
        precision: ``auto``, ``bf16`` or ``fp32``.
        threads: CPU threads for torch; 0 uses every available core.
    """

    model: str
    scale: int
    stats: BandStats
    n_bands: int
    rgb: bool
    dtype: str
    nodata: Tuple = ()
    device: str = "cpu"
    ise_iterations: int = 0
    ise_kernel: Optional[str] = None
    weights: str = "auto"
    pixel_size_m: Optional[float] = None
    self_ensemble: bool = False
    precision: str = "auto"
    threads: int = 0


@dataclass
class Engine:
    """Turns a normalised, gap-filled LR batch into a normalised SR batch.

    Attributes:
        spec: the model.
        scale: 2, 4 or 8.
        stats: the run's per-band statistics.
        device: torch device name (``cpu`` when torch is absent).
        ise_iterations: ISE iterations N (seed 000, Algorithm 1); 0 disables.
        ise_kernel: ``bicubic`` (matched to training) or ``bilinear`` (the paper's).
        net: the loaded network, or None for interpolation baselines.
        bands_per_pass: 3 for one RGB pass, 1 for band by band.
        weights_meta: the weights file's metadata (networks only).
        weight_set: the weight set in use ("" for interpolation).
        net_bands: channels of the network (3 or 1).
        choice: a line saying which weights were chosen and why.
        self_ensemble: average the network over the 8 flips and rotations.
        precision: ``bf16`` (autocast, channels-last) or ``fp32``.
        dtype: numpy type of the input and output values.
        nodata: per-band nodata of input and output.
        adaptation: what image-specific adaptation did (``adapt.adapt_engine``), or "".
        channels_last: run the network in channels-last layout (bf16 always does).
        precision_note: how the precision was chosen, for the run log.
    """

    spec: ModelSpec
    scale: int
    stats: BandStats
    device: str = "cpu"
    ise_iterations: int = 0
    ise_kernel: str = "bicubic"
    net: Optional[object] = None
    bands_per_pass: int = 1
    weights_meta: dict = field(default_factory=dict)
    weight_set: str = ""
    net_bands: int = 1
    choice: str = ""
    self_ensemble: bool = False
    precision: str = "fp32"
    dtype: np.dtype = np.dtype(np.float32)
    nodata: Tuple = ()
    adaptation: str = ""
    channels_last: bool = False
    precision_note: str = ""

    def __post_init__(self):
        self.dtype = np.dtype(self.dtype)
        if not self.nodata:
            self.nodata = (None,) * len(self.stats.low)
        self._stats_t = None
        if torch is not None:
            from .device_ops import compute_dtype
            self.compute = compute_dtype(self.dtype)
            self._stats_t = tuple(torch.tensor(v, dtype=self.compute, device=self.device)[:, None, None]
                                  for v in (self.stats.low, self.stats.span))

    @property
    def stats_tensors(self):
        """(low, span) as (C, 1, 1) tensors on the device, in the compute type."""
        return self._stats_t

    @property
    def receptive_radius(self) -> int:
        """LR pixels of context the model itself needs around a tile."""
        if self.net is not None:
            return self.net.receptive_radius()
        from .resample import UP_RADIUS
        return UP_RADIUS[self.spec.resample_mode] + 1

    @property
    def safe_margin(self) -> int:
        """Margin (LR px) that makes tiled output equal one-piece output.

        Model receptive field, plus nodata filling, plus what ISE adds per
        iteration: each one widens the dependency by the support of its
        downsampling and upsampling kernels.
        """
        return (self.receptive_radius + FILL_ITERATIONS
                + self.ise_iterations * ise_growth(self.ise_kernel))

    @property
    def fixed_tile(self) -> Optional[int]:
        """The one LR window side (margins included) a window-dependent network must run on."""
        return self.spec.fixed_tile if self.net is not None else None

    @property
    def tile_grid(self) -> int:
        """Tile windows must start this many LR pixels apart (a multiple of it)."""
        return self.spec.tile_grid if self.net is not None else 1

    def bytes_per_lr_pixel(self) -> int:
        """Rough peak memory of inference per LR input pixel, for sizing tiles.

        Networks: their estimate if they give one, else the last pixel-shuffle
        stage's (64 features x s^2, twice: the conv output and the shuffle).
        Plus the float32 SR estimate and ISE's temporaries at HR.
        """
        s2 = self.scale * self.scale
        bands = len(self.stats.low)
        width = 2 if self.precision == "bf16" else 4
        net = 0
        if self.net is not None:
            estimate = getattr(self.net, "bytes_per_lr_pixel", None)
            net = estimate(self.scale, width) if estimate else 2 * 64 * s2 * width
            net *= (bands if self.bands_per_pass == 1 else 1) * (2 if self.self_ensemble else 1)
        return int(net + bands * s2 * 4 * (6 if self.ise_iterations else 3) + bands * 64)

    # --- inference -----------------------------------------------------------------

    def infer_batch(self, x, valid=None, partial=None, is_cancelled=None):
        """Super-resolve a normalised (N, C, h, w) float32 batch on the device.

        ``valid`` (N, C, h, w) marks real input pixels; ISE back-projects only
        their errors, never those of gap-filled pixels. Returns (N, C, h*s,
        w*s) float32. A 1-band set (or grey through the RGB set) runs the
        bands as one batch of single-band images. ``partial(fraction)``, if
        given, hears how far the network has got. ``is_cancelled()`` is asked
        before each layer of the network and before ISE (``cancel.watch``).
        """
        n, c, h, w = x.shape
        if self.bands_per_pass != 3:
            x = x.reshape(n * c, 1, h, w)
            valid = None if valid is None else valid.reshape(n * c, 1, h, w)
        from .cancel import check, watch
        strips = getattr(self.net, "progress_hook", False) is not False
        with torch.inference_mode(), _progress_hook(self.net, partial if strips else None), \
                watch(self.net, is_cancelled, None if strips or partial is None or self.net is None
                      else self._layer_progress(partial)):
            sr = self._forward(x).float()
            if self.ise_iterations:
                check(is_cancelled, "inside a tile, before ISE")
                sr = ise_lr(sr, x, self.scale, self.ise_iterations, self.ise_kernel,
                            None if valid is None else valid.to(sr.dtype))
        return sr.reshape(n, c, h * self.scale, w * self.scale)

    def _layer_progress(self, partial):
        """Progress inside a tile for a network without strips: layers run out of layers per pass."""
        from .cancel import leaf_modules
        per_pass = max(1, len(leaf_modules(self.net))) * (8 if self.self_ensemble else 1)
        return lambda count: partial(min(0.99, count / per_pass))

    def infer(self, norm: np.ndarray, valid: Optional[np.ndarray] = None) -> np.ndarray:
        """Super-resolve one normalised (C, h, w) numpy array to (C, h*s, w*s) float32.

        Without torch (interpolation, ISE 0) this is the numpy upsampling.
        """
        if self.spec.kind == "interpolation" and self.ise_iterations == 0 and torch is None:
            return numpy_upsample(norm, self.scale, self.spec.resample_mode)
        require_torch(f"Model '{self.spec.name}' with ISE iterations > 0"
                      if self.spec.kind == "interpolation" else f"Model '{self.spec.name}'")
        x = torch.from_numpy(np.ascontiguousarray(norm, dtype=np.float32)).to(self.device)[None]
        m = None if valid is None else torch.from_numpy(np.ascontiguousarray(valid)).to(self.device)[None]
        return self.infer_batch(x, m)[0].cpu().numpy()

    def _forward(self, x):
        from .resample import torch_upsample
        if self.net is None:
            return torch_upsample(x, self.scale, self.spec.resample_mode)
        if not self.self_ensemble:
            return self._net(x)
        # Geometric self-ensemble (EDSR's "+"): the 8 flips and 90-degree
        # rotations, each undone on the output, averaged. Tiles stay exact:
        # each transform keeps the tile's symmetric margin.
        out = None
        hook = getattr(self.net, "progress_hook", None)
        for k in range(4):
            for flip in (False, True):
                t = torch.rot90(x, k, (2, 3))
                if hook is not None:   # eight passes: each is an eighth of the way
                    self.net.progress_hook = (lambda f, i=2 * k + flip: hook((i + f) / 8))
                y = self._net(t.flip(3) if flip else t).float()
                y = torch.rot90(y.flip(3) if flip else y, -k, (2, 3))
                out = y if out is None else out + y
        return out / 8

    def _net(self, x):
        grey = x.shape[1] == 1 and self.net_bands == 3
        if grey:
            x = x.expand(-1, 3, -1, -1)
        if self.channels_last or self.precision == "bf16":
            x = x.contiguous(memory_format=torch.channels_last)
        if self.precision == "bf16":
            # bf16 convolutions; the network keeps its global residual in
            # float32 (see DGANet.forward), so the output is float32.
            with torch.autocast(device_type="cuda" if self.device.startswith("cuda") else "cpu",
                                dtype=torch.bfloat16):
                y = self.net(x)
        else:
            y = self.net(x)
        y = y.float().contiguous()
        return y.mean(dim=1, keepdim=True) if grey else y


class _progress_hook:
    """Lend ``callback`` to a network that reports its strips (``net.progress_hook``)."""

    def __init__(self, net, callback):
        self.net, self.callback = net, callback

    def __enter__(self):
        if self.net is not None and self.callback is not None:
            self.net.progress_hook = self.callback

    def __exit__(self, *exc):
        if self.net is not None and getattr(self.net, "progress_hook", None) is not None:
            self.net.progress_hook = None


def ise(sr, lr, scale: int, iterations: int, kernel: str = "bicubic", valid=None):
    """Image-specific enhancement, seed 000 Algorithm 1 (iterative back-projection).

    Each iteration downsamples the estimate, subtracts it from the LR input,
    upsamples the difference and adds it. The tolerance stop of Algorithm 1
    is left out: a per-tile stop would make neighbouring tiles disagree.
    Where ``valid`` is 0 (nodata) the difference is not back-projected.
    """
    from .resample import torch_downsample, torch_upsample
    up_mode = KERNELS[kernel][2]
    for _ in range(iterations):
        diff = lr - torch_downsample(sr, scale, kernel)
        if valid is not None:
            diff = diff * valid
        sr = sr + torch_upsample(diff, scale, up_mode)
    return sr


@lru_cache(maxsize=None)
def ise_lr_kernel(scale: int, kernel: str) -> Tuple[float, ...]:
    """The 1-D taps of downsampling after upsampling (LR to LR), away from borders.

    Both operators are separable and shift-invariant inside an image, so
    their composition is one short symmetric filter per axis (7 taps for the
    bicubic kernel, 3 for bilinear), computed from torch's own operators.
    """
    from .resample import torch_downsample, torch_upsample
    n = 33
    x = torch.zeros(1, 1, n, 8, dtype=torch.float64)
    x[0, 0, n // 2] = 1
    y = torch_downsample(torch_upsample(x, scale, KERNELS[kernel][2]), scale, kernel)[0, 0, :, 4]
    nonzero = torch.nonzero(y.abs() > 1e-12).flatten()
    r = int(max(n // 2 - int(nonzero.min()), int(nonzero.max()) - n // 2))
    return tuple(float(v) for v in y[n // 2 - r:n // 2 + r + 1])


def _filter_lr(x, taps: Tuple[float, ...]):
    """Apply ``taps`` along both axes of (N, C, h, w) ``x`` (edges replicated)."""
    import torch.nn.functional as F
    r = (len(taps) - 1) // 2
    h, w = x.shape[-2:]
    p = F.pad(x, (r, r, r, r), mode="replicate")
    y = sum(t * p[..., k:k + h, :] for k, t in enumerate(taps))
    return sum(t * y[..., k:k + w] for k, t in enumerate(taps))


def ise_lr(sr, lr, scale: int, iterations: int, kernel: str = "bicubic", valid=None):
    """``ise`` computed on the LR grid: the same result away from the tile's edges.

    With e_k the LR error before iteration k, each iteration adds U(v e_k)
    and, U and D being linear, e_(k+1) = e_k - D(U(v e_k)). D after U is one
    short LR filter (``ise_lr_kernel``), so the iterations cost LR work; one
    downsampling before and one upsampling after remain at HR. Where the
    tile's edge clamps the operators the two forms differ, within
    ``iterations * ise_growth`` of that edge: inside the margin, which is cropped.
    """
    from .resample import torch_downsample, torch_upsample
    taps = ise_lr_kernel(scale, kernel)
    e = lr - torch_downsample(sr, scale, kernel)
    total = None
    for k in range(iterations):
        ve = e if valid is None else e * valid
        total = ve if total is None else total + ve
        if k < iterations - 1:
            e = e - _filter_lr(ve, taps)
    if total is None:
        return sr
    return sr + torch_upsample(total, scale, KERNELS[kernel][2])


def engine_config(model: str, scale: int, stats: BandStats, n_bands: int, rgb: bool, dtype,
                  nodata: Sequence = (), **kw) -> EngineConfig:
    """An ``EngineConfig`` with the data type stored by name (so it pickles small)."""
    return EngineConfig(model, scale, stats, n_bands, rgb, np.dtype(dtype).name,
                        tuple(None if v is None else float(v) for v in nodata) or (None,) * n_bands, **kw)


def fixed_precision(engine: Engine) -> str:
    """The path ``engine`` runs, as a ``precision`` that builds the same anywhere (no new measure).

    Dask workers must compute what this machine would: a worker measuring for
    itself (another CPU, one thread) could pick another path and other pixels.
    """
    if engine.precision == "bf16":
        return "bf16"
    return "fp32+cl" if engine.channels_last else "fp32"


def build_engine(config: EngineConfig) -> Engine:
    """Load what ``config`` needs and return a ready engine.

    ``weights`` names a weight set, or ``auto`` to pick the one nearest the
    input's pixel size and data type. A 3-band (RGB) set runs natural-colour
    RGB (``rgb`` and three bands) in one pass and any other band as grey; a
    1-band set runs band by band. On the CPU, torch uses every available core.
    """
    spec = get_model(config.model)
    device = config.device
    if device == "auto":
        from .torch_support import resolve_device
        device = resolve_device("auto")
    if config.ise_iterations < 0:
        raise SuperResError("ISE_ITERATIONS must be 0 or more.")
    if config.ise_kernel is not None and config.ise_kernel not in KERNELS:
        raise SuperResError(f"Unknown ISE kernel '{config.ise_kernel}': use {', '.join(KERNELS)}.")
    common = dict(dtype=np.dtype(config.dtype), nodata=tuple(config.nodata))
    if torch is not None and device == "cpu":
        threads = config.threads or available_cores()
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
    if spec.kind == "interpolation":
        if config.ise_iterations:
            require_torch("ISE (ISE_ITERATIONS > 0)")
        return Engine(spec, config.scale, config.stats, device, config.ise_iterations,
                      config.ise_kernel or "bicubic", **common)
    require_torch(f"Model '{spec.name}'")
    chosen, choice = resolve_weight_set(spec, config.scale, config.weights, config.pixel_size_m,
                                        gdal_type_name(config.dtype))
    net_bands = get_weight_set(chosen).bands
    from .weights import load_weights
    net = spec.build(net_bands, config.scale)
    meta = load_weights(spec.weights_path(config.scale, chosen), spec.name, config.scale, net_bands, net)
    precision, channels_last, note = resolve_path(config.precision, device)
    net.eval().to(device)
    channels_last = channels_last or precision == "bf16"
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    kernel = config.ise_kernel or meta.get("degradation", "bicubic")
    if kernel not in KERNELS:
        kernel = "bicubic"
    per_pass = 3 if (net_bands == 3 and config.rgb and config.n_bands == 3) else 1
    return Engine(spec, config.scale, config.stats, device, config.ise_iterations, kernel, net,
                  per_pass, meta, chosen, net_bands, choice, config.self_ensemble, precision,
                  channels_last=channels_last, precision_note=note, **common)


def tile_size_for(engine: Engine, margin: int, budget_bytes: int, overhead: float = 0.15,
                  largest: Optional[int] = None) -> int:
    """A core tile size (LR px) whose margin costs at most ``overhead`` extra pixels,
    as far as ``budget_bytes`` of inference memory allows.

    The margin's cost is ((t + 2m) / t)^2 - 1; the memory is the model's
    bytes per LR pixel over the read window. With ``largest`` (the region's
    longer side) the size cuts it into equal tiles, and never exceeds it.
    """
    # At least 512 (make bench, 2048^2 aerial x4 on 2 cores): tiles of 1024
    # were 5% faster than 512 but doubled peak memory (1.41 against 0.74 GB),
    # and the reader and writer threads' tiles in flight then made it grow by
    # 15% with 4x the raster (4% with 512). The margin rule may ask for more.
    want = max(512, math.ceil(2 * margin / (math.sqrt(1 + overhead) - 1)))
    fits = int(math.sqrt(max(budget_bytes, 1) / engine.bytes_per_lr_pixel())) - 2 * margin
    size = max(64, min(want, fits))
    if largest is not None and size < largest:
        # no thin last tile: the largest size up to ``size`` that cuts ``largest`` evenly
        # is ceil(largest / ceil(largest / size)); larger tiles where memory allows
        across = max(1, largest // size) if want <= fits else -(-largest // size)
        while -(-largest // across) > max(fits, 64):
            across += 1
        size = -(-largest // across)
    return min(size, largest) if largest is not None else size
