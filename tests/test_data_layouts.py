"""The two 32-class colour layouts and every bad-input error (tiny data built by the tests)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from ablate.cli import main
from ablate.data import IGNORE_INDEX, check_dataset, find_splits, load_split, make_synthetic
from ablate.data.layouts.camvid import CAMVID_CLASSES
from ablate.errors import DataError

# A few real CamVid colours (name, rgb); the tests add an unknown colour on purpose.
COLOURS = {
    "Sky": (128, 128, 128), "Wall": (64, 192, 0), "Building": (128, 0, 0), "LaneMkgsDriv": (128, 0, 192),
    "Road": (128, 64, 128), "Column_Pole": (192, 192, 128), "Child": (192, 128, 64), "Void": (0, 0, 0),
}  # fmt: skip
UNKNOWN = (1, 2, 3)


def _colour_label(height=12, width=16) -> np.ndarray:
    # Row bands, top to bottom: Sky, Wall, LaneMkgsDriv, Void, unknown, Child; a Column_Pole column.
    names = ["Sky", "Wall", "LaneMkgsDriv", "Void", None, "Child"]
    rgb = np.zeros((height, width, 3), np.uint8)
    for i, name in enumerate(names):
        rgb[2 * i : 2 * i + 2] = COLOURS[name] if name else UNKNOWN
    rgb[:, 3] = COLOURS["Column_Pole"]
    return rgb


GROUPED_EXPECTED = [0, 1, 3, IGNORE_INDEX, IGNORE_INDEX, 9]  # Sky, Building, Road, ignore, ignore, Pedestrian


def _frame(rng, height=12, width=16):
    return Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))


@pytest.fixture()
def class_dict_root(tmp_path):
    root = tmp_path / "kaggle"
    rows = ["name, r, g, b"] + [f"{n}, {r}, {g}, {b}" for n, (r, g, b) in COLOURS.items()]
    root.mkdir()
    (root / "class_dict.csv").write_text("\n".join(rows) + "\n")
    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("val", 2), ("test", 1)):
        (root / split).mkdir()
        (root / f"{split}_labels").mkdir()
        for i in range(n):
            _frame(rng).save(root / split / f"{split}_{i}.png")
            Image.fromarray(_colour_label()).save(root / f"{split}_labels" / f"{split}_{i}_L.png")
    return root


@pytest.fixture()
def label_colors_root(tmp_path):
    root = tmp_path / "camvid32"
    (root / "LabeledApproved_full").mkdir(parents=True)
    (root / "701_StillsRaw_full").mkdir()
    (root / "label_colors.txt").write_text("".join(f"{r} {g} {b}\t{n}\n" for n, (r, g, b) in COLOURS.items()))
    rng = np.random.default_rng(1)
    for stem in ("0001TP_006690", "0016E5_00390", "0006R0_f00930", "Seq05VD_f00000", "Seq05VD_f00030"):
        _frame(rng).save(root / "701_StillsRaw_full" / f"{stem}.png")
        Image.fromarray(_colour_label()).save(root / "LabeledApproved_full" / f"{stem}_L.png")
    return root


def _rows(labels):
    return [int(labels[0, 2 * i, 0]) for i in range(6)]


def test_class_dict_layout_grouped_and_ungrouped(class_dict_root, tmp_path):
    assert find_splits(class_dict_root) == ["train", "val", "test"]
    data = load_split(class_dict_root, "train", size=(12, 16), cache_dir=tmp_path / "c")
    assert (
        data.class_names == CAMVID_CLASSES
        and len(data) == 3
        and data.names == ["train_0", "train_1", "train_2"]
    )
    assert _rows(data.labels) == GROUPED_EXPECTED and int(data.labels[0, 0, 3]) == 2  # pole column
    raw = load_split(class_dict_root, "val", size=(12, 16), grouped=False, cache_dir=tmp_path / "c")
    names = sorted((n for n in COLOURS if n != "Void"), key=str.lower)
    assert raw.class_names == tuple(names)
    expected = [
        names.index("Sky"),
        names.index("Wall"),
        names.index("LaneMkgsDriv"),
        255,
        255,
        names.index("Child"),
    ]
    assert _rows(raw.labels) == expected


def test_label_colors_layout_splits_by_sequence_or_list(label_colors_root, tmp_path):
    assert find_splits(label_colors_root) == ["train", "val", "test"]
    test = load_split(label_colors_root, "test", size=(6, 8), cache_dir=tmp_path / "c")
    assert test.names == ["Seq05VD_f00000", "Seq05VD_f00030"] and test.labels.shape == (2, 6, 8)
    train = load_split(label_colors_root, "train", size=(12, 16), cache_dir=tmp_path / "c")
    assert train.names == ["0001TP_006690", "0016E5_00390"] and _rows(train.labels) == GROUPED_EXPECTED
    (label_colors_root / "train.txt").write_text("/SegNet/CamVid/train/0006R0_f00930.png x\n")
    assert find_splits(label_colors_root) == ["train"]  # list files now define the splits
    assert load_split(label_colors_root, "train", size=(12, 16), cache_dir=tmp_path / "c").names == [
        "0006R0_f00930"
    ]


def test_check_dataset_reports_counts_sizes_and_shares(synthetic_root, class_dict_root):
    report = check_dataset(synthetic_root)
    assert report["layout"] == "segnet" and list(report["splits"]) == ["train", "val", "test"]
    train = report["splits"]["train"]
    assert train["count"] == 12 and train["sizes"] == {"80x64": 12}
    assert sum(train["class_shares"].values()) == pytest.approx(1.0)
    assert all(train["class_shares"][name] > 0 for name in CAMVID_CLASSES)
    shares = check_dataset(class_dict_root)["splits"]["val"]["class_shares"]
    assert shares["ignored"] == pytest.approx(2 / 6 * 15 / 16)  # Void and unknown rows, minus the pole column


@pytest.fixture()
def segnet(tmp_path):
    return make_synthetic(tmp_path / "s", n_train=3, n_val=2, n_test=0, size=(24, 32), seed=0)


def _load(root, split="train"):
    return load_split(root, split, size=(16, 16), cache=False)


def _first(root, sub):
    return sorted((root / sub).iterdir())[0]


def test_missing_data_dir_and_unknown_layout(tmp_path):
    with pytest.raises(DataError, match="does not exist.*--data"):
        _load(tmp_path / "nowhere")
    (tmp_path / "junk").mkdir()
    with pytest.raises(DataError, match="unknown dataset layout.*trainannot.*class_dict.csv.*label_colors"):
        _load(tmp_path / "junk")


def test_missing_split_names_what_exists(segnet):
    with pytest.raises(DataError, match=r"split 'test' not found .*found: train, val"):
        _load(segnet, "test")
    shutil.rmtree(segnet / "valannot")
    with pytest.raises(DataError, match="valannot is missing"):
        _load(segnet, "val")


@pytest.mark.parametrize("with_list", [True, False])
def test_image_without_label(segnet, with_list):
    if not with_list:
        (segnet / "train.txt").unlink()
    label = _first(segnet, "trainannot")
    label.unlink()
    with pytest.raises(DataError, match=f"image .*{label.name} has no label|has no label: .*{label.name}"):
        _load(segnet)


def test_label_without_image(segnet):
    (segnet / "train.txt").unlink()
    image = _first(segnet, "train")
    image.unlink()
    with pytest.raises(DataError, match=f"label .*{image.name} has no image"):
        _load(segnet)


def test_listed_image_missing(segnet):
    image = _first(segnet, "train")
    image.unlink()
    with pytest.raises(DataError, match=f"train.txt:1 lists {image.name}"):
        _load(segnet)


def test_size_mismatch(segnet):
    label = _first(segnet, "trainannot")
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(label)
    with pytest.raises(DataError, match=f"size mismatch: .*{label.name}"):
        _load(segnet)


def test_corrupt_png(segnet):
    image = _first(segnet, "train")
    image.write_bytes(image.read_bytes()[:60])
    with pytest.raises(DataError, match=f"cannot read .*{image.name}"):
        _load(segnet)


def test_label_value_outside_class_set(segnet):
    label = _first(segnet, "trainannot")
    values = np.array(Image.open(label))
    values[0, 0] = 12
    Image.fromarray(values).save(label)
    with pytest.raises(DataError, match=f"label .*{label.name} has value 12, outside"):
        _load(segnet)


def test_palette_colour_labels_decode_like_rgb(class_dict_root):
    label = _first(class_dict_root, "train_labels")
    rgb = np.array(Image.open(label))
    colours, index = np.unique(rgb.reshape(-1, 3), axis=0, return_inverse=True)
    palette = Image.fromarray(index.reshape(rgb.shape[:2]).astype(np.uint8)).convert("P")
    palette.putpalette(colours.ravel().tolist())
    palette.save(label)
    assert _rows(load_split(class_dict_root, "train", size=(12, 16), cache=False).labels) == GROUPED_EXPECTED


def test_empty_split(segnet):
    for sub in ("train", "trainannot"):
        shutil.rmtree(segnet / sub)
        (segnet / sub).mkdir()
    (segnet / "train.txt").unlink()
    with pytest.raises(DataError, match="split 'train' is empty"):
        _load(segnet)


def test_cli_check_prints_table_or_one_line_error(synthetic_root, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["data", "check", str(synthetic_root), "--json"])
    assert exit_.value.code == 0 and '"layout": "segnet"' in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        main(["data", "check", str(tmp_path)])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith("error: unknown dataset layout") and err.count("\n") == 1
