"""``ablate bench latency|train``: thin click commands over ``ablate.bench``."""

from __future__ import annotations

import json

import click


@click.command("latency")
@click.argument("study_file", type=click.Path(dir_okay=False))
@click.option("--preset", default=None, help="A preset of the study (its image size and rounds).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: per variant ms/image and ratio vs baseline.")
@click.option("--dtype", type=click.Choice(["fp32", "bf16"]), default=None, help="Inference precision.")
@click.option("--rounds", type=click.IntRange(2), default=None, help="Timed rounds (default: the study's).")
@click.option("--threads", type=click.IntRange(1), default=None, help="torch threads (default: all).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--image-size", "image_sizes", multiple=True, help="HxW; repeat for several (default: the study's).")
@click.option("--batch", "batches", multiple=True, type=click.IntRange(1), help="Batch; repeat (default: 1 and the study's).")
@click.option("--reference/--no-reference", default=True, show_default=True,
              help="Also time Hugging Face's SegFormer in fp32 and the baseline with ablate's inference speed-ups.")
@click.option("--mode", "modes", multiple=True, type=click.Choice(["eager", "compiled", "graph"]),
              help="eager, compiled (torch.compile; CUDA: reduce-overhead = CUDA graphs) or graph (CUDA-graph "
                   "capture, CUDA only); repeat to measure several (default: the mode claims use).")
@click.option("--launches", type=click.IntRange(1), default=None,
              help="Launches, each a fresh process (default: the study's).")
@click.option("--in-process", is_flag=True,
              help="Launches in this process (fresh models + warm-up) instead of fresh processes.")
@click.option("--allow-emulated-bf16", is_flag=True,
              help="Time bf16 on a CPU without native bf16 anyway (emulated: >10x slower than fp32).")
@click.option("--data", default=None, metavar="DIR",
              help="The study's dataset folder (its class count sizes the models); default: as `ablate run` finds it.")
@click.option("--layout", default=None, metavar="NAME", help="Read --data with this registered layout (default: detect).")
def latency_command(study_file, *, preset, as_json, dtype, rounds, threads, device, image_sizes, batches,
                    reference, modes, launches, in_process, allow_emulated_bf16, data, layout):
    """Latency of each variant of STUDY_FILE over launches (random order per round), and throughput vs the baseline."""
    from ablate.bench.latency import format_summary, run_latency_bench
    from ablate.engine.config import parse_size
    from ablate.rundir import json_safe  # JSON has no NaN: null
    from ablate.study.definition import load_study

    study = load_study(study_file, preset=preset)
    num_classes = _study_num_classes(study, data, layout)
    sizes = [parse_size(s) for s in image_sizes] or None
    echo = lambda msg: click.echo(msg, err=True)  # noqa: E731  (progress on stderr; stdout stays the result)
    result = run_latency_bench(study, num_classes=num_classes, device=device, dtype=dtype, rounds=rounds, threads=threads,
                               image_sizes=sizes, batches=list(batches) or None, reference=reference,
                               modes=list(modes) or None, launches=launches, fresh_process=not in_process,
                               allow_emulated_bf16=allow_emulated_bf16, progress=echo)
    click.echo(json.dumps(json_safe(result), indent=2) if as_json else format_summary(result))


def _study_num_classes(study, data, layout) -> int:
    """The class count of the study's dataset, opened as ``ablate run`` opens it (a synthetic kind is written to a
    temporary folder)."""
    import tempfile

    from ablate.data.registry import dataset_layout

    with tempfile.TemporaryDirectory(prefix="ablate-bench-") as workdir:
        return dataset_layout(study.data, data=data, workdir=workdir, layout=layout,
                              grouped=study.train.get("grouped", True)).num_classes


@click.command("train")
@click.option("--data", "data", default=None, help="Dataset folder (default: $ABLATE_DATA or the download cache).")
@click.option("--layout", default=None, metavar="NAME", help="Read --data with this registered layout (default: detect).")
@click.option("--decoder", default="all_mlp", show_default=True,
              help="Any registered decoder (on its default encoder); the HF reference runs only for all_mlp.")
@click.option("--study", "study_file", default=None, metavar="FILE", type=click.Path(dir_okay=False),
              help="A study file to run first, so its own decoders can be timed.")
@click.option("--rounds", type=int, default=5, show_default=True, help="Interleaved rounds.")
@click.option("--steps-per-round", type=int, default=20, show_default=True, help="Training steps per side per round.")
@click.option("--batch-size", type=int, default=4, show_default=True)
@click.option("--image-size", default="256", show_default=True, help="N or HxW.")
@click.option("--threads", default=None,
              help="torch intra-op threads for both sides: N, or 'auto' (cores not busy by load average); "
                   "default: torch's choice.")
@click.option("--amp", type=click.Choice(["auto", "bf16", "fp16", "off"]), default="auto", show_default=True,
              help="Our precision; the reference is always fp32.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--channels-last/--no-channels-last", default=True, show_default=True)
@click.option("--fold-head/--no-fold-head", default=True, show_default=True,
              help="Fold all_mlp's 1x1 fuse into the projections (same function, ~2x faster step).")
@click.option("--warmup", type=int, default=2, show_default=True, help="Untimed steps per side first.")
@click.option("--workers", type=int, default=2, show_default=True, help="DataLoader workers of the reference.")
@click.option("--cache-dir", default=None, help="Decode-once cache folder (default $ABLATE_CACHE or ~/.cache/ablate).")
@click.option("--pack", type=click.IntRange(1), default=1, show_default=True,
              help="Train this many seeds packed into one computation (images/s over all of them).")
@click.option("--reference-process/--reference-in-process", default=True, show_default=True,
              help="Run the HF reference in a process of its own, as a user's script runs (default), or in "
                   "this one, where it shares ours' process settings (a conservative ratio).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def bench_train_command(data, layout, decoder, study_file, rounds, steps_per_round, batch_size, image_size, threads,
                        amp, device,
                        channels_last, fold_head, warmup, workers, cache_dir, pack, reference_process, as_json):
    """Training images/s of ablate vs a plain Hugging Face loop, in alternating slices."""
    from ablate.bench.train_speed import format_result, run_bench
    from ablate.data import resolve_data_root
    from ablate.models import decoder_defaults

    if study_file is not None:
        from ablate.study.plugins import run_study_file

        run_study_file(study_file)
    decoder_defaults(decoder)  # an unknown name is one line listing the registered ones, before any data is read
    root = resolve_data_root(data)
    echo = lambda msg: click.echo(msg, err=True)  # noqa: E731  (progress on stderr; stdout stays one JSON object)
    res = run_bench(root, layout=layout, imports=[study_file] if study_file else (), decoder=decoder, rounds=rounds,
                    steps_per_round=steps_per_round, batch_size=batch_size,
                    image_size=image_size, threads=threads, amp=amp, device=device, channels_last=channels_last,
                    fold_head=fold_head, warmup=warmup, workers=workers, cache_dir=cache_dir, echo=echo, pack=pack,
                    reference_process=reference_process)
    click.echo(json.dumps(res, indent=None if as_json else 2) if as_json else format_result(res))
