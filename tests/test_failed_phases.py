"""A failed phase is never "done" (issue 17 item 2): the latency phase failing (or any run) gives a non-zero exit
with its error printed, ``--list`` names it with its error, ``--retry-failed`` redoes it, ``analyze`` says why
speed is missing."""

from __future__ import annotations

import subprocess
import sys

from test_sweep import ablate_run, fake_env, tiny_study

ERROR = "unknown decoder 'my_head': registered only in the study file"


def analyze(run) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ablate", "analyze", str(run), "--n-boot", "200"],
                          env=fake_env(), capture_output=True, text=True, timeout=300)


def test_failed_latency_phase_exits_non_zero_and_is_named_everywhere(tmp_path):
    study = tiny_study(tmp_path, trials=0, seeds=(0, 1, 2))
    out = tmp_path / "runs"
    failing = fake_env(ABLATE_FAKE_LATENCY_ERROR=ERROR)
    first = subprocess.run(ablate_run(study, out), env=failing, capture_output=True, text=True, timeout=120)
    assert first.returncode == 1, first.stderr
    assert f"failed: latency: RuntimeError: {ERROR}" in first.stderr
    assert "--retry-failed" in first.stderr and "Traceback" not in first.stderr
    assert "done:" not in first.stdout + first.stderr and "error column of results.csv" not in first.stderr

    listing = subprocess.run(ablate_run(study, out, "--list"), env=failing, capture_output=True, text=True)
    assert listing.returncode == 0, listing.stderr
    assert f"failed: latency: RuntimeError: {ERROR}" in listing.stdout

    verdicts = analyze(out / "tiny")
    assert verdicts.returncode == 0, verdicts.stderr
    assert f"the latency phase failed (RuntimeError: {ERROR})" in verdicts.stdout
    assert "--retry-failed" in verdicts.stdout

    again = subprocess.run(ablate_run(study, out, "--retry-failed"), env=failing, capture_output=True, text=True,
                           timeout=120)
    assert again.returncode == 1 and "re-queued 1 failed run(s)" in again.stderr and ERROR in again.stderr

    fixed = subprocess.run(ablate_run(study, out, "--retry-failed"), env=fake_env(), capture_output=True, text=True,
                           timeout=120)
    assert fixed.returncode == 0, fixed.stderr
    assert (out / "tiny" / "latency.csv").is_file() and "failed:" not in fixed.stderr
    assert "latency phase failed" not in analyze(out / "tiny").stdout


def test_a_failed_seed_run_exits_non_zero_with_its_error(tmp_path):
    study = tiny_study(tmp_path, trials=0, seeds=(0, 1, 2))
    done = subprocess.run(ablate_run(study, tmp_path / "runs"), env=fake_env(ABLATE_FAKE_FAIL_SEEDS="1"),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "failed: all_mlp-seed-1: RuntimeError: fake failure for seed 1" in done.stderr
    assert "2 run(s) failed" in done.stderr and "Traceback" not in done.stderr
