"""Study files: the shipped study loads under every preset; malformed files are one-line errors (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ablate.errors import StudyError
from ablate.study.definition import Claim, Study, load_study, resolved_study

STUDY = Path(__file__).resolve().parents[1] / "studies" / "progressive_decoder.py"

GOOD = """
from optuna.distributions import FloatDistribution
from ablate.study import Claim, Study, Variant
study = Study(
    name="t", image_size=(32, 32), pretrained=None,
    variants={"all_mlp": Variant("all_mlp"), "skip_fused": Variant("skip_fused")},
    baseline="all_mlp", train={"epochs": 1}, trials=2, seeds=[0, 1],
    search_space={"lr": FloatDistribution(1e-5, 1e-3, log=True)},
    claims=[Claim("skip_fused", "miou", band=(0.02, 0.03))],
    presets={"smoke": {"trials": 1}},
)
"""


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "study_file.py"
    path.write_text(text)
    return path


def test_shipped_study_presets():
    full = load_study(STUDY)
    assert full.baseline == "all_mlp" and set(full.variants) >= {"all_mlp", "progressive", "skip_fused", "unet_r34"}
    assert full.image_size == (256, 256) and full.trials > 0
    claims = {(c.variant, c.metric): c for c in full.claims}
    assert claims[("skip_fused", "miou")].band == (0.02, 0.03) and claims[("skip_fused", "miou")].relative
    assert claims[("progressive", "fps")].band == (-0.25, -0.15)
    paper = load_study(STUDY, preset="paper")
    assert paper.trials == 0 and not paper.tunes("skip_fused")
    cfg = paper.train_settings("skip_fused", seed=3)
    assert (cfg["batch_size"], cfg["epochs"], cfg["optimizer"], cfg["lr"], cfg["image_size"]) == (
        4, 15, "adam", 1e-4, (256, 256))
    assert cfg["augment"] is False and cfg["poly_power"] == 0.0  # plain Adam, no augmentation, as reported
    smoke = load_study(STUDY, preset="smoke")
    assert smoke.data["kind"] == "synthetic" and smoke.image_size == (64, 64) and smoke.trials == 2
    assert 2 <= len(smoke.seeds) <= 3 and smoke.train["epochs"] <= 4
    resolved = resolved_study(smoke)
    assert resolved["preset"] == "smoke" and resolved["baseline"] == "all_mlp"
    assert resolved["claims"][0] == Claim("skip_fused", "miou", band=(0.02, 0.03)).to_dict()


def test_settings_merge_order(tmp_path):
    study = load_study(write(tmp_path, GOOD.replace('Variant("skip_fused")',
                                                      'Variant("skip_fused", {"lr": 5e-4, "embed_dim": 64})')))
    cfg = study.train_settings("skip_fused", {"lr": 1e-3}, seed=7)
    assert cfg["lr"] == 1e-3 and cfg["decoder_cfg"] == {"embed_dim": 64} and cfg["seed"] == 7
    assert study.train_settings("skip_fused", seed=0)["lr"] == 5e-4


BROKEN = {
    "syntax": ("study = Study(\n", "syntax error"),
    "no_study": ("x = 1\n", "study: expected"),
    "missing_field": (GOOD.replace('baseline="all_mlp", ', ""), "baseline: expected this field"),
    "unknown_decoder": (GOOD.replace('Variant("skip_fused")', 'Variant("nope")'), "variants.skip_fused.decoder"),
    "bad_band": (GOOD.replace("band=(0.02, 0.03)", "band=(0.03, 0.02)"), "claim skip_fused miou +3%..+2%: the band's lower bound"),
    "baseline_not_variant": (GOOD.replace('baseline="all_mlp"', 'baseline="unet"'), "baseline: expected one of"),
    "claim_unknown_variant": (GOOD.replace('Claim("skip_fused"', 'Claim("ghost"'), "claims[0]: claim ghost miou"),
    "bad_space": (GOOD.replace('FloatDistribution(1e-5, 1e-3, log=True)', "[1, 2]"), "search_space.lr"),
    "unknown_train_field": (GOOD.replace('{"epochs": 1}', '{"epoch": 1}'), "train.epoch"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_malformed_study_is_one_line(tmp_path, case):
    text, expected = BROKEN[case]
    if case == "unknown_decoder":
        pytest.importorskip("ablate.models").list_decoders()
    path = write(tmp_path, text)
    with pytest.raises(StudyError) as err:
        load_study(path)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg and expected in msg, msg


def test_unknown_preset(tmp_path):
    with pytest.raises(StudyError, match=r"preset: unknown preset 'huge'; this study defines: smoke"):
        load_study(write(tmp_path, GOOD), preset="huge")


@pytest.mark.parametrize("case", ["missing_field", "bad_band", "baseline_not_variant", "unknown_preset"])
def test_cli_exit_2(tmp_path, capsys, case):
    from ablate.cli import main

    text, args = (GOOD, ["--preset", "huge"]) if case == "unknown_preset" else (BROKEN[case][0], [])
    path = write(tmp_path, text)
    with pytest.raises(SystemExit) as exit_:
        main(["run", str(path), "--out", str(tmp_path / "runs"), *args])
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2
    assert err.startswith("error: ") and len(err.splitlines()) == 1 and str(path) in err
    assert not (tmp_path / "runs").exists()


def test_study_is_plain_data():
    assert Study().trials == 0  # every field has a default, so a missing one is reported by load_study


def test_old_spec_name_still_imports_with_a_warning():
    import importlib
    import sys
    import warnings

    sys.modules.pop("ablate.spec", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        spec = importlib.import_module("ablate.spec")
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)
    from ablate.spec.study import Study as OldStudy

    from ablate.study import Study
    assert spec.Study is Study and OldStudy is Study
