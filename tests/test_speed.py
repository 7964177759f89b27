"""The speed-ups of ablate.engine.step (and all_mlp's folded head) compute the same thing as the plain path; the bench runs.

Tolerances: folding the all_mlp head is exact algebra, checked in float64 (1e-10); bf16 autocast
vs fp32 loss on a fixed batch: relative 2e-2; fused vs default Adam: parameters equal within
1e-6 after a step. Speed itself is never asserted here (see ``ablate bench train``).
"""

from __future__ import annotations

import copy
import json

import pytest

torch = pytest.importorskip("torch")

from ablate.bench import reference  # noqa: E402
from ablate.bench import timing as bench_timing  # noqa: E402
from ablate.engine import environment, step  # noqa: E402
from ablate.models.decoders import all_mlp as all_mlp_decoder  # noqa: E402


@pytest.fixture(scope="module")
def all_mlp():
    from ablate.models import build_model

    return build_model("all_mlp", num_classes=11, pretrained=None, seed=0)


def _batch(b=2, h=64, w=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, 3, h, w, generator=g)
    y = torch.randint(0, 11, (b, h, w), generator=g)
    y[:, :4] = 255
    return x, y


def test_folded_head_is_the_same_function(all_mlp):
    plain = copy.deepcopy(all_mlp).double().eval()
    fast = copy.deepcopy(plain)
    assert all_mlp_decoder.fold_all_mlp_head(fast.decoder)
    x, _ = _batch()
    with torch.no_grad():
        a, b = plain(x.double()), fast(x.double())
    assert a.shape == b.shape == (2, 11, 64, 96)
    assert torch.allclose(a, b, rtol=0, atol=1e-10 * a.abs().max().item())
    assert set(fast.state_dict()) == set(plain.state_dict())
    all_mlp_decoder.unfold_all_mlp_head(fast.decoder)
    assert "forward" not in vars(fast.decoder)


def test_folded_head_same_gradients(all_mlp):
    from ablate.engine.step import segmentation_loss

    plain = copy.deepcopy(all_mlp).double().train()
    plain.decoder.dropout.p = 0.0  # BN uses batch statistics in both; drop-path draws are re-seeded
    fast = copy.deepcopy(plain)
    all_mlp_decoder.fold_all_mlp_head(fast.decoder)
    x, y = _batch()
    for m in (plain, fast):
        torch.manual_seed(0)
        segmentation_loss(m(x.double()), y).backward()
    for (name, p), q in zip(plain.named_parameters(), fast.parameters()):
        scale = max(p.grad.abs().max().item(), 1e-12)
        assert (p.grad - q.grad).abs().max().item() <= 1e-8 * scale + 1e-14, name


def test_folded_head_with_seeded_dropout_same_outputs_and_gradients(all_mlp):
    """Training mode with dropout on: the folded tail (ReLU + dropout as one mask) draws the same noise."""
    from ablate.engine.noise import NoiseSource, noise_generator, seed_stochastic_layers
    from ablate.engine.step import segmentation_loss

    plain = copy.deepcopy(all_mlp).double().train()
    fast = copy.deepcopy(plain)
    assert all_mlp_decoder.fold_all_mlp_head(fast.decoder)
    x, y = _batch()
    outs = []
    for m in (plain, fast):
        seed_stochastic_layers(m, NoiseSource(noise_generator(7)))
        out = m(x.double())
        segmentation_loss(out, y).backward()
        outs.append(out.detach())
    assert plain.decoder.dropout.p == 0.1
    assert torch.allclose(outs[0], outs[1], rtol=0, atol=1e-10 * outs[0].abs().max().item())
    for (name, p), q in zip(plain.named_parameters(), fast.parameters()):
        scale = max(p.grad.abs().max().item(), 1e-12)
        assert (p.grad - q.grad).abs().max().item() <= 1e-8 * scale + 1e-14, name


def test_dropout_after_relu_is_dropout_of_relu():
    from ablate.engine.noise import NoiseSource, SeededDropout, noise_generator

    x = torch.randn(2, 8, 5, 6, dtype=torch.float64, requires_grad=True)
    grads, outs = [], []
    for fused in (False, True):
        drop = SeededDropout(0.3, NoiseSource(noise_generator(3)))
        out = drop.after_relu(x) if fused else drop(torch.relu(x))
        (grad,) = torch.autograd.grad((out * torch.arange(out.numel()).view_as(out)).sum(), x)
        outs.append(out)
        grads.append(grad)
    assert torch.equal(outs[0], outs[1]) and torch.equal(grads[0], grads[1])
    assert 0 < (outs[1] == 0).double().mean() < 1
    drop.eval()
    assert torch.equal(drop.after_relu(x), torch.relu(x))


def test_fold_skips_other_decoders():
    from ablate.models import build_decoder

    for name in ("progressive", "skip_fused"):
        dec = build_decoder(name, (32, 64, 160, 256), 11)
        assert not all_mlp_decoder.fold_all_mlp_head(dec)
        assert "forward" not in vars(dec)


def test_fast_path_loss_matches_plain_fp32(all_mlp):
    """Folded head + fp32 attention + bf16 autocast + channels_last vs the plain fp32 model: loss within 2e-2."""
    from ablate.engine.step import segmentation_loss

    plain = copy.deepcopy(all_mlp).eval()
    fast = step.prepare_model_for_training(copy.deepcopy(all_mlp), channels_last=True).eval()
    assert fast.encoder.model.config._attn_implementation == step.FP32_ATTENTION
    assert "forward" in vars(fast.decoder)
    x, y = _batch()
    with torch.no_grad():
        ref = segmentation_loss(plain(x), y).item()
        with step.autocast_context("cpu", "bf16"):
            logits = fast(x.contiguous(memory_format=torch.channels_last))
        got = segmentation_loss(logits, y).item()
        with step.autocast_context("cpu", "off"):
            same = segmentation_loss(fast(x), y).item()
    assert abs(got - ref) <= 2e-2 * abs(ref)
    assert abs(same - ref) <= 1e-5 * abs(ref)


def test_fused_adam_matches_default(all_mlp):
    from ablate.engine.step import segmentation_loss

    x, y = _batch(h=32, w=32)
    models, opts = [], []
    for fused in (True, False):
        m = copy.deepcopy(all_mlp).eval()  # eval: no dropout, deterministic
        opt = step.make_optimizer(m.parameters(), lr=1e-3) if fused else torch.optim.Adam(m.parameters(), lr=1e-3)
        for _ in range(2):
            opt.zero_grad(set_to_none=True)
            segmentation_loss(m(x), y).backward()
            opt.step()
        models.append(m)
        opts.append(opt)
    assert opts[0].defaults.get("fused") or opts[0].defaults.get("foreach")
    for p, q in zip(models[0].parameters(), models[1].parameters()):
        assert (p - q).abs().max().item() <= 1e-6


def test_train_step_is_fits_step(all_mlp):
    from ablate.engine.step import segmentation_loss

    x, y = _batch(h=32, w=32)
    a, b = copy.deepcopy(all_mlp).eval(), copy.deepcopy(all_mlp).eval()
    opt_a = torch.optim.Adam(a.parameters(), lr=1e-3)
    opt_b = torch.optim.Adam(b.parameters(), lr=1e-3)
    loss = step.train_step(a, opt_a, x, y, device="cpu", amp="off")
    ref = segmentation_loss(b(x), y)
    opt_b.zero_grad(set_to_none=True)
    ref.backward()
    opt_b.step()
    assert not loss.requires_grad and loss.item() == pytest.approx(ref.item(), rel=1e-6)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.allclose(p, q, atol=1e-7)


def test_hf_reference_model_logits_at_input_size():
    m = reference.hf_reference_model(11).eval()
    with torch.no_grad():
        out = m(torch.randn(1, 3, 64, 96))
    assert out.shape == (1, 11, 64, 96)


def test_peak_rss_readable():
    bench_timing.reset_peak_rss()
    mb = bench_timing.peak_rss_mb()
    assert mb is None or mb > 0


def test_bench_train_end_to_end(synthetic_root, tmp_path):
    from click.testing import CliRunner

    from ablate.cli.bench import bench_train_command

    args = ["--data", str(synthetic_root), "--rounds", "1", "--steps-per-round", "1", "--image-size", "32",
            "--batch-size", "2", "--warmup", "1", "--threads", "1", "--cache-dir", str(tmp_path), "--json"]
    res = CliRunner().invoke(bench_train_command, args)
    assert res.exit_code == 0, res.output
    out = json.loads(res.output.strip().splitlines()[-1])
    for key in ("ratio_median", "ratio_min", "ratio_max", "ref_images_per_s", "ours_images_per_s",
                "gflops_per_s_ref", "gflops_per_s_ours", "rounds", "settings", "versions"):
        assert key in out
    assert out["ratio_median"] > 0 and len(out["rounds"]["ratio"]) == 1
    assert out["settings"]["ours"]["folded_head"] is True
    assert out["settings"]["reference"]["process"].startswith("its own")
    assert out["settings"]["ours"]["keeps_freed_memory"] in (True, False)
    # the reference's own process reports its loss and memory
    assert out["last_loss"]["ref"] == out["last_loss"]["ref"] and out["peak_rss_mb_ref"] > 0


def test_reference_process_reports_user_errors_as_such(tmp_path):
    """A bad dataset seen inside the reference's process is raised here as the same user error (exit 2)."""
    from ablate.errors import DataError

    (tmp_path / "images").mkdir()
    with pytest.raises(DataError):
        reference.ReferenceProcess(tmp_path, size=(32, 32), batch_size=2, num_classes=11, device="cpu",
                                   workers=0, threads=1)


def test_bench_train_other_decoder_has_no_reference(synthetic_root, tmp_path):
    from ablate.bench.train_speed import run_bench

    out = run_bench(synthetic_root, decoder="skip_fused", rounds=1, steps_per_round=1, batch_size=2,
                    image_size=32, threads=1, warmup=0, cache_dir=tmp_path)
    assert out["ratio_median"] is None and out["ref_images_per_s"] is None
    assert out["ours_images_per_s"] > 0 and out["settings"]["ours"]["folded_head"] is False


def test_configure_threads_auto_and_explicit():
    before = torch.get_num_threads()
    try:
        assert environment.configure_threads(1) == 1
        n = environment.configure_threads("auto")
        assert 1 <= n <= max(1, __import__("os").cpu_count() or 1)
        assert environment.configure_threads(None) == n
    finally:
        torch.set_num_threads(before)


def test_seeded_drop_path_is_hf_drop_path_exactly():
    """One division instead of HF's ``x.div(keep) * mask``: the same values and gradients, bit for bit."""
    from ablate.engine.noise import NoiseSource, SeededDropPath

    x = torch.randn(6, 50, 32, requires_grad=True)
    u = torch.tensor([0.05, 0.5, 0.95, 0.01, 0.3, 0.99]).view(6, 1, 1)
    keep = 0.8
    noise = NoiseSource(None)
    layer = SeededDropPath(1 - keep, noise).train()
    with noise.replaying([u]):
        ours = layer(x)
    hf = x.div(keep) * torch.floor(u + keep)
    assert torch.equal(ours, hf)
    weights = torch.randn_like(ours)
    (g_ours,) = torch.autograd.grad((ours * weights).sum(), x)
    (g_hf,) = torch.autograd.grad((hf * weights).sum(), x)
    assert torch.equal(g_ours, g_hf)
    assert (ours[[0, 3]] == 0).all() and (ours[[1, 2, 4, 5]] != 0).all()


_CHURN = """
import ctypes, resource, sys
sys.path.insert(0, {root!r})
if sys.argv[1] == "keep":
    from ablate.engine.environment import keep_freed_memory
    assert keep_freed_memory()
libc = ctypes.CDLL(None)
libc.posix_memalign.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_size_t, ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
N = 16 << 20
def step():  # what a training step does with its activations (PyTorch: posix_memalign(64, n))
    blocks = [ctypes.c_void_p() for _ in range(4)]
    for b in blocks:
        libc.posix_memalign(ctypes.byref(b), 64, N)
        libc.memset(b, 1, N)
    for b in blocks:
        libc.free(b)
for _ in range(8):  # the heap settles into reusable free blocks within a few steps
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    step()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5)
"""


@pytest.mark.skipif(not (environment.platform.system() == "Linux" and environment.platform.libc_ver()[0] == "glibc"),
                    reason="glibc's mallopt")
def test_keep_freed_memory_stops_page_faults_of_reused_activations():
    """Four 16 MB activations per step: the default allocator faults their pages in every step; kept, none."""
    import subprocess
    import sys
    from pathlib import Path

    code = _CHURN.format(root=str(Path(__file__).resolve().parents[1]))
    faults = {mode: float(subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True,
                                         check=True).stdout) for mode in ("default", "keep")}
    pages = 4 * (16 << 20) / 4096
    assert faults["default"] > 0.5 * pages, faults  # the C library's default hands the memory back
    assert faults["keep"] < 0.05 * pages, faults


def test_request_huge_pages_only_before_torch(monkeypatch):
    monkeypatch.delenv(environment.HUGE_PAGES_ENV, raising=False)
    assert environment.request_huge_pages() is False  # torch is imported here: too late to ask
    assert environment.HUGE_PAGES_ENV not in environment.os.environ
    monkeypatch.setenv(environment.HUGE_PAGES_ENV, "0")
    assert environment.request_huge_pages() is False  # the user's choice stands
