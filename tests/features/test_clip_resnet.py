"""CLIP RN50/RN101: official key names and shapes, strict local loading, clear refusals."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file

from mfmrec.errors import ConfigError
from mfmrec.features.clip_resnet import (
    LAYER_DIMS,
    WEIGHT_URLS,
    AttentionPool2d,
    build_resnet,
)
from mfmrec.features.encoders import build_encoder


def _official_state(name: str) -> dict[str, torch.Tensor]:
    """A random state dict named like OpenAI's checkpoint (``visual.`` + a text key)."""
    torch.manual_seed(0)
    state = {f"visual.{k}": v.clone() for k, v in build_resnet(name).state_dict().items()
             if not k.endswith("num_batches_tracked")}  # the release may lack them
    state["token_embedding.weight"] = torch.zeros(4, 8)  # the text tower is ignored
    return state


@pytest.fixture(scope="module")
def rn50_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("rn50") / "RN50.pt"
    torch.save(_official_state("clip-rn50"), path)
    return path


def _images(n: int = 2) -> list:
    return [Image.new("RGB", (40 + 8 * i, 32), (30 * i, 90, 200)) for i in range(n)]


def test_key_names_and_sizes_follow_the_release():
    keys = build_resnet("clip-rn50").state_dict()
    for key in ("conv1.weight", "bn3.running_var", "layer1.0.downsample.0.weight",
                "layer4.2.conv3.weight", "attnpool.positional_embedding",
                "attnpool.q_proj.weight", "attnpool.c_proj.bias"):
        assert key in keys
    assert keys["attnpool.positional_embedding"].shape == (7 * 7 + 1, 2048)
    assert keys["attnpool.c_proj.weight"].shape == (1024, 2048)
    assert "layer1.1.downsample.0.weight" not in keys


def test_rn101_structure_by_parameter_shapes():
    net = build_resnet("clip-rn101")
    keys = net.state_dict()
    assert len(net.layer3) == 23 and "layer3.22.conv3.weight" in keys
    assert keys["attnpool.c_proj.weight"].shape == (512, 2048)
    assert keys["layer3.0.downsample.0.weight"].shape == (1024, 512, 1, 1)


def test_attention_pool_matches_torch_multi_head_attention():
    torch.manual_seed(0)
    pool = AttentionPool2d(2, 16, 4, 8).eval()
    x = torch.randn(3, 16, 2, 2)
    tokens = x.flatten(2).permute(2, 0, 1)  # (HW, B, C)
    tokens = torch.cat([tokens.mean(dim=0, keepdim=True), tokens])
    tokens = tokens + pool.positional_embedding[:, None]  # (HW+1, B, C)
    ref, _ = F.multi_head_attention_forward(
        tokens[:1], tokens, tokens, 16, 4, None,
        torch.cat([pool.q_proj.bias, pool.k_proj.bias, pool.v_proj.bias]), None, None, False,
        0.0, pool.c_proj.weight, pool.c_proj.bias, training=False, need_weights=False,
        use_separate_proj_weight=True, q_proj_weight=pool.q_proj.weight,
        k_proj_weight=pool.k_proj.weight, v_proj_weight=pool.v_proj.weight)
    with torch.no_grad():
        assert torch.allclose(pool(x), ref[0], atol=1e-5)


def test_loads_a_pt_state_dict_and_encodes(rn50_file):
    enc = build_encoder("clip-rn50", rn50_file)
    ref = _official_state("clip-rn50")
    assert torch.equal(enc.model.state_dict()["layer2.1.conv2.weight"],
                       ref["visual.layer2.1.conv2.weight"])
    feats, states = enc.encode_batch(_images(), layers=True)
    assert feats.shape == (2, 1024) and enc.dim == 1024
    assert states.shape == (2, 5, 2048)
    assert torch.all(states[:, 0, LAYER_DIMS[0]:] == 0)  # stem (64) zero-padded
    again, none = enc.encode_batch(_images(), layers=False)
    assert none is None and torch.equal(feats, again)
    assert enc.describe()["layers"]["dims"] == [64, 256, 512, 1024, 2048]


def test_loads_safetensors_without_the_prefix(rn50_file, tmp_path):
    state = {k[len("visual."):]: v for k, v in torch.load(rn50_file).items()
             if k.startswith("visual.")}
    save_file(state, str(tmp_path / "rn50.safetensors"))
    a = build_encoder("clip-rn50", tmp_path / "rn50.safetensors")
    b = build_encoder("clip-rn50", rn50_file)
    assert torch.equal(a.encode(_images(1)), b.encode(_images(1)))


@pytest.mark.slow
def test_rn101_encodes_512(tmp_path):
    torch.save(_official_state("clip-rn101"), tmp_path / "RN101.pt")
    enc = build_encoder("clip-rn101", tmp_path / "RN101.pt")
    feats, states = enc.encode_batch(_images(1), layers=True)
    assert feats.shape == (1, 512) and states.shape == (1, 5, 2048)


def _one_line_error(path) -> str:
    with pytest.raises(ConfigError) as err:
        build_encoder("clip-rn50", path)
    assert len(str(err.value).splitlines()) == 1
    return str(err.value)


def test_missing_key_or_wrong_shape_is_one_line(rn50_file, tmp_path):
    state = torch.load(rn50_file)
    del state["visual.layer3.4.bn2.weight"]
    torch.save(state, tmp_path / "missing.pt")
    assert "1 missing (layer3.4.bn2.weight)" in _one_line_error(tmp_path / "missing.pt")
    state = torch.load(rn50_file)
    state["visual.attnpool.c_proj.weight"] = torch.zeros(512, 2048)  # RN101's projection
    torch.save(state, tmp_path / "wrong.pt")
    msg = _one_line_error(tmp_path / "wrong.pt")
    assert "wrong shape (attnpool.c_proj.weight)" in msg and "refusing" in msg


def test_no_path_says_where_the_weights_are(tmp_path):
    with pytest.raises(ConfigError, match="needs --model-path") as err:
        build_encoder("clip-rn101")
    assert WEIGHT_URLS["clip-rn101"] in str(err.value)
    assert "is not a file" in _one_line_error(tmp_path / "absent.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    assert "not a loadable state dict" in _one_line_error(tmp_path / "junk.pt")


class _Release(torch.nn.Module):
    """Stands in for OpenAI's TorchScript archive: the tower under ``visual``."""

    def __init__(self):
        super().__init__()
        self.visual = build_resnet("clip-rn50")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.visual.stem(x)


def test_loads_a_torchscript_archive(tmp_path):
    torch.manual_seed(1)
    release = _Release()
    with warnings.catch_warnings():  # torch >= 2.9 deprecates TorchScript
        warnings.simplefilter("ignore", DeprecationWarning)
        traced = torch.jit.trace(release.eval(), torch.zeros(1, 3, 8, 8))
        torch.jit.save(traced, str(tmp_path / "RN50.pt"))
    enc = build_encoder("clip-rn50", tmp_path / "RN50.pt")
    assert torch.equal(enc.model.state_dict()["attnpool.q_proj.weight"],
                       release.visual.attnpool.q_proj.weight)
