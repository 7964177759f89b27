"""GPU-resident training path: epoch plans drawn up front equal per-batch draws; no host sync per step on CUDA."""

from __future__ import annotations

import pytest
import torch

from ablate.data import BatchIterator, load_split, make_synthetic
from ablate.data.batches import augment_batch, epoch_generator, normalise
from ablate.engine import TrainConfig
from ablate.engine.train import fit
from ablate.models import build_model


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = make_synthetic(tmp_path_factory.mktemp("resident"), n_train=11, n_val=2, n_test=2, size=(40, 48), seed=4)
    return load_split(root, "train", size=(32, 32), progress=False)


def test_epoch_plan_gives_the_batches_of_one_draw_per_batch(data):
    """Drawing the epoch's order and augmentation up front (one copy to the device per epoch) changes no number."""
    for epoch in range(2):
        it = BatchIterator(data, 4, shuffle=True, augment=True, seed=3)
        it.set_epoch(epoch)
        got = list(it)
        generator = epoch_generator(3, epoch)
        order = torch.randperm(len(data), generator=generator)
        for i, (images, labels) in enumerate(got):
            index = order[4 * i : 4 * i + 4]
            want = augment_batch(normalise(data.images[index]), data.labels[index], generator)
            assert torch.equal(images, want[0]) and torch.equal(labels, want[1])
        assert [len(b[0]) for b in got] == [4, 4, 3]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_device_batches_match_cpu_and_do_not_sync(data):
    cpu = BatchIterator(data, 4, shuffle=True, augment=True, seed=3)
    gpu = BatchIterator(data, 4, shuffle=True, augment=True, seed=3, device="cuda")
    list(gpu)  # the dataset's one copy to the device
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        batches = [(x, y) for x, y in gpu]
    finally:
        torch.cuda.set_sync_debug_mode("default")
    for (xc, yc), (xg, yg) in zip(cpu, batches):
        torch.testing.assert_close(xg.cpu(), xc, atol=1e-5, rtol=0)
        assert (yg.cpu() != yc).float().mean() < 1e-3  # nearest-neighbour ties may round differently


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_training_steps_do_not_sync(data):
    """The step loop syncs only at its finiteness checks (every log_every steps); the steps themselves never."""
    from ablate.engine.step import make_optimizer, prepare_model_for_training, train_step

    model = build_model("all_mlp", num_classes=11, seed=0).cuda()
    prepare_model_for_training(model)
    opt = make_optimizer(model.parameters(), lr=1e-4)
    it = BatchIterator(data, 4, shuffle=True, augment=True, seed=0, device="cuda", channels_last=True)
    batches = list(it)
    train_step(model, opt, *batches[0], device="cuda", amp="bf16")  # lazy init (cuDNN, optimizer state)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for images, labels in batches[1:]:
            train_step(model, opt, images, labels, device="cuda", amp="bf16")
    finally:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_compiled_step_on_cuda_trains(data):
    cfg = TrainConfig(image_size=(32, 32), epochs=1, max_steps=3, device="cuda", compile=True)
    result = fit(build_model("all_mlp", num_classes=11, seed=0), data, None, cfg, progress=False)
    assert result.status == "ok" and result.steps == 3
