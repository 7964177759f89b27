"""ablate run --until-settled: stops early on a large true effect, runs to --max-seeds on none, records its looks."""

from __future__ import annotations

import json
import subprocess

import pytest
from test_sweep import ablate_run, fake_env, read_rows, tiny_study


def effect_env(effects: str, sd: float, **extra) -> dict:
    env = fake_env(**extra)
    env.update(ABLATE_TRAINER="fake_effect_trainer", ABLATE_FAKE_EFFECTS=effects, ABLATE_FAKE_SD=str(sd))
    return env


def run_until_settled(tmp_path, effects, sd, *extra, name="seq", **env_extra):
    study = tiny_study(tmp_path, name=name, trials=0, seeds=(0, 1, 2))
    out = tmp_path / "runs"
    cmd = ablate_run(study, out, "--until-settled", "--max-seeds", "8", "--look-every", "2", *extra)
    done = subprocess.run(cmd, env=effect_env(effects, sd, **env_extra), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return out / name, done


def seeds_trained(run) -> dict:
    rows = read_rows(run / "results.csv")
    out: dict = {}
    for r in rows:
        if r["phase"] == "seed":
            out.setdefault(r["variant"], []).append(int(r["seed"]))
    return {v: sorted(s) for v, s in out.items()}


def test_stops_early_when_the_true_effect_is_clearly_inside_the_band(tmp_path):
    run, done = run_until_settled(tmp_path, "skip_fused=0.025", 0.0005)
    looks = json.loads((run / "looks.json").read_text())
    assert looks["stopped"] and looks["decisions"] == {"skip_fused": "supported"}
    n = looks["looks"][-1]["n"]
    assert n < 8 and looks["design"]["looks"] == [3, 5, 7, 8]
    assert seeds_trained(run) == {"all_mlp": list(range(n)), "skip_fused": list(range(n))}  # no seed wasted
    assert (run / "latency.csv").is_file()  # latency once the seeds stop
    assert "every hypothesis settled" in done.stdout and "skip_fused supported" in done.stdout


def test_runs_to_max_seeds_when_there_is_no_effect_to_settle(tmp_path):
    run, _ = run_until_settled(tmp_path, "skip_fused=0.0", 0.2)
    looks = json.loads((run / "looks.json").read_text())
    assert looks["stopped"] and looks["decisions"] == {"skip_fused": "inconclusive"}
    assert [lk["n"] for lk in looks["looks"]] == [3, 5, 7, 8]
    assert "reached --max-seeds" in looks["stop_reason"]
    assert seeds_trained(run)["skip_fused"] == list(range(8))
    assert all(lk["hypotheses"]["skip_fused"]["decision"] in ("continue", "inconclusive") for lk in looks["looks"])


def test_a_failed_seed_is_replaced_by_the_next(tmp_path):
    run, _ = run_until_settled(tmp_path, "skip_fused=0.0", 0.2, ABLATE_FAKE_FAIL_SEEDS="1")
    looks = json.loads((run / "looks.json").read_text())
    assert 1 not in looks["pairs"] and len(looks["pairs"]) == 8 and looks["pairs"][-1] == 8
    assert looks["looks"][0]["seeds"] == [0, 2, 3]


def test_until_settled_needs_a_seed_claim(tmp_path):
    study = tmp_path / "speed.py"
    study.write_text(tiny_study(tmp_path, name="speed").read_text().replace('"miou"', '"fps"'))
    done = subprocess.run(ablate_run(study, tmp_path / "runs", "--until-settled"), env=effect_env("", 0.01),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "needs a seed-based claim" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow
def test_two_workers_and_a_kill_9_reach_the_same_looks_as_one_clean_run(tmp_path):
    import signal
    import time

    from ablate.study.definition import load_study
    from analysis.sequential.gate import make_gate

    effects, sd = "skip_fused=0.0", 0.2
    (tmp_path / "clean").mkdir()
    clean, _ = run_until_settled(tmp_path / "clean", effects, sd, name="seq")
    study = tiny_study(tmp_path, name="seq", trials=0, seeds=(0, 1, 2))
    out = tmp_path / "runs"
    cmd = ablate_run(study, out, "--until-settled", "--max-seeds", "8", "--look-every", "2")
    env = effect_env(effects, sd, epoch_seconds=0.3)
    workers = [subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    run = out / "seq"
    deadline = time.time() + 120
    while not (run / "looks.json").is_file() or not json.loads((run / "looks.json").read_text())["looks"]:
        assert time.time() < deadline
        time.sleep(0.2)
    workers[0].send_signal(signal.SIGKILL)  # killed after the first look, mid-run
    workers[0].wait()
    _, err = workers[1].communicate(timeout=300)
    assert workers[1].returncode == 0, err
    resumed = subprocess.run(cmd, env=effect_env(effects, sd), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    rows = read_rows(run / "results.csv")
    keys = [(r["variant"], r["seed"]) for r in rows]
    assert len(keys) == len(set(keys))
    mine, theirs = (json.loads((d / "looks.json").read_text()) for d in (run, clean))
    assert mine["looks"] == theirs["looks"] and mine["decisions"] == theirs["decisions"]
    # looks.json is a pure function of the recorded runs
    loaded = load_study(study)
    loaded.seeds = list(range(10))
    assert json.loads(json.dumps(make_gate(loaded, max_seeds=8, look_every=2).evaluate(run)))["looks"] == mine["looks"]


def test_looks_render_for_the_report(tmp_path):
    import numpy as np
    import pandas as pd

    from analysis.sequential.gate import SeedGate, format_looks

    rng = np.random.default_rng(0)
    rows = []
    for s in range(6):
        base = 0.5 + 0.02 * rng.standard_normal()
        rows += [{"variant": "all_mlp", "seed": s, "miou": base, "phase": "seed", "status": "ok"},
                 {"variant": "skip_fused", "seed": s, "miou": base * 1.025 * (1 + 0.0005 * rng.standard_normal()),
                  "phase": "seed", "status": "ok"}]
    pd.DataFrame(rows).to_csv(tmp_path / "results.csv", index=False)
    from ablate.study.claim import Claim

    gate = SeedGate([Claim("skip_fused", "miou", band=(0.02, 0.03)), Claim("skip_fused", "fps", band=(-0.3, -0.1))],
                    "all_mlp", list(range(12)), max_seeds=10, look_every=1)
    assert gate(tmp_path) == 6  # settled at the look at 4 pairs: no seed beyond the 6 recorded
    record = json.loads((tmp_path / "looks.json").read_text())
    text = format_looks(record)
    n = record["looks"][-1]["n"]
    assert record["decisions"] == {"skip_fused": "supported"} and n < 6
    assert f"every hypothesis settled at {n} complete pairs" in text and "**supported**" in text
    assert "| 3 | **" in text and "fps" in text.split("Not decided by seeds:")[1]
