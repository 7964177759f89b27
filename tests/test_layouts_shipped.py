"""The shipped layouts on small synthetic copies (tests/layout_writers.py): detection, splits, pairing,
decoded class indices, forcing, a layout registered at runtime, and every bad input as one line."""

from __future__ import annotations

import importlib.util
import shutil
import sys

import layout_writers as W
import numpy as np
import pytest
from PIL import Image

from ablate.cli import main
from ablate.data import check_dataset, detect_layout, load_split
from ablate.data.decode import read_pair
from ablate.data.layouts import registry
from ablate.data.layouts.camvid import SEGNET_VOID
from ablate.errors import DataError

SHIPPED = {  # name: (writer, expected index per CamVid class, class count)
    "cityscapes": (W.write_cityscapes, W.cityscapes_expected, 19),
    "ade20k": (W.write_ade20k, W.ade20k_expected, 150),
    "voc": (W.write_voc, W.voc_expected, 21),
    "generic": (W.write_generic, W.generic_expected, 5),
}


def _expected_labels(expected: dict, split_id: int, i: int) -> np.ndarray:
    _, camvid = list(W.scenes(split_id, i + 1))[i]
    table = np.array([expected[name] for name in W.CAMVID_CLASSES] + [0] * (256 - len(W.CAMVID_CLASSES)))
    table[SEGNET_VOID] = expected["void"]
    return table[camvid]


@pytest.mark.parametrize("name", list(SHIPPED))
def test_layout_is_detected_paired_and_decoded_to_class_indices(name, tmp_path):
    write, expected, n_classes = SHIPPED[name]
    root = write(tmp_path / name)
    layout = detect_layout(root)
    assert layout.name == name and len(layout.class_names) == n_classes
    assert layout.splits() == ["train", "val"]
    pairs = layout.pairs("train")
    assert len(pairs) == 3 and len(layout.pairs("val")) == 2
    for pair in pairs:  # at the file's own (odd) size, every pixel mapped as the dataset means it
        i = W.scene_number(pair.name)
        image, labels = read_pair(pair, layout, None)
        want = _expected_labels(expected(), 0, i)
        if name == "cityscapes":
            want[0, :2] = 255  # parking and the license plate: no train id
        assert image.shape[:2] == W.SIZES[i] and labels.shape == W.SIZES[i]
        np.testing.assert_array_equal(labels, want)
    data = load_split(root, "val", size=(16, 24), cache=False)
    assert data.images.shape == (2, 3, 16, 24) and data.class_names == layout.class_names
    assert set(np.unique(data.labels.numpy())) <= set(range(n_classes)) | {255}


@pytest.mark.parametrize("shape", ["split_dirs", "nested", "flat"])
@pytest.mark.parametrize("classes", ["txt", "json"])
def test_generic_folder_shapes_and_class_files(shape, classes, tmp_path):
    root = W.write_generic(tmp_path / "g", shape=shape, classes=classes, ignore=255 if classes == "txt" else 99)
    layout = detect_layout(root)
    assert layout.name == "generic" and layout.class_names == W.GENERIC_CLASSES
    assert layout.splits() == ["train", "val"] and [p.name for p in layout.pairs("val")] == ["val_000", "val_001"]
    _, labels = read_pair(layout.pairs("train")[1], layout, None)
    np.testing.assert_array_equal(labels, _expected_labels(W.generic_expected(), 0, 1))


@pytest.mark.parametrize("classes", ["txt", "json"])
def test_generic_colour_masks_map_through_the_classes_file(classes, tmp_path):
    root = W.write_generic(tmp_path / "c", classes=classes, colour=True)
    layout = detect_layout(root)
    assert layout.name == "generic_colour" and layout.colours.tolist() == [list(c) for c in W.GENERIC_COLOURS]
    if classes == "txt":  # no ignore colour declared: black (void) is a colour outside the class set
        with pytest.raises(DataError, match=r"has colour \(0, 0, 0\), outside the class set; add the colour"):
            read_pair(layout.pairs("train")[0], layout, None)
    else:
        _, labels = read_pair(layout.pairs("train")[0], layout, None)
        np.testing.assert_array_equal(labels, _expected_labels(W.generic_expected(), 0, 0))


def test_generic_without_classes_file_says_what_to_add(tmp_path):
    root = W.write_generic(tmp_path / "g")
    (root / "classes.txt").unlink()
    with pytest.raises(DataError, match="no classes file; add classes.txt naming one class per line"):
        detect_layout(root)


def test_forcing_a_layout_and_forcing_the_wrong_one(tmp_path):
    root = W.write_cityscapes(tmp_path / "cs")
    assert detect_layout(root, layout="cityscapes").name == "cityscapes"
    with pytest.raises(DataError, match="does not look like the voc layout: expected JPEGImages/"):
        detect_layout(root, layout="voc")
    with pytest.raises(DataError, match="unknown layout 'nope'; registered layouts: .*cityscapes.*generic.*voc"):
        load_split(root, "train", size=(8, 8), layout="nope", cache=False)


def test_detection_error_lists_every_registered_layout(tmp_path):
    with pytest.raises(DataError) as err:
        detect_layout(tmp_path)
    for name in registry.list_layouts():
        assert f"{name} (" in str(err.value)


LAYOUT_MODULE = '''
from ablate.data.layouts import register_layout
from ablate.data.layouts.generic import GenericLayout
from ablate.data.layouts.base import value_table

@register_layout("reduced_generic")
class ReducedGeneric(GenericLayout):
    """The generic folder read with value 0 ignored and k -> k-1 (mmseg's reduce_zero_label)."""
    detect_order = 5
    def __init__(self, root, *, grouped=True):
        super().__init__(root)
        self.class_names = self.class_names[1:]
        self._table = value_table({0: 255, **{k: k - 1 for k in range(1, 6)}, 255: 255})
'''


@pytest.fixture()
def runtime_layout(tmp_path, monkeypatch):
    """A layout defined in a user's module, imported at runtime (as a study file beside it would)."""
    monkeypatch.setattr(registry, "_LAYOUTS", dict(registry._LAYOUTS))
    path = tmp_path / "my_layouts.py"
    path.write_text(LAYOUT_MODULE)
    spec = importlib.util.spec_from_file_location("my_layouts", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("my_layouts", None)


def test_layout_registered_from_a_module_at_runtime(runtime_layout, tmp_path):
    root = W.write_generic(tmp_path / "g")
    assert "reduced_generic" in registry.list_layouts()
    layout = detect_layout(root)  # detect_order 5: tried first
    assert layout.name == "reduced_generic" and layout.class_names == W.GENERIC_CLASSES[1:]
    report = check_dataset(root, layout="reduced_generic")
    assert report["layout"] == "reduced_generic" and not report["problems"]
    assert report["splits"]["train"]["class_shares"]["ignored"] > 0.1  # sky (0) is ignored now


def test_two_layouts_or_two_mappings_never_share_a_cache_entry(runtime_layout, tmp_path):
    root = W.write_generic(tmp_path / "g")
    cache = tmp_path / "cache"
    reduced = load_split(root, "train", size=(16, 16), cache_dir=cache)
    plain = load_split(root, "train", size=(16, 16), cache_dir=cache, layout="generic")
    assert reduced.class_names != plain.class_names
    assert not np.array_equal(reduced.labels.numpy(), plain.labels.numpy())
    assert len(list((cache / "splits").glob("*.pt"))) == 2
    # the same layout with another class mapping (a renamed class, another ignore value): a new entry
    (root / "classes.txt").write_text("\n".join(["air", *W.GENERIC_CLASSES[1:]]) + "\n")
    renamed = load_split(root, "train", size=(16, 16), cache_dir=cache, layout="generic")
    assert renamed.class_names[0] == "air" and len(list((cache / "splits").glob("*.pt"))) == 3


def _first_mask(root):
    return sorted((root / "train" / "masks").iterdir())[0]


def test_every_bad_input_is_one_line_naming_the_file_and_fix(tmp_path, capsys):
    root = W.write_generic(tmp_path / "g", n_train=5)
    masks = sorted((root / "train" / "masks").iterdir())
    images = sorted((root / "train" / "images").iterdir())
    values = np.array(Image.open(masks[0]))
    values[3, 3] = 7
    Image.fromarray(values).save(masks[0])  # a value outside the class set
    images[1].write_bytes(images[1].read_bytes()[:50])  # unreadable
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(masks[2])  # image and mask sizes differ
    report = check_dataset(root)
    problems = report["problems"]
    assert len(problems) == 3
    assert any(f"{masks[0].name} has value 7, outside the class set (0-4, ignore 255)" in p for p in problems)
    assert any(f"cannot read {images[1]}" in p and "replace" in p for p in problems)
    assert any("size mismatch" in p and masks[2].name in p and "fix one of them" in p for p in problems)
    masks[3].unlink()  # images without their masks: one line each (the matched pairs are still decoded)
    masks[4].unlink()
    shutil.rmtree(root / "val")  # nothing left to evaluate on
    with pytest.raises(SystemExit) as exit_:
        main(["data", "check", str(root)])
    out, err = capsys.readouterr()
    assert exit_.value.code == 2 and "generic layout, 5 classes" in out and "train     3 images" in out
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("check ")]  # less progress
    assert len(lines) == 6 and all(line.startswith("error: ") for line in lines)
    assert "no val or test split" in lines[0]
    assert f"image {images[3]} has no label" in lines[1] and f"image {images[4]} has no label" in lines[2]
    assert [p in " ".join(lines[3:]) for p in ("has value 7", "cannot read", "size mismatch")] == [True] * 3
    with pytest.raises(DataError, match=r"image .*train_003.* has no label .* \(and 1 more; `ablate data check` lists"):
        load_split(root, "train", size=(8, 8), cache=False)  # a run says the first and how many more
    with pytest.raises(DataError, match=r"split 'val' not found .*found: train"):
        detect_layout(root).pairs("val")


def test_voc_rgb_mask_is_refused_with_the_fix(tmp_path):
    root = W.write_voc(tmp_path / "v")
    layout = detect_layout(root)
    pair = layout.pairs("train")[0]
    Image.open(pair.label).convert("RGB").save(pair.label)
    with pytest.raises(DataError, match=f"label .*{pair.label.name} is RGB, expected single-channel"):
        read_pair(pair, layout, None)


def test_cityscapes_missing_label_names_the_file(tmp_path):
    root = W.write_cityscapes(tmp_path / "cs")
    label = sorted((root / "gtFine" / "train").rglob("*_gtFine_labelIds.png"))[0]
    label.unlink()
    with pytest.raises(DataError, match=f"has no label {label}; add it or remove the image"):
        detect_layout(root).pairs("train")


@pytest.mark.parametrize("name", list(SHIPPED))
def test_data_check_names_layout_splits_sizes_and_class_shares(name, tmp_path, capsys):
    root = SHIPPED[name][0](tmp_path / name)
    with pytest.raises(SystemExit) as exit_:
        main(["data", "check", str(root)])
    out = capsys.readouterr().out
    assert exit_.value.code == 0, out
    assert f"{name} layout, {SHIPPED[name][2]} classes" in out
    assert "train     3 images" in out and "val       2 images" in out
    report = check_dataset(root)
    assert report["splits"]["train"]["sizes"] == {"53x37": 1, "60x41": 1, "47x45": 1}
    for split in ("train", "val"):
        assert sum(report["splits"][split]["class_shares"].values()) == pytest.approx(1.0)


def test_index_labels_matches_a_per_pixel_lookup():
    """The fast paths (min/max, runs of invalid values, few remapped values) against the plain lookup."""
    from ablate.data.layouts.base import NOT_IN_CLASS_SET, index_labels, value_table

    rng = np.random.default_rng(0)
    tables = [value_table({**{i: i for i in range(11)}, 11: 255}),  # SegNet
              value_table({0: 255, **{k: k - 1 for k in range(1, 151)}}),  # ADE20K
              value_table({**{i: i for i in range(21)}, 255: 255}),  # VOC
              value_table({k: k // 2 for k in range(0, 60, 3)} | {255: 255})]  # scattered valid values
    for table in tables:
        valid = np.flatnonzero(table != NOT_IN_CLASS_SET)
        for trial in range(40):
            values = rng.choice(valid, size=(7, 9)).astype(np.uint8)
            if trial % 2:
                values[rng.integers(7), rng.integers(9)] = rng.integers(256)
            want_bad = (table[values] == NOT_IN_CLASS_SET).any()
            img = Image.fromarray(values)
            if want_bad:
                with pytest.raises(DataError, match="outside the class set"):
                    index_labels(img, "p", table, expected="x")
            else:
                np.testing.assert_array_equal(index_labels(img, "p", table, expected="x"), table[values])
