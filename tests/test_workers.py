"""suggested_workers: 1 on CPU; on CUDA from free memory and a measured per-process footprint."""

import pytest
import torch

from ablate.engine.workers import suggested_workers, workers_that_fit

GiB = 2**30


def test_cpu_gets_one_worker():
    assert suggested_workers("cpu") == 1


def test_workers_that_fit_keeps_a_margin_and_bounds():
    assert workers_that_fit(80 * GiB, 80 * GiB, 3 * GiB) == 24  # (80 - 8) / 3
    assert workers_that_fit(80 * GiB, 80 * GiB, 3 * GiB, most=6) == 6
    assert workers_that_fit(1 * GiB, 80 * GiB, 3 * GiB) == 1  # never fewer than one
    with pytest.raises(ValueError):
        workers_that_fit(GiB, GiB, 0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_footprint_is_measured_and_bounds_the_count():
    from ablate.engine.workers import measure_worker_footprint

    footprint = measure_worker_footprint({"image_size": [64, 64], "batch_size": 2}, num_classes=150)
    assert 50 * 2**20 < footprint < 20 * GiB
    free, total = torch.cuda.mem_get_info()
    assert suggested_workers("cuda", footprint_bytes=footprint) == workers_that_fit(free, total, footprint)


def test_run_workers_auto_is_the_engines_rule(tmp_path, monkeypatch):
    """`ablate run --workers auto` calls suggested_workers: 1 on CPU; on (faked) CUDA free memory over the
    measured footprint of the study's heaviest run plus its training split on the device."""
    import ablate.engine.config as config
    import ablate.engine.workers as engine_workers
    from ablate.data.synthetic import make_synthetic
    from ablate.study import Study, Variant
    from ablate.sweep.workers import default_workers

    study = Study(name="w", data={"kind": "synthetic"}, image_size=(64, 64), pretrained=None,
                  variants={"a": Variant("all_mlp"), "b": Variant("skip_fused", settings={"batch_size": 8})},
                  baseline="a", train={"batch_size": 2}, trials=0, seeds=[0])
    assert default_workers("cpu", study=study) == 1
    probed = []
    monkeypatch.setattr(config, "resolve_device", lambda d=None: "cuda" if d in ("cuda", "auto") else "cpu")
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda *a: (40 * GiB, 80 * GiB))
    monkeypatch.setattr(engine_workers, "measure_worker_footprint",
                        lambda cfg, num_classes, **_: probed.append((cfg, num_classes)) or 3 * GiB)
    root = make_synthetic(tmp_path / "data", n_train=5, n_val=1, n_test=1, size=(64, 64))
    n = default_workers("cuda", study=study, data_root=root)
    assert probed[0][0]["batch_size"] == 8 and probed[0][0]["decoder"] == "skip_fused"  # the heaviest run is probed
    assert probed[0][1] == 11  # with the dataset's classes (the synthetic scenes: SegNet's 11)
    assert n == workers_that_fit(40 * GiB, 80 * GiB, 3 * GiB + 5 * 4 * 64 * 64) == 10  # (40 - 8) / 3
