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

    footprint = measure_worker_footprint({"image_size": [64, 64], "batch_size": 2})
    assert 50 * 2**20 < footprint < 20 * GiB
    free, total = torch.cuda.mem_get_info()
    assert suggested_workers("cuda", footprint_bytes=footprint) == workers_that_fit(free, total, footprint)
