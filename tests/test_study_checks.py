"""A study's variants are built once when it loads (issue 17 item 4): a decoder-setting typo or too small an
image is one line naming the variant, before any run trains (it used to surface after the first run)."""

from __future__ import annotations

import subprocess

import pytest

from ablate.errors import StudyError
from ablate.study import load_study

STUDY = """
from ablate.study import Claim, Study, Variant
study = Study(name="typo", data={{"kind": "synthetic", "n_train": 2, "n_val": 2, "n_test": 2, "size": (32, 32)}},
              image_size={size}, pretrained=None,
              variants={{"all_mlp": Variant("all_mlp"), "skip_fused": Variant("skip_fused", settings={settings})}},
              baseline="all_mlp", train={{"epochs": 1, "batch_size": 2}}, seeds=[0, 1, 2],
              claims=[Claim("skip_fused", "miou", band=(0.02, 0.03))])
"""


def write(tmp_path, *, settings="{}", size="(32, 32)"):
    path = tmp_path / "typo.py"
    path.write_text(STUDY.format(settings=settings, size=size))
    return path


def test_a_setting_typo_fails_at_load_naming_variant_setting_and_valid_ones(tmp_path):
    path = write(tmp_path, settings='{"embed_dimm": 64}')
    with pytest.raises(StudyError) as info:
        load_study(path)
    message = str(info.value)
    assert "variants.skip_fused" in message and "embed_dimm" in message
    assert "valid settings are" in message and "embed_dim" in message.split("valid settings are")[1]
    assert "\n" not in message


def test_too_small_an_image_fails_at_load_naming_the_smallest(tmp_path):
    with pytest.raises(StudyError, match=r"variants\.all_mlp: image size 16x16 is too small .* at least 29x29"):
        load_study(write(tmp_path, size="(16, 16)"))


def test_a_good_study_loads(tmp_path):
    assert set(load_study(write(tmp_path, settings='{"embed_dim": 64}')).variants) == {"all_mlp", "skip_fused"}


def test_ablate_run_refuses_the_typo_before_training(tmp_path):
    import sys

    from test_sweep import fake_env

    out = tmp_path / "runs"
    done = subprocess.run([sys.executable, "-m", "ablate", "run", str(write(tmp_path, settings='{"embed_dimm": 64}')),
                           "--out", str(out), "--no-progress"], env=fake_env(), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and "embed_dimm" in done.stderr and "Traceback" not in done.stderr
    assert not (out / "typo" / "records").exists()  # nothing ran
