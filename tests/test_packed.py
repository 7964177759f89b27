"""Seed packing: K seeds trained as one vmapped computation equal K runs of fit, seed by seed.

Tolerance (CPU, fp32, MiT-B0 + all_mlp at 32x32, 3 Adam steps, lr 1e-4): epoch losses within
1e-5 relative, weights within 5e-5 absolute (half an lr step); only BatchNorm-cancelled parameters (the biases of
the projections into all_mlp's BatchNorm, and stage 4's final LayerNorm bias that feeds only
them) may differ by up to lr per step: their exact gradient is zero, so the gradient is rounding
noise whose sign Adam turns into a full +-lr step; the running means that see those biases
differ by the same order.
"""

from __future__ import annotations

import copy
import re

import pytest
import torch

from ablate.data import load_split, make_synthetic
from ablate.engine import TrainConfig
from ablate.engine.packed import check_packable, fit_packed
from ablate.engine.step import make_optimizer
from ablate.engine.train import fit
from ablate.errors import ConfigError
from ablate.models import build_model

SIZE = (32, 32)
BN_CANCELLED = re.compile(r"decoder\.linear_c\.\d\.proj\.bias|encoder\.model\.stages\.3\.layer_norm\.bias|"
                          r"decoder\.batch_norm\.running_mean")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = make_synthetic(tmp_path_factory.mktemp("packed"), n_train=10, n_val=4, n_test=2, size=(40, 48), seed=1)
    return load_split(root, "train", size=SIZE, progress=False), load_split(root, "val", size=SIZE, progress=False)


def configs(seeds, **kw):
    base = dict(decoder="all_mlp", image_size=SIZE, batch_size=4, epochs=1, max_steps=3, device="cpu", amp="off",
                pretrained="none")
    return [TrainConfig(**{**base, **kw, "seed": s}) for s in seeds]


def one_by_one(cfgs, train, val):
    models = [build_model(c.decoder, num_classes=11, seed=c.seed) for c in cfgs]
    return models, [fit(m, train, val, c, progress=False) for m, c in zip(models, cfgs)]


def packed(cfgs, train, val, corrupt=None):
    models = [build_model(c.decoder, num_classes=11, seed=c.seed) for c in cfgs]
    if corrupt is not None:
        with torch.no_grad():
            next(models[corrupt].parameters()).fill_(float("nan"))
    return models, fit_packed(models, train, val, cfgs, progress=False)


def assert_same_run(model_a, res_a, model_b, res_b, lr=1e-4):
    assert res_a.status == res_b.status == "ok"
    assert res_b.history[0]["train_loss"] == pytest.approx(res_a.history[0]["train_loss"], rel=1e-5)
    assert res_b.best_val_miou == pytest.approx(res_a.best_val_miou, abs=2e-3)
    sa, sb = model_a.state_dict(), model_b.state_dict()
    assert sa.keys() == sb.keys()
    for name in sa:
        diff = (sa[name].double() - sb[name].double()).abs().max().item()
        bound = 3 * lr * res_a.steps if BN_CANCELLED.fullmatch(name) else 5e-5
        assert diff <= bound, (name, diff)


def test_packed_seeds_equal_one_by_one_training(tiny):
    train, val = tiny
    cfgs = configs([0, 7])
    ref_models, ref = one_by_one(cfgs, train, val)
    models, got = packed(cfgs, train, val)
    for k in range(2):
        assert got[k].packed == 2 and got[k].steps == 3
        assert_same_run(ref_models[k], ref[k], models[k], got[k])
    # each seed has its own BatchNorm statistics (they are not shared or averaged)
    means = [m.decoder.batch_norm.running_mean for m in models]
    assert not torch.allclose(means[0], means[1])
    assert int(models[0].decoder.batch_norm.num_batches_tracked) == 3


def test_one_adam_over_stacked_params_is_k_adams():
    """Adam is element-wise: one optimiser over [K, ...] tensors equals K optimisers, bit for bit."""
    g = torch.Generator().manual_seed(0)
    shapes = [(3, 5), (7,)]
    per_seed = [[torch.randn(s, generator=g).requires_grad_() for s in shapes] for _ in range(3)]
    stacked = [torch.stack([p[i].detach() for p in per_seed]).requires_grad_() for i in range(len(shapes))]
    opts = [make_optimizer(p, lr=1e-2, weight_decay=0.01, kind="adamw") for p in per_seed]
    opt = make_optimizer(stacked, lr=1e-2, weight_decay=0.01, kind="adamw")
    for _ in range(4):
        grads = [[torch.randn(s, generator=g) for s in shapes] for _ in range(3)]
        for k, params in enumerate(per_seed):
            for p, gr in zip(params, grads[k]):
                p.grad = gr.clone()
            opts[k].step()
        for i, p in enumerate(stacked):
            p.grad = torch.stack([grads[k][i] for k in range(3)])
        opt.step()
    for i, p in enumerate(stacked):
        assert torch.equal(p.detach(), torch.stack([per_seed[k][i].detach() for k in range(3)]))


def test_a_diverging_seed_fails_alone(tiny):
    train, val = tiny
    cfgs = configs([0, 7])
    ref_models, ref = one_by_one(cfgs[:1], train, val)
    models, got = packed(cfgs, train, val, corrupt=1)
    assert got[1].status == "failed" and "loss became nan at epoch 1, step 1/3" in got[1].error
    assert_same_run(ref_models[0], ref[0], models[0], got[0])


def test_pack_checks_fail_with_one_line():
    with pytest.raises(ConfigError, match="differ: lr"):
        check_packable(configs([0]) + [TrainConfig(**{**configs([1])[0].to_dict(), "lr": 1e-3})])
    with pytest.raises(ConfigError, match="distinct"):
        check_packable(configs([3, 3]))
    if torch.cuda.is_available():
        with pytest.raises(ConfigError, match="fp16"):
            check_packable(configs([0, 1], device="cuda", amp="fp16"))


def test_fit_is_bit_for_bit_reproducible_for_a_seed(tiny):
    """Same seed, same configuration, same machine: identical losses and weights (dropout and drop-path included)."""
    train, val = tiny
    cfg = configs([5], augment=True)[0]
    runs = [one_by_one([cfg], train, None) for _ in range(2)]
    (ma, ra), (mb, rb) = ([m[0], r[0]] for m, r in runs)
    assert ra.history[0]["train_loss"] == rb.history[0]["train_loss"]
    assert all(torch.equal(a, b) for a, b in zip(ma.state_dict().values(), mb.state_dict().values()))
    model = build_model("all_mlp", num_classes=11, seed=5)
    other = copy.deepcopy(cfg)
    other.seed = 6
    fit(model, train, None, other, progress=False)
    assert not torch.equal(model.decoder.classifier.weight, ma.decoder.classifier.weight)


@pytest.mark.slow
@pytest.mark.parametrize("decoder", ["progressive", "skip_fused"])
def test_packed_ladder_decoders_match_one_by_one(tiny, decoder):
    train, val = tiny
    cfgs = configs([0, 1], decoder=decoder)
    ref_models, ref = one_by_one(cfgs, train, val)
    models, got = packed(cfgs, train, val)
    for k in range(2):
        assert got[k].history[0]["train_loss"] == pytest.approx(ref[k].history[0]["train_loss"], rel=1e-5)


def test_bench_train_packed_mode_counts_images_over_all_seeds(tmp_path):
    from ablate.bench.train_speed import run_bench

    root = make_synthetic(tmp_path / "data", n_train=8, n_val=2, n_test=2, size=(40, 48), seed=2)
    res = run_bench(root, decoder="all_mlp", rounds=1, steps_per_round=2, batch_size=2, image_size=32, threads=1,
                    amp="off", device="cpu", warmup=1, reference=False, pack=3, cache_dir=tmp_path / "cache")
    assert res["settings"]["ours"]["packed_seeds"] == 3 and res["ours_images_per_s"] > 0
    assert res["last_loss"]["ours"] > 0


def test_train_runs_packed_gives_train_runs_rows(tmp_path):
    from ablate.engine.packed import train_runs_packed
    from ablate.engine.train import train_run

    root = make_synthetic(tmp_path / "data", n_train=8, n_val=4, n_test=4, size=(40, 48), seed=3)
    cfgs = configs([0, 1], batch_size=4, max_steps=2)
    common = dict(data_root=root, eval_split="test", progress=False, cache_dir=tmp_path / "cache", study="s",
                  variant="v", phase="seed")
    rows = train_runs_packed(cfgs, out_dir=tmp_path / "packed", run_ids=["v-seed-0", "v-seed-1"], **common)
    alone = train_run(cfgs[1], out_dir=tmp_path / "alone", run_id="v-seed-1", **common)
    assert [r["seed"] for r in rows] == [0, 1] and all(r["status"] == "ok" for r in rows)
    assert set(rows[1]) == set(alone)
    assert rows[1]["miou"] == pytest.approx(alone["miou"], abs=2e-3)
    assert (tmp_path / "packed" / "confusion" / "v-seed-1.npz").is_file()
    assert '"packed_seeds": 2' in rows[1]["config"] and '"packed_seeds": 1' in alone["config"]


def test_suggested_pack_size_is_one_on_cpu():
    from ablate.engine.packed import suggested_pack_size

    assert suggested_pack_size(configs([0])[0], seeds=10, num_classes=11) == 1
