"""Every registered decoder on its default encoder passes the same tests (timm style, parametrised over the
registry): forward at odd sizes, backward reaches every parameter, eval/train modes, packed seeds equal seeds
trained alone, save/load round trip. Random init, 5 classes, tiny images (pan needs 256 px: its minimum)."""

from __future__ import annotations

import io

import pytest
import torch
import torch.nn.functional as F

from ablate.engine.noise import NoiseSource, noise_generator, seed_stochastic_layers
from ablate.engine.step import segmentation_loss
from ablate.models import build_model, decoder_encoder, list_decoders, min_train_batch
from ablate.models.decoders.registry import decoder_class

DECODERS = [d for d in list_decoders() if decoder_class(d).__module__.startswith("ablate.")]  # shipped ones
CLASSES = 5
HEAVY = {"manet", "unetplusplus", "pan"}  # > 5 s for the packed test on 2 CPU cores


def side(name: str) -> int:
    return 256 if name == "pan" else 64  # pan's pyramid attention needs the 1/32 level at least 8x8


def model(name: str, seed: int = 0):
    return build_model(name, num_classes=CLASSES, seed=seed)


@pytest.mark.parametrize("name", DECODERS)
def test_forward_at_odd_sizes(name):
    m = model(name).eval()
    s = side(name)
    for size in [(s, s), (s + 5, s + 13), (s + 37, s + 21)]:
        with torch.no_grad():
            out = m(torch.randn(1, 3, *size))
        assert out.shape == (1, CLASSES, *size) and torch.isfinite(out).all(), (name, size)


@pytest.mark.parametrize("name", DECODERS)
def test_backward_reaches_every_parameter(name):
    m = model(name).train()
    s = side(name)
    x, y = torch.randn(2, 3, s, s), torch.randint(0, CLASSES, (2, s, s))
    F.cross_entropy(m(x), y).backward()
    for pname, p in m.named_parameters():
        assert p.grad is not None, f"{name} on {decoder_encoder(name)}: {pname} gets no gradient"
        assert torch.isfinite(p.grad).all(), f"{name}: {pname} has a non-finite gradient"


@pytest.mark.parametrize("name", DECODERS)
def test_eval_is_deterministic_and_only_train_updates_batchnorm(name):
    m = model(name)
    s = side(name)
    x = torch.randn(2, 3, s, s)
    stats = {k: v.clone() for k, v in m.state_dict().items() if "running_mean" in k}  # the encoder's at least
    assert any(k.startswith("decoder.") for k in stats) or name == "fpn", f"{name}: no BatchNorm to check"  # fpn: GN
    with torch.no_grad():
        a, b = m.eval()(x), m(x)
    assert torch.equal(a, b) and not any(mod.training for mod in m.modules())
    assert all(torch.equal(stats[k], m.state_dict()[k]) for k in stats)
    with torch.no_grad():
        m.train()(x)
    assert all(mod.training for mod in m.modules())
    changed = {k for k in stats if not torch.equal(stats[k], m.state_dict()[k])}
    assert {k for k in stats if k.startswith("decoder.")} <= changed


@pytest.mark.parametrize("name", DECODERS)
def test_save_load_round_trip(name):
    m = model(name, seed=0).eval()
    buffer = io.BytesIO()
    torch.save(m.state_dict(), buffer)
    other = model(name, seed=1).eval()
    buffer.seek(0)
    other.load_state_dict(torch.load(buffer, weights_only=True))
    x = torch.randn(1, 3, side(name), side(name))
    with torch.no_grad():
        assert torch.equal(m(x), other(x))


@pytest.mark.parametrize("name", [pytest.param(d, marks=pytest.mark.slow) if d in HEAVY else d for d in DECODERS])
def test_packed_seeds_compute_what_each_seed_computes_alone(name):
    """One vmapped loss and backward over two packed seeds equals each seed's own, dropout draws included
    (in float64, so that a different summation order cannot hide or fake a difference)."""
    from ablate.engine.packed import PackedModels

    s = side(name)
    seeds = [0, 7]
    x = torch.randn(2, 2, 3, s, s, dtype=torch.float64)
    y = torch.randint(0, CLASSES, (2, 2, s, s))
    alone = []
    for k, seed in enumerate(seeds):
        m = model(name, seed).double()
        seed_stochastic_layers(m, NoiseSource(noise_generator(seed)))
        loss = segmentation_loss(m.train()(x[k]), y[k])
        loss.backward()
        alone.append((loss.item(), {n: p.grad for n, p in m.named_parameters()}))
    models = [model(name, seed).double() for seed in seeds]
    noises = [NoiseSource(noise_generator(seed)) for seed in seeds]
    for m, noise in zip(models, noises):
        seed_stochastic_layers(m, noise)
        m.train()
    pack = PackedModels(models, noises)
    losses = pack.losses(x, y, pack.draw_noise(x.shape[1:], "cpu"))
    losses.sum().backward()
    for k in range(2):
        assert losses[k].item() == pytest.approx(alone[k][0], rel=1e-6)  # the loss itself is fp32
        # each tensor within 1e-5 in norm (fp32 loss gradient, float64 below it), with a floor on the scale of the
        # seed's largest gradient for the ones that are exactly zero (attention key biases)
        scale = max(g.norm().item() for g in alone[k][1].values())
        for n, g in alone[k][1].items():
            diff = (pack.params[n].grad[k] - g).norm().item()
            assert diff <= 1e-5 * g.norm().item() + 1e-9 * scale, (name, n, diff, g.norm().item())


@pytest.mark.parametrize("name", DECODERS)
def test_batch_of_one_in_training_fails_exactly_where_declared(name):
    """min_train_batch = 2 is declared for the heads with BatchNorm after global pooling; a batch of one in
    training fails there and only there (checked on the meta device)."""
    from ablate.models.checks import build_on_meta

    m = build_on_meta(name, num_classes=CLASSES).train()
    s = side(name)
    try:
        m(torch.empty(1, 3, s, s, device="meta"))
        fails = False
    except ValueError as exc:
        assert "more than 1 value per channel" in str(exc)
        fails = True
    assert fails == (min_train_batch(name) == 2), name
