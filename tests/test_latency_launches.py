"""Latency over launches: rows carry launch and mode, order random per round and seeded, per-launch ratios."""

from __future__ import annotations

import functools
import math

import pytest
import torch
from torch import nn

from ablate.engine.latency import measure_latency, measure_launches, round_order
from ablate.engine.latency_stats import launch_ratio_table, per_launch_log_ratios
from ablate.errors import ConfigError
from ablate.rundir import LATENCY_COLUMNS


def tiny_models() -> dict:
    torch.manual_seed(0)
    return {"a": nn.Conv2d(3, 4, 3, padding=1), "b": nn.Conv2d(3, 4, 1), "c": nn.Conv2d(3, 8, 3, padding=1)}


def test_round_order_is_a_seeded_permutation_that_varies():
    names = ["a", "b", "c", "d"]
    orders = [tuple(round_order(names, seed=0, launch=launch, round_=r)) for launch in range(3) for r in range(10)]
    assert all(sorted(o) == names for o in orders)
    assert len(set(orders)) > 5  # not a fixed A B C D
    assert orders == [tuple(round_order(names, seed=0, launch=la, round_=r)) for la in range(3) for r in range(10)]
    assert orders != [tuple(round_order(names, seed=1, launch=la, round_=r)) for la in range(3) for r in range(10)]


def test_rows_follow_the_drawn_order_and_carry_launch_and_mode():
    rows = measure_latency(tiny_models(), batch=2, image_size=(8, 12), rounds=6, warmup=1, threads=1, launch=2,
                           seed=5)
    assert set(LATENCY_COLUMNS) - {"launch_kind"} <= set(rows[0])
    assert all(r["launch"] == 2 and r["mode"] == "eager" for r in rows)
    for r in range(6):
        assert [x["variant"] for x in rows if x["round"] == r] == round_order("abc", seed=5, launch=2, round_=r)


def test_launches_in_process_build_fresh_models_each_launch():
    built = []

    def build():
        built.append(1)
        return tiny_models()

    setting = dict(batch=1, image_size=8, rounds=3, warmup=1, threads=1)
    rows = measure_launches(build, launches=3, settings=[setting, {**setting, "batch": 2}], fresh_process=False)
    assert len(built) == 3
    assert {(r["launch"], r["batch"]) for r in rows} == {(la, b) for la in range(3) for b in (1, 2)}
    assert len(rows) == 3 * 2 * 3 * 3 and all(r["launch_kind"] == "in-process" for r in rows)


def _module_level_models():  # a fresh process imports this by name
    return tiny_models()


def test_launches_in_fresh_processes():
    setting = dict(batch=1, image_size=8, rounds=2, warmup=1, threads=1)
    rows = measure_launches(_module_level_models, launches=2, settings=[setting])
    assert {r["launch"] for r in rows} == {0, 1} and all(r["launch_kind"] == "process" for r in rows)


def test_bad_mode_fails_before_any_launch():
    with pytest.raises(ConfigError, match="graph"):
        measure_launches(functools.partial(pytest.fail, "built"), launches=2,
                         settings=[dict(batch=1, image_size=8, mode="graph", device="cpu")])
    with pytest.raises(ConfigError, match="unknown latency mode"):
        measure_latency(tiny_models(), batch=1, image_size=8, mode="fast")


def test_per_launch_log_ratio_is_the_mean_paired_log_ratio():
    rows = []
    for launch, (base, var) in enumerate([((10, 12), (20, 18)), ((8, 8), (4, 4))]):
        for r in range(2):
            rows += [{"variant": "base", "launch": launch, "round": r, "ms_per_image": base[r]},
                     {"variant": "v", "launch": launch, "round": r, "ms_per_image": var[r]}]
    logs = per_launch_log_ratios(rows, "v", "base")
    assert logs[0] == pytest.approx((math.log(10 / 20) + math.log(12 / 18)) / 2)
    assert logs[1] == pytest.approx(math.log(2))
    common = dict(mode="eager", dtype="fp32", batch=1, height=8, width=8, device="cpu")
    table = {t["variant"]: t for t in launch_ratio_table([{**r, **common} for r in rows], "base")}
    assert table["v"]["ratio_geomean"] == pytest.approx(math.exp((logs[0] + logs[1]) / 2))
    assert table["v"]["launches"] == 2 and table["base"]["ratio_geomean"] == 1.0


@pytest.mark.slow
def test_compiled_mode_runs_on_cpu():
    """torch.compile (inductor, C++ codegen) on a tiny model; slow: compiling takes tens of seconds here."""
    models = {"a": nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())}
    rows = measure_latency(models, batch=1, image_size=8, rounds=2, warmup=1, threads=1, mode="compiled")
    assert [r["mode"] for r in rows] == ["compiled"] * 2 and all(r["ms_per_image"] > 0 for r in rows)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("mode", ["compiled", "graph"])
def test_captured_modes_on_cuda(mode):
    models = {"a": nn.Conv2d(3, 4, 3, padding=1)}
    rows = measure_latency(models, batch=2, image_size=16, rounds=2, warmup=2, device="cuda", mode=mode)
    assert all(r["mode"] == mode and r["ms_per_image"] > 0 for r in rows)


@pytest.mark.parametrize("latency, field", [({"mode": "fast"}, "latency.mode"), ({"launches": 0}, "latency.launches")])
def test_study_rejects_bad_latency_mode_or_launches_at_load(tmp_path, latency, field):
    from ablate.errors import StudyError
    from ablate.study.definition import load_study

    path = tmp_path / "study_file.py"
    path.write_text(f"""
from ablate.study import Study, Variant
study = Study(name="t", image_size=(32, 32), pretrained=None, variants={{"all_mlp": Variant("all_mlp")}},
              baseline="all_mlp", train={{"epochs": 1}}, trials=1, seeds=[0, 1], latency={latency!r})
""")
    with pytest.raises(StudyError, match=field):
        load_study(path)
