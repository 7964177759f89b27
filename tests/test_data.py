"""Loading, caching and batching of the SegNet layout (synthetic data)."""

from __future__ import annotations

import pytest
import torch

from ablate.data import (
    IGNORE_INDEX,
    BatchIterator,
    SegData,
    find_splits,
    load_split,
    make_synthetic,
)
from ablate.data.layouts.camvid import CAMVID_CLASSES


@pytest.fixture()
def cache_dir(tmp_path):
    return tmp_path / "cache"


def test_synthetic_is_deterministic_and_segnet_shaped(tmp_path):
    a = make_synthetic(tmp_path / "a", n_train=2, n_val=1, n_test=1, size=(32, 48), seed=3)
    b = make_synthetic(tmp_path / "b", n_train=2, n_val=1, n_test=1, size=(32, 48), seed=3)
    for sub in ("train", "trainannot", "val", "valannot", "test", "testannot"):
        files = sorted(p.name for p in (a / sub).iterdir())
        assert files and all((a / sub / f).read_bytes() == (b / sub / f).read_bytes() for f in files)
    assert (a / "train.txt").read_text().startswith("/SegNet/CamVid/train/")


def test_load_split_shapes_classes_and_void(synthetic_root, cache_dir):
    assert find_splits(synthetic_root) == ["train", "val", "test"]
    data = load_split(synthetic_root, "train", size=(48, 40), cache_dir=cache_dir)
    assert isinstance(data, SegData) and len(data) == 12 and data.split == "train"
    assert data.images.shape == (12, 3, 48, 40) and data.images.dtype == torch.uint8
    assert data.labels.shape == (12, 48, 40) and data.labels.dtype == torch.uint8
    assert data.class_names == CAMVID_CLASSES and data.names == sorted(data.names)
    values = set(data.labels.unique().tolist())
    assert IGNORE_INDEX in values and values - {IGNORE_INDEX} <= set(range(11)) and 11 not in values


def test_second_load_hits_cache_without_decoding(synthetic_root, cache_dir, monkeypatch):
    first = load_split(synthetic_root, "val", size=(32, 32), cache_dir=cache_dir)

    def no_decoding(*args, **kwargs):
        raise AssertionError("PNG decoded on a cache hit")

    monkeypatch.setattr("ablate.data.decode.read_pair", no_decoding)
    second = load_split(synthetic_root, "val", size=(32, 32), cache_dir=cache_dir)
    assert torch.equal(first.images, second.images) and torch.equal(first.labels, second.labels)
    with pytest.raises(AssertionError, match="cache hit"):  # another size is another cache entry
        load_split(synthetic_root, "val", size=(32, 48), cache_dir=cache_dir)


def test_cache_key_follows_file_content(tmp_path, cache_dir):
    root = make_synthetic(tmp_path / "d", n_train=0, n_val=2, n_test=0, size=(32, 32), seed=1)
    before = load_split(root, "val", size=(32, 32), cache_dir=cache_dir)
    other = make_synthetic(tmp_path / "e", n_train=0, n_val=2, n_test=0, size=(32, 32), seed=2)
    image = sorted((root / "val").iterdir())[0]
    image.write_bytes(sorted((other / "val").iterdir())[0].read_bytes())
    after = load_split(root, "val", size=(32, 32), cache_dir=cache_dir)
    assert not torch.equal(before.images, after.images)


def _iterate(data, epoch, **kwargs):
    it = BatchIterator(data, 4, shuffle=True, augment=True, seed=7, **kwargs)
    it.set_epoch(epoch)
    return list(it)


def test_batches_are_seeded_per_epoch(synthetic_root, cache_dir):
    data = load_split(synthetic_root, "train", size=(32, 32), cache_dir=cache_dir)
    a, b, c = _iterate(data, 0), _iterate(data, 0), _iterate(data, 1)
    assert len(a) == 3 == len(BatchIterator(data, 4, shuffle=False, augment=False, seed=0))
    assert all(torch.equal(x[0], y[0]) and torch.equal(x[1], y[1]) for x, y in zip(a, b))
    assert not all(torch.equal(x[0], y[0]) for x, y in zip(a, c))
    images, labels = a[0]
    assert images.dtype == torch.float32 and images.shape == (4, 3, 32, 32)
    assert labels.dtype == torch.int64 and labels.shape == (4, 32, 32)
    assert len(BatchIterator(data, 5, shuffle=False, augment=False, seed=0, drop_last=True)) == 2


def test_plain_batches_are_normalised_in_order(synthetic_root, cache_dir):
    data = load_split(synthetic_root, "val", size=(32, 32), cache_dir=cache_dir)
    it = BatchIterator(data, 4, shuffle=False, augment=False, seed=0, channels_last=True)
    (images, labels), (tail, _) = list(it)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    expected = (data.images[:4].float() / 255 - mean) / std
    assert torch.allclose(images, expected, atol=1e-5) and torch.equal(labels, data.labels[:4].long())
    assert images.is_contiguous(memory_format=torch.channels_last) and tail.shape[0] == 2


def _asymmetric(n=8, size=16):
    # Left half class 1 (bright), right half class 2 (dark): image colour tells the label.
    labels = torch.ones(n, size, size, dtype=torch.uint8)
    labels[:, :, size // 2 :] = 2
    images = torch.where(labels == 1, 250, 10).to(torch.uint8)[:, None].expand(n, 3, size, size).contiguous()
    return SegData(images, labels, [f"x{i}" for i in range(n)], CAMVID_CLASSES, "train")


def test_flip_moves_image_and_label_together():
    data = _asymmetric()
    it = BatchIterator(data, 8, shuffle=False, augment=True, seed=0, scale_range=(1.0, 1.0))
    images, labels = next(iter(it))
    flipped = labels[:, 0, 0] == 2
    assert 0 < int(flipped.sum()) < 8  # both flipped and unflipped samples in one batch
    assert torch.equal(labels[flipped], data.labels[flipped].long().flip(-1))
    assert torch.equal(labels[~flipped], data.labels[~flipped].long())
    bright = images[:, 0] > 0
    assert torch.equal(bright, labels == 1)


def test_scale_and_crop_keep_alignment_and_pad_with_ignore():
    data = _asymmetric(n=16, size=32)
    it = BatchIterator(data, 16, shuffle=True, augment=True, seed=3, scale_range=(0.6, 1.6))
    images, labels = next(iter(it))
    known = labels != IGNORE_INDEX
    agree = (images[:, 0] > 0) == (labels == 1)
    assert agree[known].float().mean() > 0.95  # only bilinear boundary pixels may differ
    assert (~known).any()  # zoomed-out samples are padded with the ignore index
    assert set(labels.unique().tolist()) <= {1, 2, IGNORE_INDEX}


def test_unwritable_cache_only_warns(synthetic_root, tmp_path):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("")
    with pytest.warns(UserWarning, match="could not write the data cache"):
        data = load_split(synthetic_root, "test", size=(16, 16), cache_dir=blocker)
    assert len(data) == 6


def test_axis_aligned_grid_matches_affine_grid():
    import torch.nn.functional as F

    from ablate.data.batches import _axis_aligned_grid

    scale_x = torch.tensor([1.3, -0.8], dtype=torch.float64)
    scale_y = scale_x.abs()
    shift = torch.tensor([[0.1, -0.2], [0.0, 0.3]], dtype=torch.float64)
    theta = torch.zeros(2, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1], theta[:, :, 2] = scale_x, scale_y, shift
    expected = F.affine_grid(theta, [2, 3, 7, 9], align_corners=False)
    assert torch.allclose(_axis_aligned_grid(scale_x, scale_y, shift, (7, 9), "cpu"), expected, atol=1e-6)


def test_cli_synth_writes_a_loadable_dataset(tmp_path, capsys):
    from ablate.cli import main

    out = tmp_path / "synth"
    args = ["data", "synth", str(out), "--n-train", "2", "--n-val", "1", "--n-test", "0", "--size", "20x24"]
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 0 and find_splits(out) == ["train", "val"]
    assert load_split(out, "train", size=(20, 24), cache=False).images.shape == (2, 3, 20, 24)
    with pytest.raises(SystemExit) as exit_:
        main(["data", "synth", str(out), "--size", "big"])
    assert exit_.value.code == 2 and "HxW" in capsys.readouterr().err
