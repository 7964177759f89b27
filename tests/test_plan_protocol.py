"""`ablate plan --pilot` on a run that is not a pilot of the study's protocol (issue 17 item 7): the smoke run
(synthetic data, random init, 64x64, judged on test) is named as such, each difference with what it does to
the plan, before the plan's numbers."""

from __future__ import annotations

import json

from click.testing import CliRunner
from test_plan import write_pilot

from ablate.cli import cli

STUDY = """
from ablate.study import Claim, Study, Variant
study = Study(name="real", data={"kind": "camvid"}, image_size=(256, 256), pretrained="nvidia/mit-b0",
              variants={"all_mlp": Variant("all_mlp"), "skip_fused": Variant("skip_fused")}, baseline="all_mlp",
              train={"epochs": 15, "batch_size": 4}, seeds=list(range(10)),
              claims=[Claim("skip_fused", "miou", band=(0.02, 0.03), relative=True)])
"""
SMOKE = {"name": "real", "preset": "smoke", "baseline": "all_mlp", "eval_split": "test",
         "data": {"kind": "synthetic", "n_train": 48, "size": [64, 80]}, "pretrained": None,
         "image_size": [64, 64], "train": {"epochs": 4, "batch_size": 4, "eval_batch_size": 8}}
PILOT = {"name": "real", "preset": "pilot", "baseline": "all_mlp", "eval_split": "val", "data": {"kind": "camvid"},
         "pretrained": "nvidia/mit-b0", "image_size": [256, 256], "train": {"epochs": 15, "batch_size": 4}}


def plan(tmp_path, pilot_study: dict):
    study = tmp_path / "real.py"
    study.write_text(STUDY)
    pilot = write_pilot(tmp_path / "pilot", n_seeds=3)
    (pilot / "study.json").write_text(json.dumps(pilot_study))
    done = CliRunner().invoke(cli, ["plan", str(study), "--pilot", str(pilot), "--seeds", "6"])
    assert done.exit_code == 0, done.output
    return done.output


def test_a_smoke_run_used_as_pilot_is_named_with_each_difference_first(tmp_path):
    out = plan(tmp_path, SMOKE)
    assert out.startswith("NOT A PILOT OF THIS STUDY'S PROTOCOL (it is the 'smoke' preset): 5 difference(s)")
    warnings = [line for line in out.splitlines() if line.startswith("warning: the pilot does not follow")]
    assert len(warnings) == 5, warnings
    text = "\n".join(warnings)
    assert "synthetic scenes, the study on 'camvid'" in text and "say nothing reliable" in text
    assert "random init, the study pretrained nvidia/mit-b0" in text
    assert "image size: the pilot 64x64, the study 256x256" in text and "epochs: the pilot 4, the study 15" in text
    assert "judged on the test split, so that split is no longer unseen" in text


def test_a_pilot_of_the_protocol_gets_no_such_warning(tmp_path):
    out = plan(tmp_path, PILOT)
    assert "NOT A PILOT" not in out and "does not follow the study's protocol" not in out
