"""Studies that grow (issue 17 item 5): adding seeds, variants or claims to a finished study runs only the new
runs; a real change is refused naming each changed field with its old and new value, and --fork runs it in a
new directory that re-uses every finished run whose settings are unchanged."""

from __future__ import annotations

import json
import subprocess

from test_sweep import ablate_run, assert_complete_once, fake_env, read_rows, tiny_study

THIRD = '"skip_fused": Variant("skip_fused"), "progressive": Variant("progressive")'


def run(study, out, *extra):
    return subprocess.run(ablate_run(study, out, *extra), env=fake_env(), capture_output=True, text=True, timeout=180)


def finished(run_dir) -> dict[str, str]:
    """run_id -> finished_at of every recorded run (a rerun would change it)."""
    return {r["run_id"]: r["finished_at"] for r in read_rows(run_dir / "results.csv")}


def test_adding_seeds_variants_and_claims_runs_only_the_new_runs(tmp_path):
    study = tiny_study(tmp_path, trials=0, seeds=(0, 1, 2))
    out = tmp_path / "runs"
    assert run(study, out).returncode == 0
    before = finished(out / "tiny")

    text = study.read_text().replace("seeds=[0, 1, 2]", "seeds=[0, 1, 2, 3, 4]")
    study.write_text(text.replace("band=(0.02, 0.03)", "band=(0.01, 0.03)"))
    grown = run(study, out)
    assert grown.returncode == 0, grown.stderr
    assert "seeds added: [3, 4]" in grown.stderr and "claims changed" in grown.stderr
    after = finished(out / "tiny")
    assert {k: after[k] for k in before} == before  # finished runs kept, not redone
    assert_complete_once(out / "tiny", trials=0, seeds=(0, 1, 2, 3, 4))
    assert json.loads((out / "tiny" / "study.json").read_text())["seeds"] == [0, 1, 2, 3, 4]

    study.write_text(study.read_text().replace('"skip_fused": Variant("skip_fused")', THIRD))
    third = run(study, out)
    assert third.returncode == 0, third.stderr
    assert "variants added: progressive" in third.stderr
    assert {k: finished(out / "tiny")[k] for k in after} == after
    assert_complete_once(out / "tiny", variants=("all_mlp", "skip_fused", "progressive"), trials=0,
                         seeds=(0, 1, 2, 3, 4))
    with open(out / "tiny" / "latency.csv") as f:  # measured again, every variant together
        assert {line.split(",")[0] for line in f.readlines()[1:]} == {"all_mlp", "skip_fused", "progressive"}


def test_a_real_change_names_each_field_and_fork_reuses_what_still_applies(tmp_path):
    study = tiny_study(tmp_path, trials=0, seeds=(0, 1, 2))
    out = tmp_path / "runs"
    assert run(study, out).returncode == 0
    before = finished(out / "tiny")
    study.write_text(study.read_text().replace('"skip_fused": Variant("skip_fused")',
                                               '"skip_fused": Variant("skip_fused", settings={"embed_dim": 128})'))
    refused = run(study, out)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert 'variants.skip_fused.settings: {} -> {"embed_dim": 128}' in refused.stderr
    assert "--out" in refused.stderr and "--fork" in refused.stderr

    forked = run(study, out, "--fork")
    assert forked.returncode == 0, forked.stderr
    assert "3 finished run(s) re-used" in forked.stderr  # all_mlp's three seeds: its settings did not change
    (fork,) = [p for p in out.iterdir() if p.name.startswith("tiny-fork-")]
    rows = assert_complete_once(fork, trials=0, seeds=(0, 1, 2))
    again = {r["run_id"]: r["finished_at"] for r in rows}
    assert all(again[f"all_mlp-seed-{s}"] == before[f"all_mlp-seed-{s}"] for s in range(3))  # re-used
    assert all(again[f"skip_fused-seed-{s}"] != before[f"skip_fused-seed-{s}"] for s in range(3))  # redone
    assert all(json.loads(r["config"]).get("decoder_cfg", {}).get("embed_dim") == 128
               for r in rows if r["variant"] == "skip_fused")
    assert finished(out / "tiny") == before  # the old directory is untouched


def test_the_smoke_preset_keeps_no_checkpoints_unless_asked(tmp_path, monkeypatch):
    """Issue 17 item 9: a smoke run's 64x64 checkpoints were 420 MB of its 424 MB."""
    import fake_trainer
    from click.testing import CliRunner

    from ablate.cli import cli
    from ablate.study import load_study

    assert load_study("studies/progressive_decoder.py", preset="smoke").keep_checkpoints == "none"
    assert load_study("studies/progressive_decoder.py").keep_checkpoints == "seeds"
    study = tiny_study(tmp_path, trials=0, seeds=(0, 1, 2))
    study.write_text(study.read_text().replace("latency={", 'presets={"smoke": {"keep_checkpoints": "none"}},\n'
                                                            '    latency={'))
    monkeypatch.setenv("ABLATE_TRAINER", "fake_trainer")
    for extra, kept in (([], {True}), (["--preset", "smoke"], {False}),
                        (["--preset", "smoke", "--keep-checkpoints", "seeds", "--out", str(tmp_path / "b")], {True})):
        fake_trainer.CALLS.clear()
        done = CliRunner().invoke(cli, ["run", str(study), "--out", str(tmp_path / "a"), "--no-progress", *extra])
        assert done.exit_code == 0, done.output
        assert {c["save_checkpoint"] for c in fake_trainer.CALLS if "run_id" in c} == kept, extra
