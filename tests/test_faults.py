"""Faults a new user meets (issue 10, faults 1-8): each is one clear line, the right exit code, nothing lost.

Sweep faults use the fast fake trainer (tests/fake_trainer.py); scheduling, storage, run directory
and CLI are the real ones.
"""

from __future__ import annotations

import errno
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from test_sweep import ablate_run, assert_complete_once, assert_storage_once, fake_env, read_rows, tiny_study

from ablate.cli import main

STUDY = Path(__file__).resolve().parents[1] / "studies" / "progressive_decoder.py"


def run_main(argv, capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    out, err = capsys.readouterr()
    return exit_.value.code, out, err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


# --- fault 1: unusable output locations are refused before any work -----------------------------------------


@pytest.mark.parametrize("kind", ["file", "proc"])
def test_train_out_unusable_is_refused_before_training(tmp_path, capsys, monkeypatch, kind):
    out = {"file": tmp_path / "a_file", "proc": Path("/proc/ablate-x")}[kind]
    if kind == "file":
        out.write_text("not a folder")
    if kind == "proc" and not Path("/proc/self").exists():
        pytest.skip("no /proc here")

    def no_training(*a, **k):
        raise AssertionError("trained although --out is unusable")

    monkeypatch.setattr("ablate.engine.train.train_run", no_training)
    code, _, err = run_main(["train", "--data", str(tmp_path), "--out", str(out), "--quiet"], capsys)
    assert code == 2 and str(out) in one_error_line(err) and "--out" in err


def test_run_out_unusable_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ABLATE_TRAINER", "fake_trainer")
    (tmp_path / "runs").write_text("a file where the run directory's parent should be")
    code, _, err = run_main(["run", str(tiny_study(tmp_path)), "--out", str(tmp_path / "runs"), "--no-progress"],
                            capsys)
    assert code == 2 and "cannot be written" in one_error_line(err)


# --- fault 2: a full disk stops the study with one line; nothing is called recorded unless it is --------------


def test_disk_full_stops_the_study_and_a_rerun_resumes(tmp_path, capsys, monkeypatch):
    import ablate.rundir as rundir

    monkeypatch.setenv("ABLATE_TRAINER", "fake_trainer")
    study = tiny_study(tmp_path, trials=0, seeds=(0, 1))
    out = tmp_path / "runs"
    real = rundir.write_atomic_bytes

    def full(path, data):
        if Path(path).parent.name == "records":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, data)

    monkeypatch.setattr(rundir, "write_atomic_bytes", full)
    code, _, err = run_main(["run", str(study), "--out", str(out), "--no-progress", "--heartbeat", "1"], capsys)
    line = one_error_line(err)
    assert code == 1 and "disk full" in line and str(out / "tiny" / "records") in line
    assert "recorded" not in err.replace("every run recorded so far is kept", "")
    assert not list((out / "tiny" / "records").glob("*.json"))
    monkeypatch.setattr(rundir, "write_atomic_bytes", real)  # space freed: the same command resumes
    code, _, err = run_main(["run", str(study), "--out", str(out), "--no-progress", "--heartbeat", "1"], capsys)
    assert code == 0, err
    rows = assert_complete_once(out / "tiny", trials=0, seeds=(0, 1))
    assert {r["status"] for r in rows} == {"ok"}


# --- fault 3: seeds checked at load; a systematic failure stops the study; --retry-failed ---------------------


@pytest.mark.parametrize("seeds", ["[-1, -2]", "[0, 0]", "[True]", "[1.5]"])
def test_bad_seeds_are_refused_at_load(tmp_path, capsys, seeds):
    study = tiny_study(tmp_path)
    study.write_text(study.read_text().replace("seeds=[0, 1, 2]", f"seeds={seeds}"))
    code, _, err = run_main(["run", str(study), "--out", str(tmp_path / "runs")], capsys)
    assert code == 2 and "seeds" in one_error_line(err)
    assert not (tmp_path / "runs").exists()


def test_systematic_failure_stops_and_retry_failed_requeues(tmp_path):
    study = tiny_study(tmp_path, trials=0, seeds=(0, 1))
    out = tmp_path / "runs"
    broken = subprocess.run(ablate_run(study, out), env=fake_env(ABLATE_FAKE_ERROR="shape mismatch in fuse"),
                            capture_output=True, text=True, timeout=120)
    assert broken.returncode == 1
    last = broken.stderr.strip().splitlines()[-1]
    assert last.startswith("error: every run of all_mlp failed the same way") and "shape mismatch" in last
    assert "--retry-failed" in last
    again = subprocess.run(ablate_run(study, out), env=fake_env(), capture_output=True, text=True, timeout=120)
    # settled as failed: said with its error and a non-zero exit, never "done" (issue 17 item 2)
    assert again.returncode == 1 and "failed: all_mlp-seed-0: RuntimeError: shape mismatch" in again.stderr
    fixed = subprocess.run(ablate_run(study, out, "--retry-failed"), env=fake_env(), capture_output=True,
                           text=True, timeout=120)
    assert fixed.returncode == 0, fixed.stderr
    rows = assert_complete_once(out / "tiny", trials=0, seeds=(0, 1))
    assert {r["status"] for r in rows} == {"ok"}
    assert_storage_once(f"sqlite:///{out / 'tiny' / 'study.db'}", "tiny", trials=0)


# --- fault 4: claims, metrics and baselines are checked when the study loads ----------------------------------


@pytest.mark.parametrize("claim, bad, valid", [
    ('Claim("skip_fused", "fsp", band=(0.02, 0.03))', "'fsp'", "miou, pixel_acc, mean_acc, fwiou, mean_dice, fps"),
    ('Claim("skip_fused", "miou", band=(0.02, 0.03), baseline="nosuch")', "'nosuch'", "all_mlp, skip_fused"),
    ('Claim("nosuch", "miou", band=(0.02, 0.03))', "'nosuch'", "all_mlp, skip_fused"),
])
def test_claim_typos_are_refused_at_load(tmp_path, capsys, claim, bad, valid):
    study = tiny_study(tmp_path)
    study.write_text(study.read_text().replace('Claim("skip_fused", "miou", band=(0.02, 0.03))', claim))
    code, _, err = run_main(["run", str(study), "--out", str(tmp_path / "runs")], capsys)
    line = one_error_line(err)
    assert code == 2 and bad in line and valid in line


def test_claim_on_a_class_iou_column_is_accepted(tmp_path):
    from ablate.study import load_study

    study = tiny_study(tmp_path)
    study.write_text(study.read_text().replace('"miou", band', '"iou_Pedestrian", band'))
    assert load_study(study).claims[0].metric == "iou_Pedestrian"


# --- fault 5: ablate train --seed -1 / --threads ------------------------------------------------------------


def test_train_negative_seed_is_one_line(tmp_path, capsys):
    code, _, err = run_main(["train", "--seed", "-1", "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "seed" in one_error_line(err)


def test_train_has_threads(tmp_path, capsys):
    code, _, err = run_main(["train", "--threads", "1", "--out", str(tmp_path / "f"), "--data", str(tmp_path / "no")],
                            capsys)
    assert code == 2 and "data" in one_error_line(err)  # --threads parsed; the missing data is the problem


# --- fault 6: emulated bf16 latency is refused with the reason; progress goes to stderr -----------------------


def test_bench_latency_bf16_without_native_support_is_refused(capsys, monkeypatch):
    monkeypatch.setattr("ablate.engine.config.cpu_has_native_bf16", lambda: False)
    code, _, err = run_main(["bench", "latency", str(STUDY), "--preset", "smoke", "--dtype", "bf16"], capsys)
    line = one_error_line(err)
    assert code == 2 and "avx512_bf16" in line and "--dtype fp32" in line


def test_bench_latency_progress_on_stderr(capsys):
    code, out, err = run_main(["bench", "latency", str(STUDY), "--preset", "smoke", "--rounds", "2", "--batch", "1",
                               "--image-size", "32x32", "--threads", "1", "--no-reference", "--json"], capsys)
    assert code == 0
    json.loads(out)  # stdout stays one JSON document
    # each launch is a fresh process that reports its rounds on its own stderr; this process reports launches
    assert re.search(r"latency launch (\d+)/\1 done", err), err


# --- fault 7: checkpoints kept for seed runs only by default; the run dir's size in --list --------------------


@pytest.mark.parametrize("keep, tune_ckpt, seed_ckpt", [("seeds", False, True), ("all", True, True),
                                                         ("none", False, False)])
def test_keep_checkpoints(tmp_path, keep, tune_ckpt, seed_ckpt):
    import fake_trainer

    from ablate.study import load_study
    from ablate.sweep import Sweep, prepare_run_dir

    fake_trainer.CALLS.clear()
    study = load_study(tiny_study(tmp_path, trials=1, seeds=(0,)))
    Sweep(study, prepare_run_dir(study, tmp_path / "runs"), progress=False, heartbeat=1, keep_checkpoints=keep,
          backend=(fake_trainer.train_run, fake_trainer.measure_study_latency)).run()
    asked = {c["run_id"]: c["save_checkpoint"] for c in fake_trainer.CALLS}
    assert asked == {"all_mlp-tune-0": tune_ckpt, "skip_fused-tune-0": tune_ckpt,
                     "all_mlp-seed-0": seed_ckpt, "skip_fused-seed-0": seed_ckpt}


def test_train_run_without_checkpoint_writes_none(synthetic_root, tmp_path):
    from ablate.engine import TrainConfig, train_run

    cfg = TrainConfig(decoder="all_mlp", image_size=(32, 32), epochs=1, max_steps=1, batch_size=4, amp="off")
    row = train_run(cfg, data_root=synthetic_root, out_dir=tmp_path, run_id="r", progress=False,
                    cache_dir=tmp_path / "cache", save_checkpoint=False)
    assert row["status"] == "ok" and (tmp_path / "confusion" / "r.npz").is_file()
    assert not (tmp_path / "checkpoints" / "r.pt").exists()


# --- fault 8: off a terminal, one line per run (and per epoch with -v), no bars ------------------------------


def test_off_a_tty_one_line_per_run_and_per_epoch_with_verbose(tmp_path):
    study = tiny_study(tmp_path, trials=1, seeds=(0,))
    cmd = [c for c in ablate_run(study, tmp_path / "runs") if c != "--no-progress"]
    done = subprocess.run(cmd, env=fake_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr and "\x1b[" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert sorted(line.split(":")[0].split("] ")[-1] for line in lines) == sorted(
        ["all_mlp-tune-0", "skip_fused-tune-0", "all_mlp-seed-0", "skip_fused-seed-0", "latency"])
    cmd_v = [c for c in ablate_run(study, tmp_path / "v") if c != "--no-progress"] + ["-v"]
    verbose = subprocess.run(cmd_v, env=fake_env(), capture_output=True, text=True, timeout=120)
    epoch_lines = [line for line in verbose.stderr.splitlines() if " epoch " in line]
    assert len(epoch_lines) == 4 * 2  # 4 runs x 2 epochs
    assert "\r" not in verbose.stderr


# --- ablate run --workers N (issue 11, item 3) ---------------------------------------------------------------


def test_two_workers_in_one_command(tmp_path):
    study = tiny_study(tmp_path, name="duo", trials=2, seeds=(0, 1, 2))
    out = tmp_path / "runs"
    done = subprocess.run(ablate_run(study, out, "--workers", "2"), env=fake_env(0.3), capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert_complete_once(out / "duo", trials=2, seeds=(0, 1, 2))
    url = f"sqlite:///{out / 'duo' / 'study.db'}"
    assert_storage_once(url, "duo", trials=2)
    from test_sweep import storage_trials

    ran_by = {t.user_attrs.get("worker") for ts in storage_trials(url, "duo").values() for t in ts
              if t.state.is_finished() and "run_id" in t.user_attrs}
    assert len(ran_by) == 2, ran_by  # both worker processes took part


def test_kill_9_of_a_multi_worker_command_resumes(tmp_path):
    import signal
    import time

    study = tiny_study(tmp_path, name="duo", trials=1, seeds=(0, 1))
    out = tmp_path / "runs"
    parent = subprocess.Popen(ablate_run(study, out, "--workers", "2"), env=fake_env(0.5),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, records = time.time() + 60, out / "duo" / "records"
    while not (records.is_dir() and list(records.glob("*.json"))):
        assert time.time() < deadline and parent.poll() is None
        time.sleep(0.1)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    time.sleep(0.5)  # the workers die with their parent
    partial = read_rows(out / "duo" / "results.csv")
    resumed = subprocess.run(ablate_run(study, out, "--workers", "2"), env=fake_env(0.0), capture_output=True,
                             text=True, timeout=180)
    assert resumed.returncode == 0, resumed.stderr
    rows = assert_complete_once(out / "duo", trials=1, seeds=(0, 1))
    kept = {r["run_id"]: r["finished_at"] for r in rows}
    assert all(kept[r["run_id"]] == r["finished_at"] for r in partial)  # finished runs kept, not redone
    assert_storage_once(f"sqlite:///{out / 'duo' / 'study.db'}", "duo", trials=1)


def test_workers_must_be_a_number(tmp_path, capsys):
    code, _, err = run_main(["run", str(tiny_study(tmp_path)), "--out", str(tmp_path / "r"), "--workers", "x"],
                            capsys)
    assert code == 2 and "--workers" in one_error_line(err)


def test_default_workers_is_one_on_cpu():
    from ablate.sweep.workers import default_workers

    assert default_workers("cpu") == 1
    assert os.cpu_count()


@pytest.mark.timeout(90)
@pytest.mark.filterwarnings("ignore:Heartbeat of storage")
def test_a_worker_killed_before_its_first_heartbeat_does_not_hang_the_study(tmp_path):
    """A trial created but never heartbeated (worker killed in between) is failed and redone after the grace period."""
    import time

    import fake_trainer

    from ablate.study import load_study
    from ablate.sweep import Sweep, prepare_run_dir

    study = load_study(tiny_study(tmp_path, trials=0, seeds=(0,)))
    sweep = Sweep(study, prepare_run_dir(study, tmp_path / "runs"), progress=False, heartbeat=1,
                  backend=(fake_trainer.train_run, fake_trainer.measure_study_latency))
    seeds = sweep.optuna_study("all_mlp", "seed")
    seeds.enqueue_trial({"seed": 0}, user_attrs={"params": {}})
    orphan = seeds.ask()  # RUNNING, popped, and no heartbeat ever: its worker "died" right here
    assert orphan.params == {} and seeds.trials[0].state.name == "RUNNING"
    time.sleep(3.5)  # past the grace period (3 heartbeats)
    sweep.run()
    assert_complete_once(sweep.run_dir.root, trials=0, seeds=(0,))
