"""Seed packing in the sweep's seed phase (issue 11 item 2): with --pack-seeds K a worker claims up to K
queued seeds of one variant, trains them packed (ablate.engine.packed), and records each as the single-seed
path does. Real training on tiny synthetic data (CPU); tolerances as documented at LOSS_REL."""

from __future__ import annotations

import csv
import json

import pytest

STUDY = """
from ablate.study import Claim, Study, Variant
study = Study(
    name="packs",
    data={"kind": "synthetic", "n_train": 4, "n_val": 2, "n_test": 2, "size": (32, 32)},
    image_size=(32, 32), pretrained=None,
    variants={"all_mlp": Variant("all_mlp"), "skip_fused": Variant("skip_fused")},
    baseline="all_mlp", train={"epochs": 2, "batch_size": 2, "lr": 1e-4, "amp": "off", "device": "cpu"},
    trials=0, seeds=[0, 1, 2],
    claims=[Claim("skip_fused", "miou", band=(0.02, 0.03))],
)
"""


# Epoch losses of a packed seed and the same seed alone, relative. Not bit-equal: the batched (vmapped)
# kernels sum in another order, so each fp32 forward/backward differs at rounding level (~1e-7 relative),
# and Adam divides each gradient by its own size, so a component whose true gradient is at rounding level
# (the BatchNorm-cancelled biases, see tests/test_packed.py) takes a +-lr step whichever sign its noise has.
# After the 4 steps here the runs' weights differ by up to 2 * lr * steps = 8e-4 in those components and
# the losses drift apart by what that moves: measured here up to 1.3e-6 (torch 2.13) and 2.8e-6 (torch 2.14.1),
# and 1.8e-5 on another CPU (torch 2.14.1, issue 17): it grows with the steps and depends on the CPU's kernels. 1e-4 holds that drift with
# room while a real fault (another seed's init, data order or draws; a missed step) moves the loss by the
# seed-to-seed spread, ~1e-2 (checked in the test, so the bound cannot silently become vacuous).
LOSS_REL = 1e-4


def no_latency(study, *, configs, device):
    return []


def sweep(tmp_path, pack_seeds):
    from ablate.engine import train_run
    from ablate.study import load_study
    from ablate.sweep import Sweep, prepare_run_dir

    path = tmp_path / "packs.py"
    path.write_text(STUDY)
    study = load_study(path)
    run_dir = prepare_run_dir(study, tmp_path / f"runs-{pack_seeds}")
    Sweep(study, run_dir, progress=False, backend=(train_run, no_latency), heartbeat=2,
          pack_seeds=pack_seeds).run()
    with open(run_dir.results_csv, newline="") as f:
        results = {r["run_id"]: r for r in csv.DictReader(f)}
    with open(run_dir.root / "epochs.csv", newline="") as f:
        epochs = {(r["run_id"], int(r["epoch"])): float(r["train_loss"]) for r in csv.DictReader(f)}
    return run_dir, results, epochs


@pytest.mark.timeout(120)
def test_packed_seed_phase_gives_every_seed_one_row_equal_to_unpacked(tmp_path):
    run_dir, packed, packed_epochs = sweep(tmp_path, 2)
    _, alone, alone_epochs = sweep(tmp_path, 1)
    keys = {f"{v}-seed-{s}" for v in ("all_mlp", "skip_fused") for s in (0, 1, 2)}
    assert set(packed) == set(alone) == keys  # one row per seed, none twice
    for key in keys:
        p, a = packed[key], alone[key]
        assert p["status"] == a["status"] == "ok" and p["split"] == "test"
        assert json.loads(a["config"])["packed_seeds"] == 1
        # K = 2 over 3 seeds: seeds 0 and 1 share a pack, seed 2 is trained alone
        assert json.loads(p["config"])["packed_seeds"] == (1 if key.endswith("-2") else 2)
        assert float(p["miou"]) == pytest.approx(float(a["miou"]), abs=2e-3)
        for epoch in (1, 2):
            assert packed_epochs[(key, epoch)] == pytest.approx(alone_epochs[(key, epoch)], rel=LOSS_REL)
    # the tolerance still tells a wiring fault: two seeds' losses (another seed's init, data order or draws)
    # differ by far more than it allows
    for v in ("all_mlp", "skip_fused"):
        spread = abs(alone_epochs[(f"{v}-seed-0", 1)] / alone_epochs[(f"{v}-seed-1", 1)] - 1)
        assert spread > 20 * LOSS_REL, (v, spread)
    assert all((run_dir.root / "confusion" / f"{k}.npz").is_file() for k in keys)
    assert json.loads(run_dir.study_json.read_text()).get("pack_seeds") in (None, 2)


def test_pack_seeds_must_be_a_number(tmp_path):
    from ablate.errors import StudyError
    from ablate.study import load_study
    from ablate.sweep import Sweep, prepare_run_dir

    path = tmp_path / "packs.py"
    path.write_text(STUDY)
    study = load_study(path)
    with pytest.raises(StudyError, match="pack_seeds"):
        Sweep(study, prepare_run_dir(study, tmp_path / "r"), progress=False, pack_seeds=0)
