"""The sweep with a fast fake trainer: phases, failures, resume after kill -9, concurrent workers.

The fake (tests/fake_trainer.py) replaces only train_run and the latency measurement;
scheduling, Optuna storage, run directory and CLI are the real ones.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

TINY = """
from optuna.distributions import FloatDistribution
from ablate.study import Claim, Study, Variant
study = Study(
    name="{name}",
    data={{"kind": "synthetic", "n_train": 2, "n_val": 2, "n_test": 2, "size": (16, 16)}},
    image_size=(32, 32), pretrained=None,  # the smallest MiT takes is 29 (checked at load)
    variants={{"all_mlp": Variant("all_mlp"), "skip_fused": Variant("skip_fused")}},
    baseline="all_mlp", train={{"epochs": 2, "batch_size": 2}},
    search_space={{"lr": FloatDistribution(1e-5, 1e-3, log=True)}},
    trials={trials}, seeds={seeds},
    claims=[Claim("skip_fused", "miou", band=(0.02, 0.03))],
    latency={{"rounds": 3}},
)
"""


def tiny_study(tmp_path, *, name="tiny", trials=2, seeds=(0, 1, 2)) -> Path:
    path = tmp_path / f"{name}.py"
    path.write_text(TINY.format(name=name, trials=trials, seeds=list(seeds)))
    return path


def fake_env(epoch_seconds=0.0, **extra) -> dict:
    env = dict(os.environ, ABLATE_TRAINER="fake_trainer", ABLATE_FAKE_EPOCH_SECONDS=str(epoch_seconds), **extra)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    return env


def ablate_run(study: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "ablate", "run", str(study), "--out", str(out), "--no-progress",
            "--heartbeat", "1", *extra]


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def assert_complete_once(run: Path, *, variants=("all_mlp", "skip_fused"), trials=2, seeds=(0, 1, 2)):
    rows = read_rows(run / "results.csv")
    keys = [(r["variant"], r["phase"], r["trial"], r["seed"]) for r in rows]
    assert len(keys) == len(set(keys)), "duplicated rows"
    for v in variants:
        assert sorted(int(r["seed"]) for r in rows if r["variant"] == v and r["phase"] == "seed") == list(seeds)
        assert len([r for r in rows if r["variant"] == v and r["phase"] == "tune"]) == trials
    latency = read_rows(run / "latency.csv")
    assert {r["variant"] for r in latency} == set(variants)
    epochs = read_rows(run / "epochs.csv")
    assert len({(e["run_id"], e["epoch"]) for e in epochs}) == len(epochs)
    return rows


def storage_trials(url: str, study_name: str) -> dict:
    import optuna

    from ablate.sweep import with_db_driver

    url = with_db_driver(url)
    return {n: optuna.load_study(study_name=n, storage=url).get_trials(deepcopy=False)
            for n in optuna.get_all_study_names(url) if n.startswith(f"{study_name}/")}


def running_trials(db: Path, optuna_study: str) -> list:
    """RUNNING trials of one Optuna study in a run directory's SQLite storage (none before it exists)."""
    import optuna
    from optuna.trial import TrialState

    if not db.exists():
        return []
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        trials = optuna.load_study(study_name=optuna_study, storage=f"sqlite:///{db}").get_trials(deepcopy=False)
    except Exception:  # not created yet, or the database is being created by the worker
        return []
    return [t for t in trials if t.state == TrialState.RUNNING]


def assert_storage_once(url: str, study_name: str, *, trials=2):
    """Every seed ran exactly once (one COMPLETE), every tune study has exactly ``trials`` finished."""
    from optuna.trial import TrialState

    for name, ts in storage_trials(url, study_name).items():
        done = [t for t in ts if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
        if name.endswith("/seed"):
            seeds = [t.params["seed"] for t in done]
            assert len(seeds) == len(set(seeds)), f"{name}: a seed ran twice: {seeds}"
        elif name.endswith("/tune"):
            assert len(done) == trials, f"{name}: {len(done)} finished trials, budget {trials}"


def test_sweep_in_process_with_a_failing_seed(tmp_path, monkeypatch):
    import fake_trainer

    from ablate.rundir import RunDir
    from ablate.study import load_study
    from ablate.sweep import Sweep, prepare_run_dir

    monkeypatch.setenv("ABLATE_FAKE_FAIL_SEEDS", "1")
    study = load_study(tiny_study(tmp_path))
    run_dir = prepare_run_dir(study, tmp_path / "runs")
    backend = (fake_trainer.train_run, fake_trainer.measure_study_latency)
    Sweep(study, run_dir, progress=False, backend=backend, heartbeat=1).run()
    rows = assert_complete_once(run_dir.root)
    failed = [r for r in rows if r["status"] == "failed"]
    assert {(r["variant"], r["seed"]) for r in failed} == {("all_mlp", "1"), ("skip_fused", "1")}
    assert all("fake failure" in r["error"] for r in failed)
    ok = [r for r in rows if r["status"] == "ok"]
    assert ok and all(0 <= float(r["miou"]) <= 1 for r in ok)
    assert {r["split"] for r in rows if r["phase"] == "seed"} == {"test"}
    assert {r["split"] for r in rows if r["phase"] == "tune"} == {"val"}
    # Seed runs use the variant's best tuned lr.
    best = max((r for r in rows if r["phase"] == "tune" and r["variant"] == "all_mlp"), key=lambda r: r["miou"])
    seed0 = next(r for r in rows if r["run_id"] == "all_mlp-seed-0")
    import json

    assert json.loads(seed0["config"])["lr"] == json.loads(best["config"])["lr"]

    # Running again does nothing: failed runs are settled, finished ones kept.
    before = sorted(p.stat().st_mtime_ns for p in run_dir.records.glob("*.json"))
    monkeypatch.delenv("ABLATE_FAKE_FAIL_SEEDS")
    Sweep(study, RunDir(run_dir.root), progress=False, backend=backend, heartbeat=1).run()
    assert sorted(p.stat().st_mtime_ns for p in run_dir.records.glob("*.json")) == before


def test_list_and_refusal_of_another_study(tmp_path):
    study = tiny_study(tmp_path)
    out = tmp_path / "runs"
    listing = subprocess.run(ablate_run(study, out, "--list"), env=fake_env(), capture_output=True, text=True)
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert lines[0].split() == ["variant", "phase", "done", "running", "failed", "pruned", "to", "do"]
    assert lines[1].split() == ["all_mlp", "tune", "0", "0", "0", "0", "2"]
    subprocess.run(ablate_run(study, out), env=fake_env(), check=True, capture_output=True)
    listing = subprocess.run(ablate_run(study, out, "--list"), env=fake_env(), capture_output=True, text=True)
    assert [line.split()[-1] for line in listing.stdout.splitlines()[1:-1]] == ["0"] * 5
    assert listing.stdout.splitlines()[-1].startswith(f"run directory {out / 'tiny'}: ")  # and its size
    study.write_text(study.read_text().replace("trials=2", "trials=3"))
    other = subprocess.run(ablate_run(study, out), env=fake_env(), capture_output=True, text=True)
    assert other.returncode == 2 and "holds a different study" in other.stderr


def test_kill_9_mid_study_and_resume_through_the_cli(tmp_path):
    study = tiny_study(tmp_path)
    out = tmp_path / "runs"
    run = out / "tiny"
    worker = subprocess.Popen(ablate_run(study, out), env=fake_env(0.4), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while not (run / "records" / "all_mlp-tune-0.json").exists():  # one run done, the second running
        assert time.time() < deadline and worker.poll() is None
        time.sleep(0.1)
    time.sleep(0.3)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    partial = read_rows(run / "results.csv")
    assert [r["run_id"] for r in partial] == ["all_mlp-tune-0"]  # analysable as it is
    resumed = subprocess.run(ablate_run(study, out), env=fake_env(0.0), capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    rows = assert_complete_once(run)
    assert [r["run_id"] for r in rows[:2]] == ["all_mlp-tune-0", "all_mlp-tune-1"]
    assert rows[0]["finished_at"] == partial[0]["finished_at"]  # kept, not redone
    assert_storage_once(f"sqlite:///{run / 'study.db'}", "tiny")
    # The killed trial was failed by its missing heartbeat and retried as a copy of itself.
    trials = storage_trials(f"sqlite:///{run / 'study.db'}", "tiny")["tiny/all_mlp/tune"]
    assert any(t.system_attrs.get("failed_trial") == 1 for t in trials), [(t.number, t.state) for t in trials]


def concurrent_workers(tmp_path, storage: str | None, name: str):
    study = tiny_study(tmp_path, name=name, trials=3, seeds=(0, 1, 2, 3))
    extra = ["--storage", storage] if storage else []
    outs = [tmp_path / "a", tmp_path / "b"] if storage else [tmp_path / "runs"] * 2
    workers = [subprocess.Popen(ablate_run(study, out, *extra), env=fake_env(0.4), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True) for out in outs]
    for w in workers:
        _, err = w.communicate(timeout=180)
        assert w.returncode == 0, err
    url = storage or f"sqlite:///{tmp_path / 'runs' / name / 'study.db'}"
    assert_storage_once(url, name, trials=3)
    for out in set(outs):  # the same command again: nothing runs, the other machine's runs come in
        subprocess.run(ablate_run(study, out, *extra), env=fake_env(), check=True, capture_output=True)
        rows = read_rows(out / name / "results.csv")
        keys = [(r["variant"], r["phase"], r["trial"], r["seed"]) for r in rows]
        assert len(keys) == len(set(keys)) == 2 * (3 + 4), keys
        seed_runs = [r["run_id"] for r in rows if r["phase"] == "seed"]
        assert all((out / name / "confusion" / f"{k}.npz").is_file() for k in seed_runs)
        assert read_rows(out / name / "latency.csv")
    ran_by = {t.user_attrs.get("worker") for ts in storage_trials(url, name).values() for t in ts
              if t.state.is_finished() and "run_id" in t.user_attrs}
    assert len(ran_by) == 2, ran_by  # both workers took part


def test_two_workers_on_sqlite(tmp_path):
    concurrent_workers(tmp_path, None, "duo")


@pytest.mark.postgres
def test_two_workers_on_postgres(tmp_path):
    url = os.environ.get("ABLATE_TEST_POSTGRES")
    if not url:
        pytest.skip("set ABLATE_TEST_POSTGRES=postgresql://... to run (.ci/run starts a server)")
    pytest.importorskip("psycopg2")
    # Two machines: one storage, a run directory each; the study name is fresh in the shared database.
    concurrent_workers(tmp_path, url, f"pg_{uuid.uuid4().hex[:8]}")


def test_a_seed_queued_twice_runs_once(tmp_path):
    """Optuna's enqueue_trial can queue a seed twice when workers start together; it still runs once."""
    import fake_trainer
    import optuna

    from ablate.study import load_study
    from ablate.sweep import Sweep, prepare_run_dir

    study = load_study(tiny_study(tmp_path, trials=0, seeds=(0, 1)))
    run_dir = prepare_run_dir(study, tmp_path / "runs")
    sweep = Sweep(study, run_dir, progress=False, heartbeat=1,
                  backend=(fake_trainer.train_run, fake_trainer.measure_study_latency))
    for _ in range(2):
        sweep.optuna_study("all_mlp", "seed").enqueue_trial({"seed": 0}, user_attrs={"params": {}})
    sweep.run()
    trials = sweep.trials("all_mlp", "seed")
    done = sorted(t.params["seed"] for t in trials if t.state == optuna.trial.TrialState.COMPLETE)
    assert done == [0, 1]
    assert [t.user_attrs.get("skipped") for t in trials if t.state == optuna.trial.TrialState.FAIL] == [
        "seed 0 is taken by another trial"]
    assert_complete_once(run_dir.root, trials=0, seeds=(0, 1))


def test_user_error_stops_the_study_and_resume_redoes_the_run(tmp_path):
    study = tiny_study(tmp_path, trials=0, seeds=(0,))
    out = tmp_path / "runs"
    stopped = subprocess.run(ablate_run(study, out), env=fake_env(ABLATE_FAKE_USER_ERROR="no weights for nvidia/x"),
                             capture_output=True, text=True)
    assert stopped.returncode == 2 and stopped.stderr.strip().splitlines()[-1] == "error: no weights for nvidia/x"
    assert not list((out / "tiny" / "records").glob("*.json"))  # nothing recorded as a failed run
    subprocess.run(ablate_run(study, out), env=fake_env(), check=True, capture_output=True)
    rows = assert_complete_once(out / "tiny", trials=0, seeds=(0,))
    assert {r["status"] for r in rows} == {"ok"}


def test_a_run_recorded_before_a_crash_is_kept_not_retrained(tmp_path):
    """Killed after its record was written but before Optuna heard: the retry reuses the record."""
    import fake_trainer

    from ablate.study import load_study
    from ablate.sweep import Sweep, prepare_run_dir

    study = load_study(tiny_study(tmp_path, trials=0, seeds=(0, 1)))
    run_dir = prepare_run_dir(study, tmp_path / "runs")
    kept = {"study": "tiny", "variant": "all_mlp", "phase": "seed", "run_id": "all_mlp-seed-0", "seed": 0,
            "miou": 0.9, "status": "ok"}
    run_dir.save_run("all_mlp-seed-0", kept, [])

    def train_run(cfg, **kw):
        assert kw["run_id"] != "all_mlp-seed-0", "retrained a finished run"
        return fake_trainer.train_run(cfg, **kw)

    Sweep(study, run_dir, progress=False, heartbeat=1, backend=(train_run, fake_trainer.measure_study_latency)).run()
    rows = assert_complete_once(run_dir.root, trials=0, seeds=(0, 1))
    assert next(float(r["miou"]) for r in rows if r["run_id"] == "all_mlp-seed-0") == 0.9


def test_presets_get_their_own_run_dir_and_pretrained_override_is_recorded(tmp_path):
    import json

    study = tiny_study(tmp_path)
    study.write_text(study.read_text().replace('pretrained=None', 'pretrained="nvidia/mit-b0"').replace(
        'latency={"rounds": 3},', 'latency={"rounds": 3}, presets={"smoke": {"trials": 1, "seeds": [0]}},'))
    out = tmp_path / "runs"
    done = subprocess.run(ablate_run(study, out, "--preset", "smoke", "--pretrained", "none"), env=fake_env(),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    meta = json.loads((out / "tiny-smoke" / "study.json").read_text())
    assert meta["preset"] == "smoke" and meta["pretrained"] is None
    assert not (out / "tiny").exists()  # the study as written keeps its own directory


def test_two_workers_asking_at_once_draw_different_tuning_settings():
    """The TPE seed comes from the trial's own number: two workers that ask before either finishes
    (same history length) draw different settings; the same trial number draws the same settings."""
    import optuna

    from ablate.sweep.scheduler import TrialSeededTPE

    def draws():
        storage = optuna.storages.InMemoryStorage()
        a, b = (optuna.create_study(storage=storage, study_name="s", load_if_exists=True,
                                    sampler=TrialSeededTPE(42)) for _ in range(2))
        ta, tb = a.ask(), b.ask()  # both see an empty history
        return {t.number: t.suggest_float("lr", 1e-5, 1e-3, log=True) for t in (ta, tb)}

    first = draws()
    assert sorted(first) == [0, 1] and first[0] != first[1]
    assert draws() == first  # reproducible per trial number


@pytest.mark.timeout(180)
def test_packed_seeds_two_workers_and_kill_9_resume(tmp_path):
    """--pack-seeds 2: two workers share the seed phase in packs (nothing runs twice); a worker killed
    mid-pack leaves its claimed seeds stale, and the rerun redoes exactly those."""
    import json

    study = tiny_study(tmp_path, name="packs", trials=0, seeds=(0, 1, 2, 3))
    out = tmp_path / "runs"
    run = out / "packs"
    worker = subprocess.Popen(ablate_run(study, out, "--pack-seeds", "2"), env=fake_env(1.0),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Kill once the storage shows the second pack claimed (both its trials RUNNING), not after a fixed
    # sleep: under load the worker may still be between packs (nothing claimed, nothing to re-queue).
    deadline = time.time() + 90
    while len(running_trials(run / "study.db", "packs/skip_fused/seed")) < 2:
        assert time.time() < deadline and worker.poll() is None
        time.sleep(0.05)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    done_before = {p.stem for p in (run / "records").glob("*.json")}
    assert done_before == {"all_mlp-seed-0", "all_mlp-seed-1"}  # a pack is recorded together
    workers = [subprocess.Popen(ablate_run(study, out, "--pack-seeds", "2"), env=fake_env(0.2),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for w in workers:
        _, err = w.communicate(timeout=150)
        assert w.returncode == 0, err
    rows = assert_complete_once(run, trials=0, seeds=(0, 1, 2, 3))
    assert all(json.loads(r["config"])["packed_seeds"] == 2 for r in rows), [r["config"] for r in rows]
    assert_storage_once(f"sqlite:///{run / 'study.db'}", "packs", trials=0)
    killed = storage_trials(f"sqlite:///{run / 'study.db'}", "packs")["packs/skip_fused/seed"]  # the second pack
    requeued = [t.system_attrs["failed_trial"] for t in killed if "failed_trial" in t.system_attrs]
    assert len(set(requeued)) == 2  # its two seeds were re-queued
    assert len(requeued) == 2, requeued  # once each: failing stale runs happens under the pop lock
    assert json.loads((run / "study.json").read_text())["pack_seeds"] == "2"
