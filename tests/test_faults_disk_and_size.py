"""Faults that used to end in a traceback (issue 17 item 3): too small an image for the encoder, a full disk
while the synthetic data is written, and `analyze` on a full disk or a read-only run directory.

A full disk is simulated by making writes raise OSError(ENOSPC); a read-only folder by making the write
probe raise OSError(EROFS) (the tests may run as root, for whom chmod does not stop writes)."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

import pytest
from analysis_runs import make_run_dir

from ablate.cli import main


def ablate(capsys, *argv) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in argv])
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


# --- image size ------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", ["7", "16"])
def test_train_too_small_an_image_is_one_line_naming_the_smallest_size(tmp_path, capsys, size):
    code, _, err = ablate(capsys, "train", "--data", tmp_path, "--image-size", size, "--pretrained", "none",
                          "--out", tmp_path / "out", "--quiet")
    line = one_line_error(err)
    assert code == 2 and f"{size}x{size} is too small" in line and "at least 29x29" in line and "32" in line


def test_smallest_size_agrees_with_a_real_forward():
    """The meta-device probe against a real CPU forward of MiT (random init): 28 fails, 29 runs."""
    import torch

    from ablate.models import build_model
    from ablate.models.input_size import smallest_input_size

    assert smallest_input_size("all_mlp") == 29
    assert smallest_input_size("unet_r34") == 1  # a ResNet takes anything
    model = build_model("all_mlp", num_classes=2, pretrained=None).eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, 29, 29))
        with pytest.raises(RuntimeError):
            model(torch.zeros(1, 3, 28, 28))


# --- full disk while the synthetic data is written ------------------------------------------------------


def fill_disk_after(monkeypatch, n_writes: int) -> None:
    """PIL's image writes succeed ``n_writes`` times, then the disk is full."""
    from PIL import Image

    real, count = Image.Image.save, [0]

    def save(self, fp, *args, **kwargs):
        count[0] += 1
        if count[0] > n_writes:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(fp))
        return real(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", save)


STUDY = """
from ablate.study import Claim, Study, Variant
study = Study(name="full", data={"kind": "synthetic", "n_train": 4, "n_val": 2, "n_test": 2, "size": (32, 32)},
              image_size=(32, 32), pretrained=None, variants={"all_mlp": Variant("all_mlp"),
              "skip_fused": Variant("skip_fused")}, baseline="all_mlp", train={"epochs": 1, "batch_size": 2},
              seeds=[0, 1, 2], claims=[Claim("skip_fused", "miou", band=(0.02, 0.03))])
"""


def test_full_disk_while_writing_synthetic_data_is_one_line_and_leaves_no_temp_folder(tmp_path, capsys,
                                                                                        monkeypatch):
    study = tmp_path / "full.py"
    study.write_text(STUDY)
    fill_disk_after(monkeypatch, 3)
    code, _, err = ablate(capsys, "run", study, "--out", tmp_path / "runs", "--no-progress")
    line = one_line_error(err)
    assert code == 1 and "disk full while writing the synthetic dataset" in line
    run = tmp_path / "runs" / "full"
    assert not list(run.glob(".data-*")) and not (run / "data").exists()  # nothing half-written is kept


# --- analyze: read-only run directory, full disk --------------------------------------------------------


@pytest.fixture
def run_dir(tmp_path):
    return make_run_dir(tmp_path / "run", n_seeds=4, n_images=6)


def test_analyze_a_read_only_run_directory_says_so_before_computing_and_report_dir_writes_elsewhere(
        run_dir, tmp_path, capsys, monkeypatch):
    import ablate.rundir as rundir

    real = tempfile.mkstemp

    def read_only(*args, dir=None, **kwargs):
        if dir is not None and Path(dir).resolve() == run_dir.resolve():
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(dir))
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(rundir.tempfile, "mkstemp", read_only)
    code, _, err = ablate(capsys, "analyze", run_dir, "--n-boot", "200")
    line = one_line_error(err)
    assert code == 2 and "cannot be written (Read-only file system)" in line and "--report-dir" in line
    assert not (run_dir / "report").exists()
    elsewhere = tmp_path / "elsewhere" / "report"
    code, out, err = ablate(capsys, "analyze", run_dir, "--n-boot", "200", "--report-dir", elsewhere)
    assert code == 0, err
    assert (elsewhere / "report.html").is_file() and (elsewhere / "verdicts.json").is_file()
    assert str(elsewhere / "report.html") in out


def test_analyze_on_a_full_disk_keeps_the_previous_report_whole(run_dir, capsys, monkeypatch):
    import ablate.rundir as rundir

    code, _, err = ablate(capsys, "analyze", run_dir, "--n-boot", "200")
    assert code == 0, err
    before = {p.relative_to(run_dir): p.read_bytes() for p in (run_dir / "report").rglob("*") if p.is_file()}
    real = rundir.write_atomic_bytes

    def full(path, data):
        if Path(path).name == "report.html":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(path, data)

    monkeypatch.setattr(rundir, "write_atomic_bytes", full)
    code, _, err = ablate(capsys, "analyze", run_dir, "--n-boot", "200", "--seed", "1")
    line = one_line_error(err)
    assert code == 1 and "disk full while writing the report" in line
    after = {p.relative_to(run_dir): p.read_bytes() for p in (run_dir / "report").rglob("*") if p.is_file()}
    assert after == before  # the old report, whole
    assert not [p.name for p in run_dir.iterdir() if p.name.startswith(".report-")]  # no temp folder left


def test_a_full_disk_anywhere_is_one_line_not_a_traceback(tmp_path, monkeypatch, capsys):
    # seen with a real full tmpfs: SQLite's "database or disk is full" from Optuna's storage, wrapped by SQLAlchemy
    import sqlite3

    import pytest

    from ablate.cli import main

    def full(*args, **kwargs):
        try:
            raise sqlite3.OperationalError("database or disk is full")
        except sqlite3.OperationalError as exc:
            raise RuntimeError("(sqlite3.OperationalError) database or disk is full\n[SQL: CREATE TABLE ...]") from exc

    monkeypatch.setenv("ABLATE_TRAINER", "fake_trainer")
    monkeypatch.setattr("ablate.sweep.scheduler.make_storage", full)
    from test_sweep import tiny_study

    with pytest.raises(SystemExit) as exit_:
        main(["run", str(tiny_study(tmp_path)), "--out", str(tmp_path / "runs"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 1 and len(err) == 1, err
    assert err[0].startswith("error: disk full") and "database or disk is full" in err[0] and "Traceback" not in err[0]


def test_torchvision_built_for_another_torch_is_one_line(tmp_path, monkeypatch, capsys):
    # seen in a fresh venv: CPU torch 2.13 from a local wheel beside PyPI's torchvision 0.28 (built for CUDA torch)
    import pytest

    from ablate.cli import main

    def broken(*args, **kwargs):
        raise RuntimeError("operator torchvision::nms does not exist")

    monkeypatch.setattr("ablate.study.definition.load_study", broken)
    from test_sweep import tiny_study

    with pytest.raises(SystemExit) as exit_:
        main(["run", str(tiny_study(tmp_path)), "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1 and "does not match torch" in err[0] and "--index-url" in err[0], err
