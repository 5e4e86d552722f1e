"""degan and gpsr run like every model: selectable, with ISE on top, and above bicubic on a held-out crop."""
import numpy as np
import pytest
import torch

from backend.cli import build_parser
from backend.errors import SuperResError
from backend.evaluate import evaluate_array
from backend.job import super_resolve_array
from backend.registry import check_scale, get_model, model_names
from backend.resample import degrade
from helpers import AERIAL, read

MODELS = ("degan", "gpsr")


def _pair(scale=4):
    hr = read(AERIAL)[:, :96, :96]
    lr = degrade(torch.from_numpy(hr.astype(np.float64))[None], scale, hr.dtype)[0].numpy().astype(hr.dtype)
    return hr, lr


@pytest.mark.parametrize("model", MODELS)
def test_selectable_and_refused_where_untrained(model):
    assert model in model_names()                       # Processing enums and the CLI list these
    args = build_parser().parse_args(["superresolve", "in.tif", "out.tif", "--model", model, "--scale", "4"])
    assert args.model == model
    spec = get_model(model)
    assert spec.available_scales() == (4,)
    with pytest.raises(SuperResError, match="has no weights for x2; it has: x4"):
        check_scale(spec, 2)


@pytest.mark.parametrize("model", MODELS)
def test_ise_works_on_top(model):
    from backend.metrics import lr_consistency
    hr, lr = _pair()
    plain = super_resolve_array(lr, 4, model, 0, device="cpu")
    ise = super_resolve_array(lr, 4, model, 3, device="cpu")
    assert plain.shape == ise.shape == hr.shape and plain.dtype == hr.dtype
    before = np.mean([lr_consistency(plain[c:c + 1], lr[c:c + 1], 4, 255.0) for c in range(3)])
    after = np.mean([lr_consistency(ise[c:c + 1], lr[c:c + 1], 4, 255.0) for c in range(3)])
    assert after < before / 2


@pytest.mark.parametrize("model", MODELS)
def test_beats_bicubic_on_the_held_out_crop(model):
    hr, _ = _pair()
    rows = {r.model: r for r in evaluate_array(hr, 4, ["bicubic", model], [0], rgb=True, device="cpu")}
    assert rows[model].psnr > rows["bicubic"].psnr
