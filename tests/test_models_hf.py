"""Pretrained loading: HF checkpoints (full and encoder-only), timm files, and the offline errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ablate.errors import ConfigError
from ablate.models import build_model

transformers = pytest.importorskip("transformers")


def _perturbed(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give zero biases and BN statistics random values, so equality is not a coincidence of init."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in list(model.named_parameters()) + list(model.named_buffers()):
            if name.endswith(("bias", "running_mean")):
                tensor.copy_(0.1 * torch.randn(tensor.shape, generator=gen))
            elif name.endswith("running_var"):
                tensor.copy_(0.5 + torch.rand(tensor.shape, generator=gen))
    return model


@pytest.fixture(scope="module")
def hf_full(tmp_path_factory):
    """A random MiT-B0 SegformerForSemanticSegmentation (11 labels), saved with save_pretrained."""
    torch.manual_seed(0)
    config = transformers.SegformerConfig(num_labels=11)
    hf = _perturbed(transformers.SegformerForSemanticSegmentation(config)).eval()
    path = tmp_path_factory.mktemp("hf_full")
    hf.save_pretrained(path)
    return hf, path


@pytest.mark.parametrize("size", [(64, 64), (75, 49)])
def test_all_mlp_equals_hf_segformer(hf_full, size):
    hf, path = hf_full
    model = build_model("all_mlp", num_classes=11, pretrained=str(path)).eval()
    assert model.config["decode_head_pretrained"] and model.pretrained == str(path)
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        ref = F.interpolate(hf(pixel_values=x).logits, size=size, mode="bilinear", align_corners=False)
        ours = model(x)
    assert ours.shape == ref.shape
    assert (ours - ref).abs().max().item() <= 1e-5


def test_full_checkpoint_gives_only_the_encoder_to_other_decoders(hf_full):
    hf, path = hf_full
    model = build_model("skip_fused", num_classes=11, pretrained=str(path))
    assert not model.config["decode_head_pretrained"]
    ours, theirs = model.encoder.model.state_dict(), hf.segformer.state_dict()
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)


def test_head_with_other_classes_is_not_loaded(hf_full):
    _, path = hf_full
    with pytest.warns(UserWarning, match="encoder only"):
        model = build_model("all_mlp", num_classes=5, pretrained=str(path))
    assert not model.config["decode_head_pretrained"]


def test_encoder_only_checkpoint(tmp_path):
    torch.manual_seed(1)
    hf = _perturbed(transformers.SegformerModel(transformers.SegformerConfig())).eval()
    hf.save_pretrained(tmp_path)
    model = build_model("all_mlp", num_classes=11, pretrained=str(tmp_path)).eval()
    assert not model.config["decode_head_pretrained"]
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        theirs = hf(pixel_values=x, output_hidden_states=True).hidden_states
        ours = model.encoder(x)
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs))
    # the decoder is the seeded random one, as without a checkpoint
    random = build_model("all_mlp", num_classes=11, pretrained=None).decoder.state_dict()
    assert all(torch.equal(v, random[k]) for k, v in model.decoder.state_dict().items())


def test_resnet34_from_a_local_file(tmp_path):
    timm = pytest.importorskip("timm")
    torch.manual_seed(2)
    source = timm.create_model("resnet34")
    torch.save(source.state_dict(), tmp_path / "resnet34.pth")
    model = build_model("unet_r34", num_classes=11, pretrained=str(tmp_path / "resnet34.pth"))
    ours = model.encoder.model.state_dict()
    theirs = source.state_dict()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)


@pytest.mark.parametrize("decoder", ["all_mlp", "unet_r34"])
def test_missing_local_weights_is_one_line(tmp_path, decoder):
    with pytest.raises(ConfigError, match="--pretrained none") as err:
        build_model(decoder, num_classes=11, pretrained=str(tmp_path / "nowhere"))
    assert "\n" not in str(err.value)


def test_directory_without_config_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match="config.json"):
        build_model("all_mlp", num_classes=11, pretrained=str(tmp_path))


def test_image_classification_checkpoint_like_nvidia_mit_b0(tmp_path):
    # nvidia/mit-b0 is a SegformerForImageClassification: its encoder sits under "segformer."
    torch.manual_seed(3)
    config = transformers.SegformerConfig(num_labels=10)
    hf = _perturbed(transformers.SegformerForImageClassification(config)).eval()
    hf.save_pretrained(tmp_path)
    model = build_model("progressive", num_classes=11, pretrained=str(tmp_path))
    ours, theirs = model.encoder.model.state_dict(), hf.segformer.state_dict()
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)
