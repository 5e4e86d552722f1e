"""VGG19's convolutional feature layers in plain torch, for DEGAN's perceptual loss.

torchvision is not needed (it does not import beside this project's torch)
and nothing is downloaded: the weights come from a local safetensors file
the user names, converted once from torchvision's ImageNet model on any
machine that has it::

    import torchvision
    from safetensors.torch import save_file
    vgg = torchvision.models.vgg19(weights=torchvision.models.VGG19_Weights.IMAGENET1K_V1)
    save_file({k: v.contiguous() for k, v in vgg.features.state_dict().items()},
              "vgg19_features.safetensors")

The file holds ``0.weight``, ``0.bias``, ..., ``34.bias``: the 16 convolutions
of ``vgg19().features`` under their indices there (keys of the whole model's
state dict, ``features.0.weight`` ..., are accepted too; the classifier's
are ignored). ``VGG19Features`` keeps the same indices, so the file loads as is.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Sequence, Tuple

import torch
from torch import nn

from ..errors import SuperResError

#: VGG19's configuration "E" (Simonyan and Zisserman 2015): channels, "M" = 2x2 max-pool.
VGG19_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
                512, 512, 512, 512, "M", 512, 512, 512, 512, "M")
#: Indices in ``features`` of the ReLU ending each of the five blocks (relu1_2 ... relu5_4).
BLOCK_ENDS = (3, 8, 17, 26, 35)
#: ImageNet mean and standard deviation of the RGB inputs VGG19 was trained on.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class VGG19Features(nn.Module):
    """``torchvision.models.vgg19().features`` without torchvision.

    Args:
        width: channel divisor; 1 is VGG19 (20,024,384 parameters). Tests
            use a larger divisor to make small files with the same layout.
        layers: indices in ``features`` whose outputs ``forward`` returns.

    Inputs are RGB in [0, 1]; ``forward`` applies the ImageNet
    normalisation. The parameters are frozen.
    """

    def __init__(self, width: int = 1, layers: Sequence[int] = BLOCK_ENDS):
        super().__init__()
        mods, c_in = [], 3
        for v in VGG19_LAYOUT:
            if v == "M":
                mods.append(nn.MaxPool2d(2, 2))
            else:
                mods += [nn.Conv2d(c_in, v // width, 3, padding=1), nn.ReLU(inplace=False)]
                c_in = v // width
        self.features = nn.Sequential(*mods)
        self.layers = tuple(layers)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN)[None, :, None, None], persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD)[None, :, None, None], persistent=False)
        self.requires_grad_(False)
        self.eval()

    def forward(self, x):
        """Features of RGB ``x`` in [0, 1] at each index of ``layers``."""
        x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        out, last = [], max(self.layers)
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.layers:
                out.append(x)
            if i == last:
                break
        return out

    def train(self, mode: bool = True):
        """Stay in eval mode: the loss network never trains."""
        return super().train(False)


def load_vgg19(path, layers: Sequence[int] = BLOCK_ENDS) -> Tuple[VGG19Features, Dict[str, str]]:
    """A ``VGG19Features`` with the weights of the safetensors file ``path``.

    The width divisor is read from the first convolution (64 channels in
    VGG19). Returns the network and a note for the weights' metadata (file
    name and sha256). Raises ``SuperResError`` naming what is wrong.
    """
    import hashlib
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    path = Path(path)
    if not path.is_file():
        raise SuperResError(f"VGG19 weights not found: {path}. Convert them from torchvision "
                            "(see backend/models/vgg19.py) or leave the perceptual loss off.")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise SuperResError(f"VGG19 weights {path.name} are not a readable safetensors file ({exc}).") from None
    state = {k[len("features."):] if k.startswith("features.") else k: v for k, v in state.items()
             if not k.startswith("classifier.")}
    first = state.get("0.weight")
    width = 64 // first.shape[0] if first is not None and first.shape[0] and 64 % first.shape[0] == 0 else 1
    net = VGG19Features(width, layers)
    expected = {k: v.shape for k, v in net.features.state_dict().items()}
    missing = sorted(set(expected) - set(state), key=_index)
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k])]
    if missing or wrong:
        raise SuperResError(f"{path.name} is not VGG19's features: "
                            + (f"missing {', '.join(missing[:4])}" if missing else
                               f"{wrong[0]} has shape {tuple(state[wrong[0]].shape)}, "
                               f"not {tuple(expected[wrong[0]])}"))
    net.features.load_state_dict({k: state[k].float() for k in expected})
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return net, {"vgg19": f"{path.name} (sha256 {digest})"}


def _index(key: str) -> int:
    return int(key.split(".")[0])
