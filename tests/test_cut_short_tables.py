"""A cut-short results.csv (issue 17 item 6): `analyze` rebuilds it from records/ exactly as `ablate run`
does (one function), or, where it cannot write, names the command that does."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest
from test_sweep import ablate_run, fake_env, tiny_study

from ablate.cli import main


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cut")
    study = tiny_study(tmp, trials=0, seeds=(0, 1, 2))
    done = subprocess.run(ablate_run(study, tmp / "runs"), env=fake_env(), capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stderr
    return tmp / "runs" / "tiny"


def cut_inside_a_quoted_field(path: Path) -> bytes:
    whole = path.read_bytes()
    last_quote = whole.rindex(b'"{')  # inside the last row's config JSON: "EOF inside string" for a CSV reader
    path.write_bytes(whole[: last_quote + 5])
    return whole


def analyze(capsys, run_dir):
    with pytest.raises(SystemExit) as info:
        main(["analyze", str(run_dir), "--n-boot", "200", "--no-report"])
    captured = capsys.readouterr()
    return info.value.code, captured.out, captured.err


def test_analyze_rebuilds_a_cut_short_results_csv_as_ablate_run_writes_it(finished_run, capsys):
    whole = cut_inside_a_quoted_field(finished_run / "results.csv")
    code, out, err = analyze(capsys, finished_run)
    assert code == 0, err
    assert "rebuilt results.csv from records/" in out
    assert (finished_run / "results.csv").read_bytes() == whole  # byte for byte what `ablate run` wrote


def test_where_it_cannot_write_it_names_the_command(finished_run, capsys, monkeypatch):
    import ablate.rundir as rundir

    cut_inside_a_quoted_field(finished_run / "results.csv")

    def read_only(path, data):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    monkeypatch.setattr(rundir, "write_atomic_bytes", read_only)
    code, _, err = analyze(capsys, finished_run)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err
    assert "results.csv" in lines[0] and "cut short" in lines[0] and "`ablate run`" in lines[0]
    assert "EOF inside string" not in err
