"""Image-specific adaptation (ADAPT_STEPS) on committed crops: it learns, deterministically, guarded, tile-exact."""
import numpy as np
import pytest
import torch

from backend import adapt
from backend.adapt import ACCEPT, _as_samples, _forward, adapt_engine, pair_geometry, read_pairs, training_loss
from backend.arrays import ArrayReader
from backend.engine import build_engine, engine_config
from backend.errors import SuperResError
from backend.job import SuperResolveJob, run_job, super_resolve_array
from backend.normalise import compute_stats, valid_mask
from backend.window import Window
from helpers import AERIAL, LANDSAT, assert_same_pixels, read, write_raster


@pytest.fixture(autouse=True)
def short_checks(monkeypatch):
    """Checks every 5 steps and a pool of 24 crops keep each test to a few seconds."""
    monkeypatch.setattr(adapt, "EVAL_EVERY", 5)
    monkeypatch.setattr(adapt, "POOL", 24)
    torch.set_num_threads(1)


def _band():
    """Band 1 (B2) of the Landsat crop, 128 x 128 px."""
    return np.ascontiguousarray(read(LANDSAT)[:1])


def _engine(img, weights, scale=2):
    """A CPU engine for ``img`` as a run would build it (its own statistics)."""
    nodata = [None] * img.shape[0]
    stats = compute_stats(img, valid_mask(img, nodata), True)
    return build_engine(engine_config("dganet", scale, stats, img.shape[0], False, img.dtype, nodata,
                                      device="cpu", weights=weights, precision="fp32", threads=1))


def _adapt(engine, img, steps, **kw):
    return adapt_engine(engine, ArrayReader(img), Window(0, 0, img.shape[2], img.shape[1]), steps, **kw)


def _pool_loss(engine, net, img, scale=2):
    """The weights' training loss over every training pair of ``img`` (no augmentation)."""
    side = pair_geometry(img.shape[2], img.shape[1], scale)
    _held, crops = read_pairs(ArrayReader(img), Window(0, 0, img.shape[2], img.shape[1]),
                              engine.nodata, side, scale)
    lr, hr, _valid = _as_samples(crops, engine)
    with torch.no_grad():
        return float(training_loss(engine.weights_meta)(_forward(net, lr, engine.net_bands), hr))


def test_a_short_run_lowers_the_training_loss_and_is_deterministic():
    # a Landsat band through the aerial weights (as grey): what adaptation is for
    img = _band()
    engine = _engine(img, "aerial")
    before = _pool_loss(engine, engine.net, img)
    original_net = engine.net
    original = {k: v.clone() for k, v in original_net.state_dict().items()}
    report = _adapt(engine, img, 10, guard=False)
    assert report.steps_run == report.kept_step == 10
    after = _pool_loss(engine, engine.net, img)
    assert after < before * 0.98, (before, after)
    # the run's own network was copied, not trained in place, and runs in the engine's layout
    assert engine.net is not original_net
    assert not engine.channels_last and all(p.is_contiguous() for p in engine.net.parameters())
    assert all(torch.equal(original_net.state_dict()[k], v) for k, v in original.items())
    again = _engine(img, "aerial")
    # the same seed gives the same network; another seed another one
    _adapt(again, img, 10, guard=False)
    other = _engine(img, "aerial")
    _adapt(other, img, 10, guard=False, seed=1)
    for k, v in engine.net.state_dict().items():
        assert torch.equal(again.net.state_dict()[k], v)
    assert any(not torch.equal(other.net.state_dict()[k], v) for k, v in engine.net.state_dict().items())


def test_the_guard_keeps_the_network_whose_held_out_loss_is_lowest():
    img = _band()
    engine = _engine(img, "aerial")
    seen, states = [], {}

    def check(step, loss, net):
        seen.append((step, loss))
        states[step] = {k: v.clone() for k, v in net.state_dict().items()}
    # at 5e-4 the held-out loss falls by 8 % until step 45, then wanders above that
    report = _adapt(engine, img, 80, lr=5e-4, on_check=check)
    best_step, best = min(seen, key=lambda s: s[1])
    assert best < seen[0][1] * (1 - ACCEPT), seen
    assert report.stopped and report.steps_run == best_step + 4 * 5 < 80   # four checks without a new best
    assert report.kept_step == best_step > 0 and report.held_out_after == best
    for k, v in engine.net.state_dict().items():
        assert torch.equal(states[best_step][k], v)
    assert f"kept the network of step {best_step}" in engine.adaptation


def test_the_guard_stops_and_keeps_the_original_when_the_held_out_loss_does_not_fall():
    img = _band()
    engine = _engine(img, "landsat")
    original = {k: v.clone() for k, v in engine.net.state_dict().items()}
    seen = []
    report = _adapt(engine, img, 200, lr=3e-3, on_check=lambda step, loss, _net: seen.append((step, loss)))
    # far too high a rate for the Landsat weights on Landsat: the held-out loss rises, the
    # guard stops after four checks without a new best, and the original network stays
    assert report.stopped and report.steps_run == 20 and [s for s, _ in seen] == [0, 5, 10, 15, 20]
    assert min(loss for _, loss in seen[1:]) > seen[0][1] * (1 - ACCEPT)
    assert report.kept_step == 0 and report.held_out_after == seen[0][1]
    assert all(torch.equal(engine.net.state_dict()[k], v) for k, v in original.items())
    assert "20 of 200 steps (stopped" in engine.adaptation and "kept the original" in engine.adaptation


def test_tiled_equals_one_piece_with_adaptation(tmp_path):
    src = write_raster(tmp_path / "in.tif", _band(), gt=(0.0, 30.0, 0.0, 0.0, 0.0, -30.0), dtype=2)  # UInt16
    kw = dict(model="dganet", scale=2, ise_iterations=1, device="cpu", weights="aerial", adapt_steps=10,
              precision="fp32")
    whole = run_job(SuperResolveJob(str(src), str(tmp_path / "whole.tif"), tile_size=128, **kw))
    tiled = run_job(SuperResolveJob(str(src), str(tmp_path / "tiled.tif"), tile_size=32, **kw))
    assert whole.tiles == 1 and tiled.tiles == 16
    line = next(x for x in tiled.log if x.startswith("Adaptation: 10 of 10 steps, kept the network of step"))
    assert line.rsplit(";", 1)[0] in "\n".join(whole.log)   # the same adaptation (but its seconds)
    a, b = read(tmp_path / "whole.tif"), read(tmp_path / "tiled.tif")
    # equal up to a rounding flip, as any fp32 network's tiles (test_tiling): convolutions over
    # a 32 px tile and a 128 px piece sum in another order (the kernels block by extent), so a value
    # on a .5 boundary may round either way (0 to 4 of these 65536 pixels, by 1, with torch 2.13
    # and 2.14 in either memory layout); a network not adapted is far off (below)
    assert_same_pixels(a, b)
    # the adapted network is what the tiles ran: other pixels than without adaptation
    plain = super_resolve_array(_band(), 2, "dganet", 1, device="cpu", weights="aerial", precision="fp32")
    assert np.abs(plain.astype(np.int64) - a).max() > 10


def test_bad_adaptation_requests_are_clear_errors(tmp_path):
    img = read(AERIAL)
    with pytest.raises(SuperResError, match="ADAPT_STEPS must be 0 or more"):
        super_resolve_array(img, 4, "dganet", adapt_steps=-1, device="cpu")
    with pytest.raises(SuperResError, match="ADAPT_STEPS needs a network; 'bicubic'"):
        super_resolve_array(img, 4, "bicubic", adapt_steps=10, device="cpu")
    with pytest.raises(SuperResError, match="ADAPT_STEPS needs an extent of at least 64 x 128 pixels at x8"):
        super_resolve_array(img[:, :100, :100], 8, "dganet", adapt_steps=10, device="cpu")
    with pytest.raises(SuperResError, match="ADAPT_STEPS cannot run on a Dask scheduler"):
        run_job(SuperResolveJob(str(AERIAL), str(tmp_path / "o.tif"), adapt_steps=10, dask="local:1"))
    holes = img.copy()
    holes[:, ::6] = 255   # one column in six is nodata: no window is 90% valid
    with pytest.raises(SuperResError, match="too few windows"):
        super_resolve_array(holes, 4, "dganet", nodata=255, adapt_steps=10, device="cpu")


def test_evaluation_and_the_command_line_measure_it(tmp_path, capsys):
    from backend.cli import main
    from backend.evaluate import evaluate_file
    rows = evaluate_file(str(LANDSAT), 2, ["bicubic", "dganet"], [0], bands=[1], weights="aerial",
                         device="cpu", adapt=[0, 10], sr_folder=str(tmp_path))
    assert [(r.label, r.adapt) for r in rows] == [("bicubic", 0), ("dganet", 0), ("dganet + adapt 10", 10)]
    note = rows[2].adapt_note
    assert note.startswith("Adaptation: 10 of 10 steps, kept ") and (tmp_path / "dganet_adapt10_ise0_x2.tif").is_file()
    # on this small LR (64 px) the guard keeps the original: then the pixels are the network's own
    assert ("kept the original" in note) == (rows[2].psnr == rows[1].psnr)
    # the CLI: the evaluation's table and CSV, and a run's log line
    csv_path = tmp_path / "t.csv"
    assert main(["evaluate", str(LANDSAT), "--bands", "1", "--scale", "2", "--weights", "aerial",
                 "--models", "dganet", "--adapt-steps", "0,10", "--csv", str(csv_path)]) == 0
    assert "| dganet + adapt 10 | aerial | 0 |" in capsys.readouterr().out
    assert csv_path.read_text().splitlines()[2].endswith(",10")
    assert main(["superresolve", str(LANDSAT), str(tmp_path / "o.tif"), "--scale", "2", "--weights", "aerial",
                 "--bands", "1", "--adapt-steps", "10"]) == 0
    assert "Adaptation: 10 of 10 steps" in capsys.readouterr().out
