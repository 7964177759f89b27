"""The real path end to end: the shipped study's smoke preset, shrunk further to stay near a minute.

Same code as `ablate run studies/progressive_decoder.py --preset smoke` (real train_run, real
latency), with two variants, one tuning trial each and two seeds.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

STUDY = Path(__file__).resolve().parents[1] / "studies" / "progressive_decoder.py"

SHRINK = """
import runpy
study = runpy.run_path({path!r})["study"]
study.variants = {{k: v for k, v in study.variants.items() if k in ("all_mlp", "skip_fused")}}
study.claims = [c for c in study.claims if c.variant == "skip_fused"]
smoke = study.presets["smoke"]
study.presets["smoke"] = {{**smoke, "trials": 1, "seeds": [0, 1], "train": {{**smoke["train"], "epochs": 2}},
    "data": {{"kind": "synthetic", "n_train": 8, "n_val": 4, "n_test": 4, "size": (64, 64)}},
    "latency": {{"rounds": 3, "warmup": 1, "threads": 1}}}}
"""


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_smoke_preset_end_to_end(tmp_path):
    from ablate.cli import main

    study = tmp_path / "smoke_study.py"
    study.write_text(SHRINK.format(path=str(STUDY)))
    with pytest.raises(SystemExit) as exit_:
        main(["run", str(study), "--preset", "smoke", "--out", str(tmp_path / "runs"), "--no-progress"])
    assert exit_.value.code == 0
    run = tmp_path / "runs" / "progressive_decoder-smoke"
    results = rows(run / "results.csv")
    assert [(r["variant"], r["phase"], r["seed"]) for r in results] == [
        ("all_mlp", "tune", "0"), ("skip_fused", "tune", "0"),
        ("all_mlp", "seed", "0"), ("all_mlp", "seed", "1"), ("skip_fused", "seed", "0"), ("skip_fused", "seed", "1")]
    assert all(r["status"] == "ok" and 0 <= float(r["miou"]) <= 1 for r in results), results
    assert {r["split"] for r in results if r["phase"] == "seed"} == {"test"}
    assert all(r["image_size"] == "64x64" and r["pretrained"] == "none" for r in results)
    for r in results:  # confusions for all; the smoke preset keeps no checkpoints (its models are 64x64 toys)
        assert (run / "confusion" / f"{r['run_id']}.npz").exists()
        assert not (run / "checkpoints" / f"{r['run_id']}.pt").exists()
    assert len(rows(run / "epochs.csv")) == 2 * len(results)
    latency = rows(run / "latency.csv")
    assert {(r["variant"], r["batch"], r["threads"]) for r in latency} == {
        (v, b, "1") for v in ("all_mlp", "skip_fused") for b in ("1", "4")}
    meta = json.loads((run / "study.json").read_text())
    assert meta["preset"] == "smoke" and meta["baseline"] == "all_mlp" and meta["seeds"] == [0, 1]
    assert meta["claims"][0]["variant"] == "skip_fused"


def test_bench_latency_json(capsys):
    from ablate.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["bench", "latency", str(STUDY), "--preset", "smoke", "--rounds", "3", "--batch", "1",
              "--image-size", "32x32", "--threads", "1", "--launches", "2", "--in-process", "--json"])
    assert exit_.value.code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["baseline"] == "all_mlp" and out["threads"] == 1
    by_variant = {v["variant"]: v for v in out["variants"]}
    # the study's variants, plus the reference rows: HF's own model in fp32 and the fast baseline
    assert set(by_variant) == {"all_mlp", "progressive", "skip_fused", "unet_r34", "hf_segformer_fp32",
                               "all_mlp_fast"}
    assert by_variant["all_mlp"]["ratio_vs_baseline"] == 1.0
    assert out["launches"] == 2 and out["claim_mode"] == "eager"
    assert all(len(v["ratio_per_launch"]) == 2 for n, v in by_variant.items() if n != "all_mlp")
    for v in by_variant.values():
        assert v["ms_ci"][0] <= v["ms_median"] <= v["ms_ci"][1] and (v["height"], v["width"], v["batch"]) == (32, 32, 1)


def test_bench_latency_reference_rows_keep_their_precision():
    """HF's row stays fp32 inside a bf16 run; the fast baseline computes what the baseline computes."""
    import torch

    from ablate.bench.latency import reference_models
    from ablate.models import build_model

    base = build_model("all_mlp", num_classes=11, seed=0).eval()
    refs = reference_models(base, num_classes=11)
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert refs["hf_segformer_fp32"](x).dtype == torch.float32
    with torch.inference_mode():
        torch.testing.assert_close(refs["_fast"].eval()(x), base(x), rtol=1e-4, atol=1e-4)
