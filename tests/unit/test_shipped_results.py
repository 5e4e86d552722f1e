"""Every shipped weights file reproduces the report's PSNR on its committed crop."""
import json

import pytest

from backend.evaluate import evaluate_file
from backend.recipes import RECIPES
from backend.registry import get_model, get_weight_set
from helpers import ROOT

RESULTS = json.loads((ROOT / "docs" / "results.json").read_text())["committed_crops"]


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda r: r.name)
def test_weights_reproduce_the_report(recipe):
    assert get_model(recipe.model).weights_path(recipe.scale, recipe.weights).is_file()
    entry = RESULTS[recipe.name]    # every shipped file is in the report
    row = evaluate_file(str(ROOT / entry["crop"]), entry["scale"], [entry["model"]], [0], device="cpu",
                        weights=entry["weights"], rgb=get_weight_set(recipe.weights).bands == 3 or None)[0]
    assert row.psnr == pytest.approx(entry["psnr"], abs=0.01)
    assert row.ssim == pytest.approx(entry["ssim"], abs=1e-4)
