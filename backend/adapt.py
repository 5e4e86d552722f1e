"""Image-specific adaptation (``ADAPT_STEPS``): fine-tune the network on the image itself.

Before the first tile, a copy of the run's network is fine-tuned on pairs
made from the processed extent: crops of its own pixels, degraded by the
scale with the degradation recorded in the weights, as input, and the
pixels as target (the "zero-shot" idea of Shocher et al. 2018, starting
from the trained network). Seed 000's ISE corrects the result at test
time; this corrects the network, for this image.

It happens once per run, so every tile uses the same adapted network and
tiled output still equals one piece. It is deterministic: crops, their
order and augmentations come from a fixed seed, and the rest is plain
Adam on the run's device.

The guard: part of the image's own pairs is held back (whole cells of a
grid over the extent, never overlapped by a training crop). Their loss is
measured before training and every ``EVAL_EVERY`` steps; training stops
when it has not fallen for ``PATIENCE`` checks in a row. The network kept
is the one with the lowest held-out loss if that is at least ``ACCEPT``
below the original's; otherwise the original. Measured on held-out imagery
at x4, 150 steps (``tools/adapt_gain.py --trajectory``, README): where the
weights suit the image (aerial weights on three aerial images, sentinel2
weights on Sentinel-2) the held-out loss fell by 1.7 % and 4.0 % at most
while the true PSNR dropped (by up to 0.04 and 0.08 dB); where they do not
(Landsat natural colour through the aerial weights) it fell by 7.6 % and
PSNR gained 0.78 dB. ``ACCEPT`` lies between.
"""
from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

import numpy as np

from .errors import Cancelled, SuperResError
from .normalise import valid_mask
from .torch_support import torch

#: Adam's rate. The issue's probe (x4 aerial weights on independent imagery):
#: 150 steps at 2e-5 gained a little, 600 steps at 5e-5 lost up to 0.6 dB; the
#: guard (``ACCEPT``) keeps the original there, and 5e-5 gains faster where it helps.
ADAPT_LR = 5e-5
#: Crops per step.
ADAPT_BATCH = 4
#: LR side of a training pair's input (its target is ``scale`` times larger),
#: smaller when the extent is small; never under ``MIN_LR_SIDE``.
ADAPT_LR_SIDE = 24
MIN_LR_SIDE = 8
#: The fixed seed of crops, their order and augmentations.
ADAPT_SEED = 0
#: Steps between checks of the held-out loss, and failed checks before stopping.
EVAL_EVERY = 25
PATIENCE = 4
#: A check must lower the best held-out loss by this fraction to count as falling.
MIN_GAIN = 1e-3
#: The adapted network is kept only if its held-out loss is this fraction below the original's.
ACCEPT = 0.05
#: Share of the grid's cells held back (at most ``MAX_HELD_OUT`` cells).
HELD_OUT_FRACTION = 0.25
MAX_HELD_OUT = 8
#: Distinct training crops read from the extent (drawn from, with flips and rotations).
POOL = 96
#: Least share of valid pixels in a crop. Nodata in a crop is filled as inference
#: fills it, and left out of the loss.
MIN_VALID = 0.9


@dataclass
class AdaptReport:
    """What one adaptation did, for the run's log.

    Attributes:
        steps: steps asked for.
        steps_run: steps trained before the guard stopped (or all).
        kept_step: the step whose network is used (0: the original).
        held_out_before: held-out loss of the original network.
        held_out_after: held-out loss of the network used.
        best: the lowest held-out loss seen.
        cells: held-out cells, training crops in the pool, their LR side.
        seconds: wall time.
        stopped: True when the guard stopped before ``steps``.
    """

    steps: int
    steps_run: int
    kept_step: int
    held_out_before: float
    held_out_after: float
    best: float
    cells: Tuple[int, int, int]
    seconds: float
    stopped: bool

    def line(self) -> str:
        """One log line."""
        held, pool, side = self.cells
        change = 100 * (self.best / self.held_out_before - 1) if self.held_out_before else 0.0
        what = (f"kept the network of step {self.kept_step}" if self.kept_step else
                f"kept the original network (the held-out loss fell less than {ACCEPT:.0%})")
        return (f"Adaptation: {self.steps_run} of {self.steps} steps"
                + (" (stopped: the held-out loss stopped falling)" if self.stopped else "")
                + f", {what}; best held-out loss {self.held_out_before:.5f} -> {self.best:.5f} "
                f"({change:+.1f}%) on {held} held-out cells, {pool} training crops of {side} px "
                f"input; {self.seconds:.1f} s")


def pair_geometry(region_w: int, region_h: int, scale: int, fixed_tile: Optional[int] = None,
                  largest: int = ADAPT_LR_SIDE) -> int:
    """The LR side of the training pairs' input for an extent: its grid has two cells or more.

    A cell (``scale`` times the side) fits the extent's shorter side, and
    twice into its longer one. A network with a fixed window (``fixed_tile``)
    trains on that window only. Raises ``SuperResError`` when the extent is too small.
    """
    fit = min(min(region_w, region_h), max(region_w, region_h) // 2) // scale
    side = fixed_tile if fixed_tile else min(largest, fit)
    if side < MIN_LR_SIDE or side > fit:
        need = scale * (side if fixed_tile else MIN_LR_SIDE)
        raise SuperResError(
            f"ADAPT_STEPS needs an extent of at least {need} x {2 * need} pixels at x{scale} (pairs of "
            f"its own pixels and their {scale}x smaller copies, some held back); this one is "
            f"{region_w} x {region_h}. Use a larger EXTENT or ADAPT_STEPS 0.")
    return side


def _cells(region, side_hr: int, rng: np.random.Generator):
    """A seeded order of the grid's cells: (row, column) pairs."""
    ny, nx = region.h // side_hr, region.w // side_hr
    return [(int(i) // nx, int(i) % nx) for i in rng.permutation(ny * nx)], ny, nx


def read_pairs(reader, region, nodata, side_lr: int, scale: int, seed: int = ADAPT_SEED,
               pool: Optional[int] = None):
    """Held-out cells and training crops of the extent, as raw (C, T, T) arrays (T = side_lr * scale).

    Only crops with at least ``MIN_VALID`` valid pixels are used. Held-out
    cells are whole cells of a T-pixel grid over the extent; training crops
    lie anywhere else, never overlapping a held-out cell.
    """
    t = side_lr * scale
    pool = pool or POOL
    rng = np.random.default_rng(seed)
    order, ny, nx = _cells(region, t, rng)
    from .window import Window
    want = max(1, min(MAX_HELD_OUT, int(round(HELD_OUT_FRACTION * ny * nx))))
    held, held_cells = [], np.zeros((ny + 1, nx + 1), bool)
    for cy, cx in order:
        if len(held) >= want or len(held) == len(order) - 1:
            break
        values = reader.read(Window(region.x + cx * t, region.y + cy * t, t, t))
        if valid_mask(values, nodata).mean() >= MIN_VALID:
            held.append(values)
            held_cells[cy, cx] = True
    crops, tries = [], 0
    while len(crops) < pool and tries < 20 * pool:
        tries += 1
        y, x = int(rng.integers(0, region.h - t + 1)), int(rng.integers(0, region.w - t + 1))
        # the cells a crop touches: (y // t .. (y + t - 1) // t), the same across
        if held_cells[y // t:(y + t - 1) // t + 1, x // t:(x + t - 1) // t + 1].any():
            continue
        values = reader.read(Window(region.x + x, region.y + y, t, t))
        if valid_mask(values, nodata).mean() >= MIN_VALID:
            crops.append(values)
    if not held or not crops:
        raise SuperResError(
            f"ADAPT_STEPS found too few windows of {t} x {t} pixels at least {MIN_VALID:.0%} valid in "
            "the extent to make training pairs. Use an extent with less nodata or ADAPT_STEPS 0.")
    return held, crops


def _as_samples(raw: List[np.ndarray], engine):
    """Raw crops to normalised (N, c, t, t) inputs, (N, c, T, T) targets and their validity.

    RGB runs in one pass, anything else band by band, as the engine runs it.
    Nodata is filled as inference fills it before the degradation.
    """
    from .engine import FILL_ITERATIONS
    from .normalise import denormalise, fill_invalid, normalise
    from .resample import degrade
    hrs, valids = [], []
    for values in raw:
        valid = valid_mask(values, engine.nodata)
        filled = fill_invalid(normalise(values, engine.stats), valid, FILL_ITERATIONS)
        hrs.append(denormalise(filled, engine.stats))
        valids.append(valid)
    hr = torch.from_numpy(np.stack(hrs))
    lr = degrade(hr, engine.scale, engine.dtype).double()
    low = torch.tensor(engine.stats.low, dtype=torch.float64)[None, :, None, None]
    span = torch.tensor(engine.stats.span, dtype=torch.float64)[None, :, None, None]
    hr, lr = ((hr - low) / span).float(), ((lr - low) / span).float()
    valid = torch.from_numpy(np.stack(valids))
    if engine.bands_per_pass != 3:
        n, c = hr.shape[:2]
        hr, valid = (a.reshape(n * c, 1, *a.shape[-2:]) for a in (hr, valid))
        lr = lr.reshape(n * c, 1, *lr.shape[-2:])
    return lr, hr, valid


def _augment(x, k: int, flip: bool):
    x = torch.rot90(x, k, (2, 3))
    return x.flip(3) if flip else x


def _forward(net, x, net_bands: int):
    """The network as the engine runs it: a band through a 3-band network runs as grey."""
    if x.shape[1] == 1 and net_bands == 3:
        return net(x.expand(-1, 3, -1, -1)).float().mean(dim=1, keepdim=True)
    return net(x).float()


def _held_out_loss(net, lr, hr, valid, net_bands: int, device: str) -> float:
    """Mean squared error (normalised units) of ``net`` over the valid pixels of the held-out pairs."""
    total = 0.0
    with torch.no_grad():
        for i in range(0, len(lr), 8):
            sr = _forward(net, lr[i:i + 8].to(device), net_bands)
            err = (sr - hr[i:i + 8].to(device)) ** 2
            total += float((err * valid[i:i + 8].to(device)).sum())
    return total / max(int(valid.sum()), 1)


def training_loss(meta: dict):
    """The loss the weights were trained with (``LOSSES``), or L1 for objectives of their own."""
    from .losses import LOSSES
    try:
        name = json.loads(meta.get("recipe", "{}")).get("loss", "l1")
    except ValueError:
        name = "l1"
    return LOSSES.get(name, LOSSES["l1"])


def adapt_engine(engine, reader, region, steps: int, log: Optional[Callable[[str], None]] = None,
                 is_cancelled: Optional[Callable[[], bool]] = None, lr: float = ADAPT_LR,
                 seed: int = ADAPT_SEED, guard: bool = True, batch: int = ADAPT_BATCH,
                 lr_side: int = ADAPT_LR_SIDE, on_check=None) -> AdaptReport:
    """Fine-tune a copy of ``engine.net`` on the extent ``region`` of ``reader``; the engine then uses it.

    ``guard`` False trains all ``steps`` and keeps the last network; it and
    ``lr``, ``seed``, ``batch``, ``lr_side`` and ``on_check(step, held-out
    loss, network)``, called at each check, are there for measurements
    (``tools/adapt_gain.py``). Returns what happened; the report's line is logged.
    """
    if engine.net is None:
        raise SuperResError(f"ADAPT_STEPS needs a network; '{engine.spec.name}' has nothing to adapt.")
    degradation = engine.weights_meta.get("degradation", "bicubic")
    if degradation != "bicubic":
        raise SuperResError(f"ADAPT_STEPS knows the bicubic degradation only; these weights record "
                            f"'{degradation}'.")
    start = time.perf_counter()
    side = pair_geometry(region.w, region.h, engine.scale, engine.fixed_tile, lr_side)
    held_raw, crops_raw = read_pairs(reader, region, engine.nodata, side, engine.scale, seed)
    held = _as_samples(held_raw, engine)
    pool_lr, pool_hr, pool_valid = _as_samples(crops_raw, engine)
    device, bands = engine.device, engine.net_bands
    net = copy.deepcopy(engine.net).float()
    if device == "cpu":   # about 15% faster convolutions on the CPU
        net = net.to(memory_format=torch.channels_last)
    # eval mode while training: no dropout or noise (DEGAN), the function inference runs
    net.eval()
    for p in net.parameters():
        p.requires_grad_(True)
    loss_fn = training_loss(engine.weights_meta)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    rng = np.random.default_rng([seed, 1])
    before = best = _held_out_loss(net, *held, bands, device)
    if on_check is not None:
        on_check(0, before, net)
    best_state, best_step, fails, step, last_log = None, 0, 0, 0, start
    stopped = False
    while step < steps:
        if is_cancelled is not None and is_cancelled():
            raise Cancelled(f"Cancelled during adaptation, at step {step} of {steps}.")
        idx = rng.integers(0, len(pool_lr), batch)
        k, flip = int(rng.integers(4)), bool(rng.integers(2))
        x = _augment(pool_lr[idx], k, flip).to(device, memory_format=torch.channels_last)
        y = _augment(pool_hr[idx], k, flip).to(device)
        sr = _forward(net, x, bands)
        # nodata pixels of the target teach nothing: there the target is the output itself
        y = torch.where(_augment(pool_valid[idx], k, flip).to(device), y, sr.detach())
        loss = loss_fn(sr, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if step % EVAL_EVERY == 0 or step == steps:
            loss_held = _held_out_loss(net, *held, bands, device)
            if on_check is not None:
                on_check(step, loss_held, net)
            if not guard:
                continue
            if loss_held < best * (1 - MIN_GAIN):
                best, best_step, fails = loss_held, step, 0
                best_state = {k_: v.detach().clone() for k_, v in net.state_dict().items()}
            else:
                fails += 1
            now = time.perf_counter()
            if log is not None and now - last_log >= 10:
                log(f"Adapting: step {step} of {steps}, held-out loss {loss_held:.5f} (best {best:.5f} "
                    f"at step {best_step})")
                last_log = now
            if fails >= PATIENCE:
                stopped = step < steps
                break
    if not guard:
        best_step, best = step, _held_out_loss(net, *held, bands, device)
        best_state = net.state_dict()
    elif best > before * (1 - ACCEPT):
        best_state, best_step = None, 0
    if best_state is not None:
        net.load_state_dict(best_state)
        for p in net.parameters():
            p.requires_grad_(False)
        # back to the layout the engine runs (trained channels-last on the CPU): a channels-last
        # network fed contiguous tiles would take another convolution path than the one chosen
        net = net.to(memory_format=torch.channels_last if engine.channels_last else torch.contiguous_format)
        engine.net = net
    report = AdaptReport(steps, step, best_step, before, best if best_state is not None else before, best,
                         (len(held_raw), len(crops_raw), side), time.perf_counter() - start, stopped)
    engine.adaptation = report.line()
    if log is not None:
        log(engine.adaptation)
    return report
