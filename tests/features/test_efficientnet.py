"""EfficientNet-Lite0: TF padding, strict loading of the real weights, sensible classes."""

from __future__ import annotations

import csv

import pytest
import torch
import torch.nn.functional as F

from mfmrec.errors import ConfigError
from mfmrec.features.efficientnet import (
    LAYER_DIMS,
    EfficientNetEncoder,
    EfficientNetLite0,
    SameConv2d,
    load_efficientnet_lite0,
)
from mfmrec.features.images import load_image

# ImageNet-1k class indices
FOOTWEAR = {502, 514, 630, 770, 774}  # clog, cowboy boot, loafer, running shoe, sandal
SUNGLASSES = {836, 837}
JERSEY = 610  # "jersey, T-shirt, tee shirt"


@pytest.fixture(scope="module")
def encoder():
    torch.manual_seed(0)
    return EfficientNetEncoder()


def test_same_padding_is_asymmetric_like_tensorflow():
    torch.manual_seed(0)
    conv = SameConv2d(1, 1, 3, stride=2)
    x = torch.randn(1, 1, 4, 4)
    # SAME for 4 -> 2 with k=3, s=2 pads 1 pixel in total: none before, one after
    ref = F.conv2d(F.pad(x, (0, 1, 0, 1)), conv.weight, stride=2)
    assert torch.equal(conv(x), ref) and conv(x).shape == (1, 1, 2, 2)
    conv5 = SameConv2d(1, 1, 5, stride=1)
    assert torch.equal(conv5(x), F.conv2d(F.pad(x, (2, 2, 2, 2)), conv5.weight))


def test_packaged_weights_load_strictly(encoder):
    model = encoder.model
    assert sum(p.numel() for p in model.parameters()) == 4_652_008  # EfficientNet-Lite0
    assert not any(m.training for m in model.modules())
    assert len(model._blocks) == 16


def test_random_network_shapes_and_layer_widths():
    torch.manual_seed(0)
    net = EfficientNetLite0().eval()
    with torch.no_grad():
        pooled = net.forward_layers(torch.randn(2, 3, 64, 64))
    assert [p.shape[1] for p in pooled] == list(LAYER_DIMS)
    assert net(torch.randn(1, 3, 64, 64)).shape == (1, 1000)


def test_wrong_weights_are_a_clear_error(tmp_path):
    torch.save({"_fc.weight": torch.zeros(2, 2)}, tmp_path / "w.pth")
    with pytest.raises(ConfigError, match="not EfficientNet-Lite0 weights"):
        load_efficientnet_lite0(tmp_path / "w.pth")
    with pytest.raises(ConfigError, match="is not a file"):
        load_efficientnet_lite0(tmp_path / "absent.pth")


def _photos(shared, article_type: str, k: int = 6) -> list:
    root = shared / "data" / "fashion-products"
    with (root / "styles.csv").open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["articleType"] == article_type][:k]
    return [load_image(root / "images" / r["image"]) for r in rows]


@pytest.mark.parametrize(("article_type", "classes"), [
    ("Sports Shoes", FOOTWEAR), ("Casual Shoes", FOOTWEAR), ("Sunglasses", SUNGLASSES),
    ("Tshirts", {JERSEY}),
])
def test_real_photos_get_sensible_imagenet_classes(shared, encoder, article_type, classes):
    logits = encoder.classify(_photos(shared, article_type))  # (6, 1000)
    top1 = logits.argmax(dim=-1).tolist()
    assert sum(c in classes for c in top1) >= 5, top1


def test_features_are_the_classifier_input_and_layers_are_padded(shared, encoder):
    photos = _photos(shared, "Watches", k=2)
    feats, layers = encoder.encode_batch(photos, layers=True)
    assert feats.shape == (2, 1280) and layers.shape == (2, 9, 1280)
    assert torch.allclose(encoder.model._fc(feats), encoder.classify(photos), atol=1e-4)
    assert torch.equal(layers[:, -1], feats)
    assert torch.count_nonzero(layers[:, 0, 32:]) == 0  # stem is 32 wide, zero-padded
    assert (feats >= 0).all()  # pooled ReLU6 activations
