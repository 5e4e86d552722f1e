"""VGG19's features in plain torch load from a local safetensors file, as torchvision names them."""
import hashlib

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from backend.errors import SuperResError
from backend.losses import PerceptualLoss, charbonnier
from backend.models.vgg19 import BLOCK_ENDS, VGG19Features, load_vgg19
from helpers import AERIAL, read

#: Convolution indices of torchvision's ``vgg19().features`` (configuration E).
TORCHVISION_CONVS = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]


def test_layout_is_torchvisions_vgg19_features():
    net = VGG19Features()
    convs = [i for i, m in enumerate(net.features) if isinstance(m, torch.nn.Conv2d)]
    assert convs == TORCHVISION_CONVS and len(net.features) == 37
    assert sum(p.numel() for p in net.parameters()) == 20_024_384     # torchvision's vgg19 features
    assert all(isinstance(net.features[i], torch.nn.ReLU) for i in BLOCK_ENDS)
    assert not any(p.requires_grad for p in net.parameters())


def _small_file(path, prefix="features."):
    """A VGG19-layout file 16 times narrower, as torchvision's state dict names it."""
    torch.manual_seed(0)
    src = VGG19Features(width=16)
    for p in src.parameters():
        p.data.normal_()
    state = {prefix + k: v.contiguous() for k, v in src.features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)                    # ignored
    save_file(state, str(path))
    return src


@pytest.mark.parametrize("prefix", ["features.", ""])
def test_loads_a_local_file(tmp_path, prefix):
    path = tmp_path / "vgg19_features.safetensors"
    src = _small_file(path, prefix)
    net, note = load_vgg19(path)
    for k, v in src.features.state_dict().items():
        torch.testing.assert_close(net.features.state_dict()[k], v)
    assert note["vgg19"] == f"vgg19_features.safetensors (sha256 {hashlib.sha256(path.read_bytes()).hexdigest()})"
    x = torch.rand(1, 3, 32, 32)
    feats = net(x)
    assert [f.shape[1] for f in feats] == [4, 8, 16, 32, 32] and feats[-1].shape[-1] == 2


def test_refuses_files_that_are_not_vgg19(tmp_path):
    path = tmp_path / "v.safetensors"
    with pytest.raises(SuperResError, match="not found"):
        load_vgg19(path)
    src = VGG19Features(width=16).features.state_dict()
    save_file({k: v.contiguous() for k, v in src.items() if k != "34.weight"}, str(path))
    with pytest.raises(SuperResError, match="missing 34.weight"):
        load_vgg19(path)
    bad = dict(src)
    bad["5.weight"] = torch.zeros(3, 3, 3, 3)
    save_file({k: v.contiguous() for k, v in bad.items()}, str(path))
    with pytest.raises(SuperResError, match="5.weight has shape"):
        load_vgg19(path)
    path.write_bytes(b"\x80\x04 not a safetensors file at all")
    with pytest.raises(SuperResError, match="not a readable safetensors"):
        load_vgg19(path)


def test_perceptual_loss_on_real_patches(tmp_path):
    path = tmp_path / "vgg.safetensors"
    _small_file(path)
    loss = PerceptualLoss(load_vgg19(path)[0])
    hr = torch.from_numpy(read(AERIAL)[:, :48, :48].astype(np.float32) / 255)[None]
    blur = torch.nn.functional.avg_pool2d(hr, 3, 1, 1, count_include_pad=False)
    # identical images: only the Charbonnier floor (eps = 1e-3) per layer
    assert float(loss(hr, hr)) == pytest.approx(5 * 1e-3, rel=1e-4)
    sr = blur.clone().requires_grad_(True)
    value = loss(sr, hr)
    assert float(value.detach()) > 5e-3
    value.backward()
    assert sr.grad.abs().max() > 0                       # trains the generator, not VGG
    assert all(p.grad is None for p in loss.vgg.parameters())
    # one band goes in as grey
    assert float(loss(blur[:, :1], hr[:, :1])) > 5e-3


def test_charbonnier_by_hand():
    x = torch.tensor([0.0, 3e-3, -4e-3])
    expected = (1e-3 + (9e-6 + 1e-6) ** 0.5 + (16e-6 + 1e-6) ** 0.5) / 3
    assert float(charbonnier(x)) == pytest.approx(expected, rel=1e-5)


def test_degan_training_with_the_perceptual_term_records_the_file(tmp_path):
    """The trainer's path: --vgg19 names the file, the step uses it, the metadata says which."""
    from backend.recipes import Recipe
    from backend.registry import get_model
    from backend.train import PatchSource, make_objective
    path = tmp_path / "vgg.safetensors"
    _small_file(path)
    recipe = Recipe("degan", 4, "aerial", steps=1, batch=2, patch=32, loss="degan", vgg19=str(path))
    net = get_model("degan").build(3, 4)
    obj = make_objective(recipe, net, "cpu")
    assert obj.perceptual is not None and obj.metadata()["vgg19_perceptual"].startswith("vgg.safetensors (sha256 ")
    img = read(AERIAL)
    src = PatchSource({"aerial/a/train": img}, ("aerial",), "train", 3)
    lr_b, hr_b = src.batch(np.random.default_rng(0), 2, 32, 4)
    with_perc = obj.step(lr_b, hr_b, 0)
    torch.manual_seed(0)
    plain = make_objective(Recipe("degan", 4, "aerial", steps=1, batch=2, patch=32, loss="degan"),
                           get_model("degan").build(3, 4), "cpu")
    assert plain.perceptual is None and np.isfinite(with_perc)
