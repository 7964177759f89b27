"""A study's own decoder, in a module beside the study file, reaches every process that builds models:
the sweep's --workers, a kill -9 and resume, the latency launches (fresh processes), `ablate train --study`."""

from __future__ import annotations

import json
import signal
import subprocess
import textwrap
import time

import pytest
from test_sweep import ablate_run, fake_env, read_rows

from ablate.errors import StudyError

HEADS = textwrap.dedent('''
    import torch.nn.functional as F
    from torch import nn

    from ablate.models import register_decoder


    @register_decoder("{name}")
    class TinyFPN(nn.Module):
        def __init__(self, in_channels, num_classes, *, width: int = 8):
            super().__init__()
            self.lateral = nn.ModuleList(nn.Conv2d(c, width, 1) for c in in_channels)
            self.classifier = nn.Conv2d(width, num_classes, 1)

        def forward(self, features):
            x = self.lateral[-1](features[-1])
            for lateral, f in zip(self.lateral[-2::-1], features[-2::-1]):
                x = lateral(f) + F.interpolate(x, size=f.shape[-2:], mode="bilinear", align_corners=False)
            return self.classifier(x)
''')

STUDY = textwrap.dedent('''
    import heads_{name}  # a module beside this file
    from ablate.study import Study, Variant

    study = Study(
        name="lab", data={{"kind": "synthetic", "n_train": 2, "n_val": 2, "n_test": 2, "size": (16, 16)}},
        image_size=(32, 32), pretrained=None,
        variants={{"all_mlp": Variant("all_mlp"), "mine": Variant("{name}", settings={{"width": 4}})}},
        baseline="all_mlp", train={{"epochs": 2, "batch_size": 2}}, trials=0, seeds={seeds},
        latency={{"rounds": 2, "launches": 1, "warmup": 1, "threads": 1, "batches": [1]}},
    )
''')


def lab(tmp_path, *, name="tiny_fpn", seeds=(0, 1, 2)):
    folder = tmp_path / "lab"
    folder.mkdir(exist_ok=True)
    (folder / f"heads_{name}.py").write_text(HEADS.format(name=name))
    path = folder / "lab_study.py"
    path.write_text(STUDY.format(name=name, seeds=list(seeds)))
    return path


def test_workers_kill_9_resume_and_real_latency_launches_see_the_decoder(tmp_path):
    study = lab(tmp_path)
    out = tmp_path / "runs"
    run = out / "lab"
    env = fake_env(0.5, ABLATE_FAKE_CHECK_DECODER="1", ABLATE_FAKE_REAL_LATENCY="1")
    parent = subprocess.Popen(ablate_run(study, out, "--workers", "2"), env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not list((run / "records").glob("*.json")) if (run / "records").exists() else True:
        assert time.time() < deadline and parent.poll() is None
        time.sleep(0.1)
    parent.send_signal(signal.SIGKILL)  # its workers die with it
    parent.wait()
    resumed = subprocess.run(ablate_run(study, out, "--workers", "2"), env=fake_env(0.0, ABLATE_FAKE_CHECK_DECODER="1",
                             ABLATE_FAKE_REAL_LATENCY="1"), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    rows = read_rows(run / "results.csv")
    keys = [(r["variant"], r["seed"]) for r in rows]
    assert sorted(keys) == sorted((v, str(s)) for v in ("all_mlp", "mine") for s in (0, 1, 2)), keys  # once each
    latency = read_rows(run / "latency.csv")
    assert {r["variant"] for r in latency} == {"all_mlp", "mine"}
    assert {r["launch_kind"] for r in latency} == {"process"}  # a fresh process ran the study file
    assert json.loads((run / "study.json").read_text())["imports"] == [str(study.resolve())]


def test_a_launch_that_cannot_import_the_study_file_is_one_line(tmp_path):
    from ablate.engine.latency import measure_study_latency
    from ablate.study import load_study

    path = lab(tmp_path, name="gone_fpn")
    study = load_study(path)
    path.unlink()
    with pytest.raises(StudyError) as err:
        measure_study_latency(study, num_classes=11, rounds=2, launches=1, batches=[1], device="cpu")
    assert str(path.resolve()) in str(err.value) and "\n" not in str(err.value)


def test_the_cli_exits_2_naming_the_file_when_a_launch_cannot_import_it(tmp_path):
    path = lab(tmp_path, name="launch_fpn")
    # importable where the sweep runs, not in the latency launch (a spawned child), as on a machine without it
    path.write_text("import multiprocessing\nif multiprocessing.parent_process() is not None:\n"
                    "    raise ImportError('no heads here')\n" + path.read_text())
    done = subprocess.run(ablate_run(path, tmp_path / "runs"), env=fake_env(0.0, ABLATE_FAKE_REAL_LATENCY="1"),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert str(path) in done.stderr and "no heads here" in done.stderr


def test_rerunning_a_changed_study_file_in_one_process_redefines_its_decoder(tmp_path):
    from ablate.models import decoder_defaults
    from ablate.study import load_study

    path = tmp_path / "again.py"
    text = HEADS.format(name="again_fpn") + "\nfrom ablate.study import Study, Variant\n" + \
        "study = Study(name='again', image_size=32, variants={'a': Variant('all_mlp')}, baseline='a', seeds=[0])\n"
    path.write_text(text)
    load_study(path)
    path.write_text(text.replace("width: int = 8", "width: int = 16"))
    load_study(path)  # no "already registered": the same class, defined anew
    assert decoder_defaults("again_fpn") == {"width": 16}


def test_train_reaches_a_study_decoder(tmp_path):
    from ablate.cli import main
    from ablate.data.synthetic import make_synthetic

    path = lab(tmp_path, name="train_fpn")
    data = make_synthetic(tmp_path / "data", n_train=2, n_val=1, n_test=1, size=(32, 32))
    out = tmp_path / "try"
    with pytest.raises(SystemExit) as code:
        main(["train", "--study", str(path), "--decoder", "train_fpn", "--data", str(data), "--pretrained", "none",
              "--epochs", "1", "--image-size", "32", "--batch-size", "2", "--amp", "off", "--device", "cpu",
              "--out", str(out), "--quiet", "--set", "width=4"])
    assert code.value.code == 0
    result = json.loads((out / "result.json").read_text())
    assert result["decoder"] == "train_fpn" and result["config"]["decoder_cfg"] == {"width": 4}


def test_bench_latency_times_a_study_decoder_in_a_fresh_launch(tmp_path):
    from ablate.bench.latency import run_latency_bench
    from ablate.study import load_study

    study = load_study(lab(tmp_path, name="bench_fpn"))
    result = run_latency_bench(study, num_classes=11, rounds=2, launches=1, batches=[1], threads=1, reference=False)
    assert result["launch_kind"] == "process" and {v["variant"] for v in result["variants"]} == {"all_mlp", "mine"}
