"""CLIP's ResNet image towers (RN50, RN101), written here and loaded from a local file.

transformers implements CLIP's image tower only as a ViT, and open_clip needs PyPI's
torchvision, which breaks beside our torch, so the network is written from the CLIP
paper's description ("modified ResNet"): a three-convolution stem with an average pool
instead of a max pool; bottleneck blocks whose strided convolutions are replaced by an
average pool before the last 1x1 convolution (anti-aliased downsampling); and an
attention pool instead of global average pooling, whose single query is the mean of the
final feature map. Parameter names match the ``visual.*`` keys of OpenAI's released
checkpoints, so their weights load with ``strict=True``.

Weights come from a local file only (``--model-path``): OpenAI's ``RN50.pt``/``RN101.pt``
(TorchScript archives) or a plain state dict (``.pt``/``.pth``/``.safetensors``), with or
without the ``visual.`` prefix. Anything missing or of the wrong shape is refused.
"""

from __future__ import annotations

import warnings
import zipfile
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from mfmrec.errors import ConfigError
from mfmrec.features.base import Encoder, pad_stack
from mfmrec.features.clip import CLIP_MEAN, CLIP_STD
from mfmrec.features.images import ImagePreprocess

# name -> (blocks per stage, output dim); both use width 64, 32 heads, 224x224 input
ARCHS = {"clip-rn50": ((3, 4, 6, 3), 1024), "clip-rn101": ((3, 4, 23, 3), 512)}
WIDTH, HEADS, RESOLUTION = 64, 32, 224
EXPANSION = 4
# OpenAI's _MODELS table in clip/clip.py of github.com/openai/CLIP (sha256 in the path)
WEIGHT_URLS = {
    "clip-rn50": "https://openaipublic.azureedge.net/clip/models/"
                 "afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762/RN50.pt",
    "clip-rn101": "https://openaipublic.azureedge.net/clip/models/"
                  "8fa8567bab74a42d41c5915025a8e4538c3bdbe8804a470a72f30b0d94fab599/RN101.pt",
}
LAYER_NAMES = ("stem", "layer1", "layer2", "layer3", "layer4")
LAYER_DIMS = (WIDTH,) + tuple(WIDTH * 2**i * EXPANSION for i in range(4))  # 64 .. 2048


class Bottleneck(nn.Module):
    """1x1 -> 3x3 -> avgpool(stride) -> 1x1 (x4 channels), plus a pooled shortcut."""

    def __init__(self, cin: int, planes: int, stride: int = 1):
        super().__init__()
        cout = planes * EXPANSION
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.avgpool = nn.AvgPool2d(stride) if stride > 1 else nn.Identity()
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride > 1 or cin != cout:
            # the released keys are downsample.0 (conv) and downsample.1 (bn); the pool,
            # which holds no weights, is named "-1" there
            self.downsample = nn.Sequential(OrderedDict([
                ("-1", nn.AvgPool2d(stride) if stride > 1 else nn.Identity()),
                ("0", nn.Conv2d(cin, cout, 1, bias=False)),
                ("1", nn.BatchNorm2d(cout)),
            ]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(self.conv1(x)))  # (B, planes, H, W)
        h = F.relu(self.bn2(self.conv2(h)))
        h = self.bn3(self.conv3(self.avgpool(h)))  # (B, 4 planes, H/s, W/s)
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(h + shortcut)


class AttentionPool2d(nn.Module):
    """Multi-head attention over the feature map whose only query is its mean token."""

    def __init__(self, spatial: int, dim: int, heads: int, out_dim: int):
        super().__init__()
        self.positional_embedding = nn.Parameter(torch.randn(spatial**2 + 1, dim) / dim**0.5)
        self.k_proj = nn.Linear(dim, dim)
        self.q_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.c_proj = nn.Linear(dim, out_dim)
        self.heads = heads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, out_dim); H*W + 1 must match the positional embedding."""
        b, c = x.shape[:2]
        tokens = x.flatten(2).transpose(1, 2)  # (B, HW, C)
        tokens = torch.cat([tokens.mean(dim=1, keepdim=True), tokens], dim=1)  # (B, HW+1, C)
        if tokens.shape[1] != self.positional_embedding.shape[0]:
            raise ConfigError(f"attention pool: a {x.shape[2]}x{x.shape[3]} feature map does "
                              f"not fit the {RESOLUTION}x{RESOLUTION} input of the weights")
        tokens = tokens + self.positional_embedding.to(tokens.dtype)
        d = c // self.heads
        q = self.q_proj(tokens[:, :1]).view(b, 1, self.heads, d).transpose(1, 2)  # (B, h, 1, d)
        k = self.k_proj(tokens).view(b, -1, self.heads, d).transpose(1, 2)  # (B, h, HW+1, d)
        v = self.v_proj(tokens).view(b, -1, self.heads, d).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v)  # (B, h, 1, d)
        return self.c_proj(out.transpose(1, 2).reshape(b, c))  # (B, out_dim)


class ModifiedResNet(nn.Module):
    """CLIP's ResNet image tower: stem, four bottleneck stages, attention pool."""

    def __init__(self, layers: tuple[int, ...], out_dim: int, width: int = WIDTH,
                 heads: int = HEADS, resolution: int = RESOLUTION):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width // 2, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width // 2)
        self.conv2 = nn.Conv2d(width // 2, width // 2, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width // 2)
        self.conv3 = nn.Conv2d(width // 2, width, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(width)
        self.avgpool = nn.AvgPool2d(2)
        cin = width
        for i, blocks in enumerate(layers):
            planes, stride = width * 2**i, 1 if i == 0 else 2
            stage = [Bottleneck(cin, planes, stride)]
            cin = planes * EXPANSION
            stage += [Bottleneck(cin, planes) for _ in range(blocks - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*stage))
        self.attnpool = AttentionPool2d(resolution // 32, cin, heads, out_dim)

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, width, H/4, W/4)."""
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = F.relu(self.bn3(self.conv3(x)))
        return self.avgpool(x)

    def forward_layers(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(B, 3, 224, 224) -> ((B, out_dim), globally average-pooled stem and stages:
        5 tensors of widths ``LAYER_DIMS``)."""
        h = self.stem(x)  # (B, 64, 56, 56)
        pooled = [h.mean(dim=(2, 3))]
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            h = stage(h)  # ends at (B, 2048, 7, 7)
            pooled.append(h.mean(dim=(2, 3)))
        return self.attnpool(h), pooled

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, 224, 224) -> (B, out_dim): CLIP's image embedding (not normalised)."""
        return self.forward_layers(x)[0]


def build_resnet(name: str) -> ModifiedResNet:
    """The untrained architecture of ``clip-rn50`` or ``clip-rn101``."""
    layers, out_dim = ARCHS[name]
    return ModifiedResNet(layers, out_dim)


def is_torchscript(path: Path) -> bool:
    """A TorchScript archive is a zip with ``constants.pkl``; ``torch.save`` files lack it."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(n.endswith("/constants.pkl") for n in archive.namelist())


def read_state(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from a TorchScript archive, a ``torch.save`` file or a safetensors file."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file  # lazy: only for .safetensors weights

        return load_file(str(path))
    if is_torchscript(path):  # OpenAI's released RN50.pt / RN101.pt
        with warnings.catch_warnings():  # torch >= 2.9 deprecates torch.jit.load
            warnings.simplefilter("ignore", DeprecationWarning)
            return dict(torch.jit.load(str(path), map_location="cpu").state_dict())
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state.get("state_dict", state) if isinstance(state, dict) else state


def visual_part(state: dict) -> dict[str, torch.Tensor]:
    """The image tower's tensors without the ``visual.`` prefix (a full CLIP or a tower)."""
    if any(k.startswith("visual.") for k in state):
        return {k[len("visual."):]: v for k, v in state.items() if k.startswith("visual.")}
    return dict(state)


def check_state(name: str, path: Path, model: nn.Module, state: dict) -> None:
    """One ConfigError line when a tensor is missing, unexpected or of the wrong shape."""
    expected = model.state_dict()
    for key, value in expected.items():  # BN step counters do not affect inference
        if key.endswith("num_batches_tracked"):
            state.setdefault(key, value)
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state)
                   if tuple(state[k].shape) != tuple(expected[k].shape))
    problems = [f"{len(v)} {what} ({', '.join(v[:3])}{' ...' if len(v) > 3 else ''})"
                for what, v in (("missing", missing), ("of the wrong shape", wrong),
                                ("unexpected", extra)) if v]
    if problems:
        raise ConfigError(f"--model-path {path}: not {name} weights: {'; '.join(problems)}; "
                          "refusing randomly initialised weights")


def load_clip_resnet(name: str, path: str | Path | None) -> ModifiedResNet:
    """Build ``name``'s tower and load its weights strictly from a local file."""
    if name not in ARCHS:
        raise ConfigError(f"--encoder {name}: expected one of {', '.join(ARCHS)}")
    if not path:
        raise ConfigError(f"--encoder {name} needs --model-path: a local copy of OpenAI's "
                          f"{WEIGHT_URLS[name].rsplit('/', 1)[1]} ({WEIGHT_URLS[name]}); "
                          "nothing is downloaded")
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--model-path: {path} is not a file (expected OpenAI's "
                          f"{WEIGHT_URLS[name].rsplit('/', 1)[1]} or a state dict)")
    try:
        state = visual_part(read_state(path))
    except Exception as exc:  # noqa: BLE001 - a corrupt or foreign file: one line
        raise ConfigError(f"--model-path {path}: not a loadable state dict "
                          f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
                          ) from None
    model = build_resnet(name)
    check_state(name, path, model, state)
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    return model.eval()


CLIP_PREPROCESS = ImagePreprocess(size=RESOLUTION, crop=RESOLUTION, mean=CLIP_MEAN,
                                  std=CLIP_STD)


class ClipResNetEncoder(Encoder):
    """CLIP RN50 (1024-d) / RN101 (512-d) image embeddings; layers: stem + 4 stages."""

    modality = "image"

    def __init__(self, name: str, model_path: str | Path | None, device: str = "cpu"):
        super().__init__(device)
        self.model = load_clip_resnet(name, model_path).to(self.device)
        self.name = name
        self.path = Path(model_path)
        self.preprocess = CLIP_PREPROCESS

    @property
    def dim(self) -> int:
        return ARCHS[self.name][1]

    @torch.no_grad()
    def encode_batch(self, inputs: list, layers: bool = False
                     ) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = self.preprocess(inputs).to(self.device)  # (B, 3, 224, 224)
        out, pooled = self.model.forward_layers(x)
        states = pad_stack(pooled).cpu() if layers else None  # (B, 5, 2048)
        return out.float().cpu(), states  # (B, 1024 | 512)

    def describe(self) -> dict:
        blocks, out_dim = ARCHS[self.name]
        return {
            "encoder": self.name, "modality": self.modality, "dim": out_dim,
            "model": {"architecture": "CLIP ModifiedResNet", "blocks": list(blocks),
                      "width": WIDTH, "heads": HEADS, "image_size": RESOLUTION,
                      "weights": self.path.name, "source": WEIGHT_URLS[self.name]},
            "preprocessing": self.preprocess.describe(),
            "pooling": "attention pool (query: mean token) + c_proj, not L2-normalised",
            "layers": {"names": list(LAYER_NAMES), "dims": list(LAYER_DIMS),
                       "pooling": "global average pool of each output, zero-padded to 2048"},
        }
