"""Decoder registry, shapes at odd sizes, gradients, seeding, params/GFLOPs."""

from __future__ import annotations

import pytest
import torch

from ablate.errors import ConfigError
from ablate.models import (
    build_decoder,
    build_model,
    count_gflops,
    count_params,
    decoder_defaults,
    decoder_encoder,
    list_decoders,
)
from ablate.models.decoders.registry import decoder_class

# the shipped decoders (test files register their own; the registry-wide tests: test_decoder_registry.py)
DECODERS = [d for d in list_decoders() if decoder_class(d).__module__.startswith("ablate.")]
MIT_DECODERS = [d for d in DECODERS if decoder_encoder(d) == "mit_b0"]


@pytest.fixture(scope="module")
def models():
    """One random-init model per decoder that the tests here use, built once."""
    return {name: build_model(name, num_classes=5, seed=0) for name in ("all_mlp", "skip_fused")}


def test_the_ladder_the_reference_and_smps_heads_are_registered():
    assert {"all_mlp", "progressive", "skip_fused", "skip_oneshot", "unet_r34"} <= set(DECODERS)
    assert {"unet", "fpn", "pspnet", "deeplabv3", "deeplabv3plus", "upernet", "manet", "pan",
            "segformer_smp"} <= set(DECODERS)
    assert decoder_encoder("unet_r34") == "resnet34"
    assert decoder_encoder("skip_fused") == "mit_b0"


def test_odd_camvid_like_size():
    # MiT ceil-divides 250x190 into 63x48, 32x24, 16x12, 8x6: nothing is an exact x2
    model = build_model("skip_fused", num_classes=11).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 250, 190)).shape == (1, 11, 250, 190)


def test_unknown_decoder_lists_the_valid_names():
    with pytest.raises(ConfigError) as err:
        build_model("all_mlpp", num_classes=11)
    for name in DECODERS:
        assert name in str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_setting_names_the_valid_settings():
    with pytest.raises(ConfigError, match="embed_dim") as err:
        build_decoder("progressive", [32, 64, 160, 256], 11, skip_channels=32)
    assert "skip_channels" in str(err.value) and "head_channels" in str(err.value)


def test_settings_change_the_widths():
    dec = build_decoder(
        "skip_fused", [32, 64, 160, 256], 11, embed_dim=64, skip_channels=32, head_channels=16
    )
    assert dec.classifier.in_channels == 16
    assert decoder_defaults("all_mlp") == {"embed_dim": 256, "dropout": 0.1}


def test_each_rung_changes_one_thing():
    # modules shared along the ladder keep the same names and shapes as the baseline
    base = {k: v.shape for k, v in build_decoder("all_mlp", [32, 64, 160, 256], 11).state_dict().items()}
    prog = build_decoder("progressive", [32, 64, 160, 256], 11).state_dict()
    assert all(k in prog for k in base if not k.startswith("classifier"))
    assert not any(k.startswith(("skip_", "reduce", "head_refine", "up_chains")) for k in base)
    skip = build_decoder("skip_oneshot", [32, 64, 160, 256], 11).state_dict()
    assert not any(k.startswith(("up_chains", "reduce", "head_refine", "skip_refine")) for k in skip)


def test_encoder_init_is_identical_across_decoders_for_a_seed(models):
    def encoder_state(name, seed):
        return build_model(name, num_classes=11, seed=seed).encoder.state_dict()

    ref = encoder_state("all_mlp", 3)
    for name in MIT_DECODERS[1:]:
        other = encoder_state(name, 3)
        assert all(torch.equal(ref[k], other[k]) for k in ref), name
    different = encoder_state("all_mlp", 4)
    assert not all(torch.equal(ref[k], different[k]) for k in ref)


def test_same_seed_same_model():
    a = build_model("skip_fused", num_classes=11, seed=7).state_dict()
    b = build_model("skip_fused", num_classes=11, seed=7).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_random_init_is_recorded():
    model = build_model("all_mlp", num_classes=11, pretrained="none", embed_dim=128)
    assert model.pretrained == "none" and model.config["pretrained"] == "none"
    assert model.decoder_name == "all_mlp"
    assert model.config["embed_dim"] == 128 and model.config["dropout"] == 0.1
    assert model.training


def test_params_match_the_report(models):
    # the report: SegFormer/MiT-B0 3.7 M, U-Net/ResNet34 24.4 M (11 classes)
    assert round(count_params(build_model("all_mlp", num_classes=11)), 1) == 3.7
    assert round(count_params(build_model("unet_r34", num_classes=11)), 1) == 24.4


def test_gflops_counts_and_keeps_the_mode(models):
    model = models["all_mlp"].train()
    model.encoder.eval()  # a mixed state must survive too
    small = count_gflops(model, (64, 64))
    assert model.training and model.decoder.training and not model.encoder.training
    assert 0 < small < count_gflops(model, (128, 128))
    model.eval()
    count_gflops(model, (64, 64))
    assert not any(m.training for m in model.modules())


def test_gflops_include_mit_attention(models):
    # 3.38 GFLOPs without attention (the fused CPU SDPA kernel is not counted), 3.51 with it
    assert count_gflops(build_model("all_mlp", num_classes=11), (256, 256)) == pytest.approx(3.512, abs=0.01)


def test_complexity_table_has_a_row_per_decoder_and_encoder():
    from ablate.models import complexity_table

    pairs = [("all_mlp", "mit_b0"), ("fpn", "mit_b0"), ("fpn", "resnet18")]
    rows = complexity_table([(64, 64), (32, 48)], num_classes=11, pairs=pairs)
    assert [(r["decoder"], r["encoder"]) for r in rows] == pairs
    assert all(r["gflops_64x64"] > r["gflops_32x48"] > 0 and r["params_m"] > 0 for r in rows)
    assert rows[0]["params_m"] == pytest.approx(3.717, abs=1e-3) and rows[2]["params_m"] > rows[1]["params_m"]
