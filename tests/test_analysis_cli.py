"""`ablate analyze`: verdict table, --json (JSON only on stdout), ad-hoc claims, --baseline, errors."""

from __future__ import annotations

import json
import shutil

import pytest
from analysis_runs import make_run_dir

from ablate.cli import main


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_run_dir(tmp_path_factory.mktemp("cli") / "run", n_seeds=6, n_images=10)


def ablate(capsys, *argv) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_prints_the_verdict_table_and_writes_the_report(run_dir, capsys):
    code, out, _ = ablate(capsys, "analyze", str(run_dir), "--n-boot", "200")
    assert code == 0
    assert "skip_fused miou +2%..+12%" in out and "SUPPORTED" in out
    assert "why:" in out and "report.html" in out
    assert (run_dir / "report" / "verdicts.json").is_file()


def test_json_prints_verdicts_and_nothing_else(run_dir, capsys):
    code, out, _ = ablate(capsys, "analyze", str(run_dir), "--json", "--n-boot", "200", "--no-report")
    assert code == 0
    verdicts = json.loads(out)  # the whole of stdout is one JSON document
    assert verdicts["schema_version"] == 2 and verdicts["n_boot"] == 200
    assert {h["verdict"] for h in verdicts["hypotheses"]} <= {"supported", "refuted", "inconclusive"}
    assert {c["verdict"] for c in verdicts["claims"]} <= {"supported", "refuted", "inconclusive"}


def test_json_equals_the_written_file(run_dir, capsys):
    code, out, _ = ablate(capsys, "analyze", str(run_dir), "--json", "--n-boot", "200", "--seed", "3")
    assert code == 0
    assert json.loads(out) == json.loads((run_dir / "report" / "verdicts.json").read_text())
    assert json.loads(out)["seed"] == 3


def test_ad_hoc_claims_replace_the_studys(run_dir, capsys):
    code, out, _ = ablate(capsys, "analyze", str(run_dir), "--json", "--n-boot", "200", "--no-report",
                          "--alpha", "0.01", "--claim", "skip_fused miou +1%..+20%",
                          "--claim", "progressive miou -0.01..0.01")
    assert code == 0
    verdicts = json.loads(out)
    assert verdicts["alpha"] == 0.01
    claims = {c["claim"]: c for c in verdicts["claims"]}
    assert set(claims) == {"skip_fused miou +1%..+20%", "progressive miou -0.01..+0.01"}
    assert claims["skip_fused miou +1%..+20%"]["relative"] is True
    assert claims["progressive miou -0.01..+0.01"]["relative"] is False


def test_results_only_directory_with_baseline_option(run_dir, tmp_path, capsys):
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(run_dir / "results.csv", bare / "results.csv")
    code, out, _ = ablate(capsys, "analyze", str(bare), "--baseline", "all_mlp", "--n-boot", "200", "--no-report",
                          "--claim", "skip_fused miou +2%..+12%")
    assert code == 0
    assert "baseline: all_mlp" in out and "SUPPORTED" in out


def test_bad_claim_is_a_one_line_user_error(run_dir, capsys):
    code, out, err = ablate(capsys, "analyze", str(run_dir), "--n-boot", "200", "--no-report",
                            "--claim", "skip_fused miou lots")
    assert code == 2 and out == "" and err.startswith("error: ") and err.count("\n") == 1
    assert "cannot read claim" in err


@pytest.mark.parametrize("argv, fragment", [
    (["--baseline", "ghost"], "unknown baseline 'ghost': choose one of all_mlp, progressive, skip_fused, unet_r34"),
    (["--claim", "ghost miou +1%..+2%"], "unknown variant 'ghost': choose one of all_mlp"),
    (["--claim", "skip_fused miou +1%..+2% vs ghost"], "unknown baseline 'ghost'"),
    (["--claim", "skip_fused mIoU +1%..+2%"], "unknown metric 'mIoU': choose one of miou, pixel_acc"),
])
def test_unknown_names_exit_2_naming_the_valid_choices(run_dir, capsys, argv, fragment):
    code, out, err = ablate(capsys, "analyze", str(run_dir), "--no-report", *argv)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert fragment in err


def test_prints_hypotheses_first(run_dir, capsys):
    code, out, _ = ablate(capsys, "analyze", str(run_dir), "--n-boot", "200", "--no-report")
    assert code == 0
    assert out.index("hypotheses:") < out.index("\nclaim ")
    assert "skip_fused vs all_mlp: miou +2%..+12% and fps -25%..-15%" in out


def test_missing_directory_is_a_one_line_error(tmp_path, capsys):
    code, out, err = ablate(capsys, "analyze", str(tmp_path / "nope"))
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and "does not exist" in err


def test_unreadable_results_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "results.csv").write_bytes(b"variant,seed\nx,1\n")
    code, _, err = ablate(capsys, "analyze", str(tmp_path), "--json")
    assert code == 2 and err.startswith("error: ") and "miou" in err and err.count("\n") == 1
