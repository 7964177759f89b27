"""The encoder registry: MiT-B0..B5, ResNets and timm:<name>; decoders take levels by stride; a variant picks
its encoder and a mismatch is one line at study load naming the encoders that fit."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ablate.errors import ConfigError, StudyError
from ablate.models import build_encoder, build_model, check_encoder_name, list_encoders, register_decoder
from ablate.models.encoders import MIT_CONFIGS, load_mit


def meta_encoder(name):
    with torch.device("meta"):
        return build_encoder(name, pretrained=None)


@pytest.mark.parametrize("size", sorted(MIT_CONFIGS))
def test_mit_b0_to_b5_have_the_papers_widths_and_depths(size):
    enc = meta_encoder(f"mit_{size}")
    assert list(enc.channels) == MIT_CONFIGS[size]["hidden_sizes"] and enc.strides == (4, 8, 16, 32)
    assert list(enc.model.config.depths) == MIT_CONFIGS[size]["depths"]
    # the stage depths are the paper's: B5 has 3 + 6 + 40 + 3 transformer blocks
    assert [len(s.blocks) for s in enc.model.stages] == MIT_CONFIGS[size]["depths"]


def test_resnets_and_any_timm_backbone():
    assert {"resnet18", "resnet34", "resnet50", "resnet101"} <= set(list_encoders())
    assert meta_encoder("resnet50").channels == (64, 256, 512, 1024, 2048)
    convnext = meta_encoder("timm:convnext_tiny")
    assert convnext.strides == (4, 8, 16, 32) and convnext.channels == (96, 192, 384, 768)
    with pytest.raises(ConfigError, match="unknown timm model 'convnext_tinyy'"):
        check_encoder_name("timm:convnext_tinyy")
    with pytest.raises(ConfigError, match="mit_b5.*timm:<any timm model>"):
        check_encoder_name("mit_b9")


def test_the_ladder_takes_the_four_deepest_levels_of_a_resnet():
    model = build_model("all_mlp", num_classes=3, encoder="resnet18").eval()
    assert model.in_index == [1, 2, 3, 4] and model.config["encoder"] == "resnet18"
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 3, 64, 64)


def test_mit_weights_of_another_size_are_refused(tmp_path):
    from transformers import SegformerConfig, SegformerModel

    SegformerModel(SegformerConfig(**MIT_CONFIGS["b0"])).save_pretrained(tmp_path)
    with pytest.raises(ConfigError, match="not mit_b2"):
        load_mit(str(tmp_path), "b2")
    assert load_mit(str(tmp_path), "b0")[0].channels == (32, 64, 160, 256)


@register_decoder("needs_stride_2", strides=(2, 4))
class NeedsStride2(nn.Module):
    def __init__(self, in_channels, num_classes):
        super().__init__()
        self.classifier = nn.Conv2d(in_channels[0], num_classes, 1)

    def forward(self, features):
        return self.classifier(features[0])


def study_text(variant: str, extra: str = "") -> str:
    return ("from ablate.study import Study, Variant\n"
            f"study = Study(name='enc', image_size=64, pretrained=None, {extra}\n"
            f"    variants={{'a': Variant('all_mlp'), 'b': {variant}}}, baseline='a', seeds=[0])\n")


def test_a_level_mismatch_is_one_line_at_load_naming_what_fits(tmp_path):
    from ablate.study import load_study

    path = tmp_path / "s.py"
    path.write_text(study_text("Variant('needs_stride_2', encoder='mit_b1')"))
    with pytest.raises(StudyError) as err:
        load_study(path)
    msg = str(err.value)
    assert "\n" not in msg and "variants.b" in msg and "strides 2, 4" in msg and "no 2" in msg
    assert "encoders that fit: resnet101, resnet18, resnet34, resnet50" in msg


def test_a_setting_typo_and_a_bad_value_fail_at_load(tmp_path):
    from ablate.study import load_study

    path = tmp_path / "s.py"
    path.write_text(study_text("Variant('all_mlp', settings={'embed_dimm': 64})"))
    with pytest.raises(StudyError, match="unknown setting.*embed_dimm.*embed_dim"):
        load_study(path)
    path.write_text(study_text("Variant('all_mlp', settings={'embed_dim': 0})"))
    with pytest.raises(StudyError, match="variants.b: decoder 'all_mlp' on encoder 'mit_b0' does not build"):
        load_study(path)


def test_a_variant_picks_its_encoder_and_the_study_sets_the_default(tmp_path):
    from ablate.study import load_study

    path = tmp_path / "s.py"
    path.write_text(study_text("Variant('all_mlp', encoder='mit_b1')", extra="encoder='resnet18',"))
    study = load_study(path)
    assert study.train_settings("b", seed=0)["encoder"] == "mit_b1"
    assert study.train_settings("a", seed=0)["encoder"] == "resnet18"
    assert study.to_dict()["variants"]["b"]["encoder"] == "mit_b1"
