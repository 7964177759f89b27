"""The report's opening says what was run before what was found (issue 17 item 8): preset, data (synthetic or
real, and layout), image size and encoder weights; a synthetic / random-init run says it is no evidence about
the real claim. The environment table shows the run's transformers, timm and smp versions."""

from __future__ import annotations

import json

import pandas as pd
from analysis_runs import make_run_dir

from analysis import analyze


def smoke_like(root):
    run = make_run_dir(root, n_seeds=3, n_images=6, latency=False)
    results = pd.read_csv(run / "results.csv")
    results["pretrained"], results["image_size"] = "none", "64x64"
    results.to_csv(run / "results.csv", index=False)
    study = json.loads((run / "study.json").read_text())
    study.update(preset="smoke", data={"kind": "synthetic", "size": [64, 80]}, dataset={"layout": "segnet"},
                 versions={"transformers": "5.25.0", "timm": "1.0.31", "segmentation_models_pytorch": "0.6.0"})
    study.pop("settings", None)
    (run / "study.json").write_text(json.dumps(study))
    return run


def opening(report_md: str) -> str:
    return next(p for p in report_md.split("\n\n") if p.strip() and not p.startswith("#"))


def test_a_smoke_reports_opening_says_what_was_run_first(tmp_path):
    run = smoke_like(tmp_path / "run")
    analyze(run, n_boot=200)
    text = (run / "report" / "report.md").read_text()
    first = opening(text)
    assert first.startswith("What was run: preset smoke, synthetic scenes (segnet layout), 64×64 images, encoder "
                            "from random init. These numbers check that the pipeline works"), first
    assert first.index("What was run") < first.index("Does each variant buy")
    for name, version in (("transformers", "5.25.0"), ("timm", "1.0.31"), ("segmentation_models_pytorch", "0.6.0")):
        assert f"| {name} | {version} |" in text, name


def test_a_real_pretrained_run_gets_no_caution(tmp_path):
    run = make_run_dir(tmp_path / "run", n_seeds=3, n_images=6, latency=False)
    analyze(run, n_boot=200)
    first = opening((run / "report" / "report.md").read_text())
    assert "encoder weights nvidia/mit-b0" in first and "pipeline works" not in first
