"""smp's heads through ablate: unet_r34 is smp's Unet("resnet34"); refusals are one line before any run."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ablate.errors import ConfigError, StudyError
from ablate.models import build_model, decoder_defaults, register_decoder


def test_unet_r34_is_smps_unet_resnet34_given_the_same_weights():
    import segmentation_models_pytorch as smp

    ours = build_model("unet_r34", num_classes=11, seed=0).eval()
    theirs = smp.Unet("resnet34", encoder_weights=None, classes=11).eval()
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters()) == 24_437_819
    prefixes = {"encoder.": "encoder.model.", "decoder.": "decoder.decoder.", "segmentation_head.": "decoder.head."}
    mapped = {}
    for key, value in theirs.state_dict().items():
        old = next(p for p in prefixes if key.startswith(p))
        mapped[prefixes[old] + key[len(old):]] = value
    assert len(mapped) == len(ours.state_dict())
    ours.load_state_dict(mapped, strict=True)  # every tensor has its counterpart, same names below the prefix
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=1e-5)


def test_settings_are_the_constructors():
    assert decoder_defaults("fpn") == {"pyramid_channels": 256, "segmentation_channels": 128, "dropout": 0.2,
                                       "merge_policy": "add", "interpolation_mode": "nearest"}
    model = build_model("fpn", num_classes=3, pyramid_channels=64, segmentation_channels=32, merge_policy="cat")
    assert model.decoder.head[0].in_channels == 4 * 32
    with pytest.raises(ConfigError, match="unknown setting.*pyramid_chanels.*pyramid_channels"):
        build_model("fpn", num_classes=3, pyramid_chanels=64)


STUDY = """
from ablate.study import Study, Variant
study = Study(name="z", image_size={size}, pretrained=None, train={{"batch_size": {batch}}},
              variants={{"a": Variant("all_mlp"), "b": Variant("{decoder}")}}, baseline="a", seeds=[0, 1])
"""


@pytest.mark.parametrize("decoder,size,batch,expected", [
    ("upernet", 64, 1, "needs a training batch of at least 2 (BatchNorm after global pooling)"),
    ("pan", 64, 2, "use an image size of 256 or more"),
])
def test_refused_at_load_in_one_line(tmp_path, decoder, size, batch, expected):
    from ablate.study import load_study

    path = tmp_path / "s.py"
    path.write_text(STUDY.format(size=size, batch=batch, decoder=decoder))
    with pytest.raises(StudyError) as err:
        load_study(path)
    assert expected in str(err.value) and "variants.b" in str(err.value) and "\n" not in str(err.value)


@register_decoder("calls_f_dropout")
class CallsFDropout(nn.Module):
    """Draws its dropout mask itself, from torch's global generator: packed seeds could not replay it."""

    def __init__(self, in_channels, num_classes, *, p: float = 0.1):
        super().__init__()
        self.p = p
        self.classifier = nn.Conv2d(in_channels[0], num_classes, 1)

    def forward(self, features):
        return self.classifier(F.dropout(features[0], self.p, self.training))


def test_a_decoder_calling_f_dropout_is_refused_for_packing():
    from ablate.engine import TrainConfig
    from ablate.engine.packed import check_packable

    cfgs = [TrainConfig(decoder="calls_f_dropout", image_size=32, seed=s, device="cpu") for s in (0, 1)]
    with pytest.raises(ConfigError, match=r"calls_f_dropout.*bernoulli.*F\.dropout.*--pack-seeds 1"):
        check_packable(cfgs)
    check_packable([TrainConfig(decoder="fpn", image_size=32, seed=s, device="cpu") for s in (0, 1)])


def test_pack_seeds_refuses_before_any_run_starts(tmp_path):
    from test_sweep import fake_env

    path = tmp_path / "s.py"
    path.write_text("from torch import nn\nimport torch.nn.functional as F\nfrom ablate.models import register_decoder\n"
                    "@register_decoder('own_dropout')\nclass D(nn.Module):\n"
                    "    def __init__(self, in_channels, num_classes):\n        super().__init__()\n"
                    "        self.c = nn.Conv2d(in_channels[0], num_classes, 1)\n"
                    "    def forward(self, f):\n        return self.c(F.dropout(f[0], 0.1, self.training))\n"
                    + STUDY.format(size=32, batch=2, decoder="own_dropout"))
    done = subprocess.run([sys.executable, "-m", "ablate", "run", str(path), "--out", str(tmp_path / "runs"),
                           "--pack-seeds", "2", "--no-progress"], env=fake_env(), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "--pack-seeds 2: variant b" in done.stderr and "F.dropout" in done.stderr
    assert not (tmp_path / "runs" / "z" / "results.csv").exists()


def test_bench_train_takes_any_registered_name_and_lists_them():
    from ablate.bench.train_speed import run_bench

    with pytest.raises(ConfigError, match="unknown decoder 'fpnn': choose one of .*upernet"):
        run_bench("/nowhere", decoder="fpnn")
