"""The class count and class names come from the dataset everywhere: no CamVid constant outside the CamVid
layouts, per-class IoU columns named from the dataset, claims checked against its classes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CAMVID_CONSTANTS = re.compile(r"num_classes\s*[:=]\s*11\b|SEGNET_VOID|CAMVID_CLASSES")


def test_no_camvid_class_set_outside_the_camvid_layouts():
    allowed = set((ROOT / "ablate" / "data" / "layouts").glob("camvid*.py"))
    found = []
    for path in sorted([*(ROOT / "ablate").rglob("*.py"), *(ROOT / "analysis").rglob("*.py")]):
        if path in allowed:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if CAMVID_CONSTANTS.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not found, "CamVid's class set outside its layouts:\n" + "\n".join(found)


@pytest.mark.parametrize(("name", "column"), [("Sky", "iou_Sky"), ("traffic light", "iou_traffic_light"),
                                              ("bed ", "iou_bed"), ("chest of drawers", "iou_chest_of_drawers"),
                                              ("crt/screen (old)", "iou_crt_screen_old")])
def test_class_columns_are_sanitised_dataset_names(name, column):
    from ablate.rundir import class_column

    assert class_column(name) == column


FOLDER_STUDY = """
from ablate.study import Claim, Study, Variant
study = Study(
    name="{name}",
    data={{"kind": "folder"{layout}}},
    image_size=(32, 32), pretrained=None,
    variants={{"all_mlp": Variant("all_mlp"), "skip_fused": Variant("skip_fused")}},
    baseline="all_mlp", train={{"epochs": 1, "batch_size": 2}}, trials=0, seeds=[0],
    claims=[Claim("skip_fused", "{metric}", band=(0.02, 0.03))],
    latency={{"rounds": 2}},
)
"""


def _folder_study(tmp_path, metric, *, layout=None):
    from ablate.study import load_study

    path = tmp_path / "study.py"
    extra = f', "layout": "{layout}"' if layout else ""
    path.write_text(FOLDER_STUDY.format(name="f", layout=extra, metric=metric))
    return load_study(path)


def test_per_class_claims_are_checked_against_the_datasets_classes_before_any_run(tmp_path, monkeypatch):
    import fake_trainer
    import layout_writers as W

    from ablate.errors import StudyError
    from ablate.sweep import Sweep, prepare_run_dir

    root = W.write_generic(tmp_path / "g")
    study = _folder_study(tmp_path, "iou_Sky")  # CamVid's name: not a class of this dataset
    calls = []
    backend = (lambda *a, **k: calls.append(a), fake_trainer.measure_study_latency)
    sweep = Sweep(study, prepare_run_dir(study, tmp_path / "runs"), data=str(root), progress=False, backend=backend)
    with pytest.raises(StudyError, match=r"claims\[0\]: .*unknown metric 'iou_Sky'; valid: .*iou_sky, iou_building"):
        sweep.run()
    assert not calls
    study = _folder_study(tmp_path, "iou_vehicle", layout="generic")
    run_dir = prepare_run_dir(study, tmp_path / "runs2")
    Sweep(study, run_dir, data=str(root), progress=False, backend=(fake_trainer.train_run,
                                                                   fake_trainer.measure_study_latency)).run()
    import json

    recorded = json.loads(run_dir.study_json.read_text())["dataset"]
    assert recorded["layout"] == "generic" and recorded["classes"] == list(W.GENERIC_CLASSES)
    assert recorded["ignore_value"] == 255 and recorded["root"] == str(root)


def test_a_run_on_a_five_class_folder_has_five_classes_everywhere(tmp_path):
    import layout_writers as W

    from ablate.engine import TrainConfig, train_run

    root = W.write_generic(tmp_path / "g", shape="flat", n_train=4)
    cfg = TrainConfig(decoder="all_mlp", image_size=(32, 32), epochs=1, batch_size=2, max_steps=1, device="cpu",
                      amp="off", layout="generic")
    row = train_run(cfg, data_root=root, out_dir=tmp_path / "out", run_id="r", progress=False)
    assert row["status"] == "ok", row.get("error")
    assert sorted(k for k in row if k.startswith("iou_")) == sorted(f"iou_{c}" for c in W.GENERIC_CLASSES)


def test_latency_models_and_bench_take_the_datasets_class_count(tmp_path):
    import layout_writers as W
    import torch

    from ablate.cli.bench import _study_num_classes
    from ablate.engine.latency import study_models

    models = study_models(None, {"a": {"decoder": "all_mlp", "decoder_cfg": {"embed_dim": 32}, "num_classes": 19}})
    with torch.no_grad():
        assert models["a"].eval()(torch.zeros(1, 3, 32, 32)).shape == (1, 19, 32, 32)
    study = _folder_study(tmp_path, "miou")
    root = W.write_cityscapes(tmp_path / "cs")
    assert _study_num_classes(study, str(root), None) == 19
    assert _study_num_classes(study, str(W.write_generic(tmp_path / "g")), None) == 5
    study.data = {"kind": "synthetic", "n_train": 1, "n_val": 1, "n_test": 0, "size": (16, 16)}
    assert _study_num_classes(study, None, None) == 11  # the synthetic scenes: SegNet's classes


STUDY_WITH_LAYOUT = '''
from ablate.data.layouts import register_layout
from ablate.data.layouts.generic import GenericLayout
from ablate.study import Claim, Study, Variant


@register_layout("team_folder")
class TeamFolder(GenericLayout):
    """The team's own reading of a generic folder: its first class is not a class (ignored)."""

    def label_indices(self, img, path):
        labels = super().label_indices(img, path)
        labels[labels == 0] = 255
        return labels


study = Study(name="team", data={"kind": "folder", "layout": "team_folder"}, image_size=(32, 32), pretrained=None,
              variants={"a": Variant("all_mlp"), "b": Variant("skip_fused")}, baseline="a",
              train={"epochs": 1, "batch_size": 2}, trials=0, seeds=[0],
              claims=[Claim("b", "iou_vehicle", band=(-0.1, 0.1))], latency={"rounds": 2})
'''


def test_a_layout_defined_in_the_study_file_is_used_by_the_run(tmp_path, monkeypatch):
    import json

    import fake_trainer
    import layout_writers as W

    from ablate.data.layouts import registry
    from ablate.study import load_study
    from ablate.sweep import Sweep, prepare_run_dir

    monkeypatch.setattr(registry, "_LAYOUTS", dict(registry._LAYOUTS))
    path = tmp_path / "team.py"
    path.write_text(STUDY_WITH_LAYOUT)
    study = load_study(path)  # data.layout is validated against the layouts the file registered
    run_dir = prepare_run_dir(study, tmp_path / "runs")
    Sweep(study, run_dir, data=str(W.write_generic(tmp_path / "g")), progress=False,
          backend=(fake_trainer.train_run, fake_trainer.measure_study_latency)).run()
    assert json.loads(run_dir.study_json.read_text())["dataset"]["layout"] == "team_folder"
    rows = (run_dir.root / "results.csv").read_text()
    assert '""layout"": ""team_folder""' in rows  # every run's config says which layout read its data


def test_data_check_reads_with_a_study_files_layout(tmp_path, monkeypatch, capsys):
    import layout_writers as W

    from ablate.cli import main
    from ablate.data.layouts import registry

    monkeypatch.setattr(registry, "_LAYOUTS", dict(registry._LAYOUTS))
    path = tmp_path / "team.py"
    path.write_text(STUDY_WITH_LAYOUT)
    with pytest.raises(SystemExit) as exit_:
        main(["data", "check", str(W.write_generic(tmp_path / "g")), "--study", str(path), "--json"])
    assert exit_.value.code == 0 and '"layout": "team_folder"' in capsys.readouterr().out
