"""The inference engine: a model, its device, the run's statistics and ISE.

An ``Engine`` is built once per run and is read-only afterwards, so tiles
can be computed in any order or on other workers. Nothing is shared between
runs: each run loads its own network.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .errors import SuperResError
from .normalise import BandStats
from .registry import ModelSpec, get_weight_set, resolve_weight_set
from .resample import KERNELS, ise_growth, numpy_upsample
from .torch_support import require_torch, torch

#: Pixels of nodata filling done before inference (also part of the margin).
FILL_ITERATIONS = 8


@dataclass
class Engine:
    """Turns a normalised, gap-filled LR array into a normalised SR array.

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

    def infer(self, norm: np.ndarray, valid: Optional[np.ndarray] = None) -> np.ndarray:
        """Super-resolve a (C, h, w) normalised array to (C, h*s, w*s), float32.

        ``valid`` (C, h, w) marks real input pixels; ISE back-projects only
        their errors, never those of gap-filled pixels.
        """
        if self.spec.kind == "interpolation" and self.ise_iterations == 0 and torch is None:
            return numpy_upsample(norm, self.scale, self.spec.resample_mode)
        require_torch(f"Model '{self.spec.name}' with ISE iterations > 0"
                      if self.spec.kind == "interpolation" else f"Model '{self.spec.name}'")
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(norm, dtype=np.float32)).to(self.device)
            m = (torch.ones_like(x) if valid is None
                 else torch.from_numpy(np.ascontiguousarray(valid, dtype=np.float32)).to(self.device))
            # One pass per RGB triple (3-band set on RGB), or per band: memory
            # stays bounded by the tile, whatever the band count. A 3-band
            # network given one band sees it as grey (the band in all three
            # channels) and its three outputs are averaged.
            groups = ([(x[None], m[None])] if self.bands_per_pass == 3
                      else [(x[c:c + 1, None], m[c:c + 1, None]) for c in range(x.shape[0])])
            out = []
            for lr, mask in groups:
                sr = self._forward(lr)
                if self.ise_iterations:
                    sr = ise(sr, lr, self.scale, self.ise_iterations, self.ise_kernel, mask)
                out.append(sr[0].float().cpu().numpy())
            return np.concatenate(out)

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
        for k in range(4):
            for flip in (False, True):
                t = torch.rot90(x, k, (2, 3))
                y = self._net(t.flip(3) if flip else t)
                y = torch.rot90(y.flip(3) if flip else y, -k, (2, 3))
                out = y if out is None else out + y
        return out / 8

    def _net(self, x):
        if x.shape[1] == 1 and self.net_bands == 3:
            return self.net(x.expand(-1, 3, -1, -1)).mean(dim=1, keepdim=True)
        return self.net(x)


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


def build_engine(spec: ModelSpec, scale: int, stats: BandStats, n_bands: int, rgb: bool,
                 device: str = "cpu", ise_iterations: int = 0,
                 ise_kernel: Optional[str] = None, weights: str = "auto",
                 pixel_size_m: Optional[float] = None, dtype_name: str = "Byte",
                 self_ensemble: bool = False) -> Engine:
    """Load what ``spec`` needs for ``scale`` and return a ready engine.

    ``weights`` names a weight set, or ``auto`` to pick the one nearest the
    input's ``pixel_size_m`` and ``dtype_name``. A 3-band (RGB) set runs
    natural-colour RGB (``rgb`` and three bands) in one pass and any other
    band as grey; a 1-band set runs band by band. ``self_ensemble`` averages
    the network over 8 flips and rotations (8 times the inference time).
    """
    if ise_iterations < 0:
        raise SuperResError("ISE_ITERATIONS must be 0 or more.")
    if ise_kernel is not None and ise_kernel not in KERNELS:
        raise SuperResError(f"Unknown ISE kernel '{ise_kernel}': use {', '.join(KERNELS)}.")
    if spec.kind == "interpolation":
        if ise_iterations:
            require_torch("ISE (ISE_ITERATIONS > 0)")
        return Engine(spec, scale, stats, device, ise_iterations, ise_kernel or "bicubic")
    require_torch(f"Model '{spec.name}'")
    chosen, choice = resolve_weight_set(spec, scale, weights, pixel_size_m, dtype_name)
    net_bands = get_weight_set(chosen).bands
    from .weights import load_weights
    net = spec.build(net_bands, scale)
    meta = load_weights(spec.weights_path(scale, chosen), spec.name, scale, net_bands, net)
    net.eval().to(device)
    kernel = ise_kernel or meta.get("degradation", "bicubic")
    if kernel not in KERNELS:
        kernel = "bicubic"
    per_pass = 3 if (net_bands == 3 and rgb and n_bands == 3) else 1
    return Engine(spec, scale, stats, device, ise_iterations, kernel, net, per_pass, meta,
                  chosen, net_bands, choice, self_ensemble)
