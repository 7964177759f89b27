"""``ablate run``: a thin click command over ``ablate.sweep`` (load, prepare, run or list)."""

from __future__ import annotations

import sys

import click


@click.command("run")
@click.argument("study_file", type=click.Path(dir_okay=False))
@click.option("--preset", default=None, help="A preset of the study: smoke, cpu or paper (or its own).")
@click.option("--data", default=None, help="Dataset root (else $ABLATE_DATA, else the download cache).")
@click.option("--layout", default=None, metavar="NAME",
              help="Read the dataset with this registered layout (default: the study's data['layout'], else detected).")
@click.option("--out", default="runs", show_default=True, help="Parent of the run directory.")
@click.option("--storage", default=None, help="Optuna storage URL (default: sqlite in the run directory).")
@click.option("--list", "list_only", is_flag=True, help="Show what is done, running, failed, to do; run nothing.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None, help="Override the device.")
@click.option("--heartbeat", type=click.IntRange(1), default=10, show_default=True,
              help="Seconds between heartbeats; a run silent for 3x this long is retried.")
@click.option("--threads", type=click.IntRange(1), default=None,
              help="torch CPU threads for training (recorded with each run); default: the study's, else torch's.")
@click.option("--workers", default="auto", show_default=True, metavar="N|auto",
              help="Worker processes on this machine sharing the study (auto: 1 on CPU, as GPU memory allows "
                   "on CUDA).")
@click.option("--pack-seeds", default="auto", show_default=True, metavar="K|auto",
              help="Seeds of one variant a worker trains packed as one computation (auto: 1 on CPU, as GPU memory "
                   "allows on CUDA); each run records packed_seeds in its config.")
@click.option("--pretrained", default=None, metavar="none|ID|DIR",
              help="Override the study's encoder weights: none (random init), a Hugging Face id or a local dir.")
@click.option("--retry-failed", is_flag=True, help="Re-queue runs that failed, then run.")
@click.option("--fork", is_flag=True,
              help="When --out holds this study with other settings: run it in a new directory beside that one, "
                   "re-using every finished run whose settings are unchanged.")
@click.option("--keep-checkpoints", type=click.Choice(["seeds", "all", "none"]), default=None,
              help="Which runs keep their final weights: seed runs, all (tuning trials too) or none "
                   "(default: the study's, seeds; the smoke preset keeps none).")
@click.option("-v", "--verbose", is_flag=True, help="Off a terminal, also one line per epoch.")
@click.option("--no-progress", is_flag=True, help="No progress bars or lines.")
@click.option("--until-settled", is_flag=True,
              help="Add seed pairs in groups until every hypothesis is settled (group-sequential, alpha spending).")
@click.option("--max-seeds", type=click.IntRange(3), default=None,
              help="--until-settled: most complete seed pairs to train (default: 40).")
@click.option("--look-every", type=click.IntRange(1), default=1, show_default=True,
              help="--until-settled: seeds added between two looks.")
def run_command(study_file, *, preset, data, layout, out, storage, list_only, device, heartbeat, threads, workers,
                pack_seeds, pretrained, retry_failed, fork, keep_checkpoints, verbose, no_progress, until_settled, max_seeds,
                look_every):
    """Run STUDY_FILE: tune, repeat seeds, measure latency. Run it again to resume; run it on
    several machines with one --storage to share the work."""
    from ablate.errors import ConfigError
    from ablate.study.definition import load_study
    from ablate.sweep import Sweep, prepare_run_dir, status_table

    study = load_study(study_file, preset=preset)
    if layout is not None:  # how the data are read is part of the study (study.json)
        study.data = {**study.data, "layout": layout}
    if pretrained is not None:  # recorded in study.json and with every run
        study.pretrained = None if pretrained.strip().lower() in ("", "none") else pretrained
    gate = None
    if until_settled:
        gate = _seed_gate(study, max_seeds=max_seeds or 40, look_every=look_every)
    elif max_seeds is not None:
        raise click.UsageError("--max-seeds goes with --until-settled")
    if list_only:
        click.echo(status_table(study, out=out, storage=storage))
        return
    if workers != "auto" and not (workers.isdigit() and int(workers) >= 1):
        raise ConfigError(f"--workers must be a whole number >= 1 or auto, got {workers!r}")
    if pack_seeds != "auto" and not (pack_seeds.isdigit() and int(pack_seeds) >= 1):
        raise ConfigError(f"--pack-seeds must be a whole number >= 1 or auto, got {pack_seeds!r}")
    run_dir = prepare_run_dir(study, out, fork=fork)
    keep_checkpoints = keep_checkpoints or study.keep_checkpoints
    _record_pack_seeds(run_dir, pack_seeds)
    threads = threads or study.threads
    if threads:  # on a shared or small machine, fewer threads than cores avoids oversubscription stalls
        from ablate.engine.environment import configure_threads

        configure_threads(threads)
    sweep = Sweep(study, run_dir, storage_url=storage, data=data, device=device, heartbeat=heartbeat,
                  progress=not no_progress, verbose=verbose, keep_checkpoints=keep_checkpoints, seed_gate=gate,
                  pack_seeds=pack_seeds if pack_seeds == "auto" else int(pack_seeds))
    if pack_seeds != "auto" and int(pack_seeds) > 1:
        sweep.check_packing()  # a variant that cannot be packed is refused before any run starts
    if retry_failed:
        click.echo(f"re-queued {sweep.retry_failed()} failed run(s)", err=True)
    n = _workers(workers, device or study.train.get("device", "auto"), sweep)
    if n > 1:
        from ablate.sweep.workers import run_workers

        argv = ["run", study_file, "--out", out, "--heartbeat", str(heartbeat), "--workers", "1",
                "--keep-checkpoints", keep_checkpoints, "--pack-seeds", pack_seeds]
        for flag, value in (("--preset", preset), ("--data", data), ("--layout", layout), ("--storage", storage),
                            ("--device", device),
                            ("--threads", threads), ("--pretrained", pretrained)):
            argv += [flag, str(value)] if value is not None else []
        argv += (["--verbose"] if verbose else []) + (["--no-progress"] if no_progress else [])
        argv += ["--fork"] if fork else []  # each worker finds the fork made here
        if until_settled:  # every worker builds the same gate; looks depend only on the recorded runs
            argv += ["--until-settled", "--max-seeds", str(max_seeds or 40), "--look-every", str(look_every)]
        click.echo(f"{n} workers on {run_dir.root}", err=True)
        code = run_workers(n, argv)
        sweep.import_shared()
        run_dir.rebuild_tables()
        if code:
            sys.exit(code)  # each worker said why on stderr
    else:
        sweep.run()
    failed = sweep.failed_runs()
    for key, _, error in failed:
        click.echo(f"failed: {key}: {error}", err=True)
    if gate is not None:
        from analysis.sequential.gate import read_looks

        looks = read_looks(run_dir.root) or {}
        decisions = ", ".join(f"{v} {d}" for v, d in (looks.get("decisions") or {}).items())
        click.echo(f"until settled: {looks.get('stop_reason', 'no look recorded')}"
                   + (f" ({decisions})" if decisions else "") + f"; looks in {run_dir.root / 'looks.json'}")
    # --until-settled replaces a failed seed by the next one, so only other failures leave the study incomplete
    incomplete = [key for key, phase, _ in failed if not (gate is not None and phase == "seed")]
    if incomplete:
        from ablate.errors import FailedRuns

        raise FailedRuns(f"{len(incomplete)} run(s) failed ({', '.join(incomplete[:4])}"
                         f"{', ...' if len(incomplete) > 4 else ''}; errors above, also in `--list`): fix the cause, "
                         f"then run the same command with --retry-failed; finished runs are kept in {run_dir.root}")
    click.echo(f"done: {run_dir.root} (next: ablate analyze {run_dir.root})")


def _record_pack_seeds(run_dir, pack_seeds: str) -> None:
    """study.json's ``pack_seeds``: what the last command asked (outside the fingerprint: packing changes no
    result beyond floating-point order); each run's config says how many seeds it was packed with."""
    import json

    from ablate.rundir import write_atomic

    resolved = json.loads(run_dir.study_json.read_text())
    if resolved.get("pack_seeds") != pack_seeds:
        resolved["pack_seeds"] = pack_seeds
        write_atomic(run_dir.study_json, json.dumps(resolved, indent=2, default=str) + "\n")


def _seed_gate(study, *, max_seeds: int, look_every: int):
    """Extend the study's seeds to --max-seeds (plus spares for failed runs) and build the analysis' gate.

    The decision is the analysis' (imported lazily, like `ablate analyze`); the sweep only asks it.
    """
    from analysis.sequential.gate import make_gate

    spares = max(2, max_seeds // 5)  # a failed run costs its seed; the next one takes its place
    seeds = list(study.seeds[: max_seeds + spares])
    candidate = 0
    while len(seeds) < max_seeds + spares:
        if candidate not in seeds:
            seeds.append(candidate)
        candidate += 1
    study.seeds = seeds
    return make_gate(study, max_seeds=max_seeds, look_every=look_every)


def _workers(workers: str, device: str, sweep) -> int:
    if workers != "auto":
        n = int(workers)
        if n > 1:
            sweep.check_data()  # a missing or malformed dataset is one error line here, not one per worker
        return n
    from ablate.engine.config import resolve_device
    from ablate.sweep.workers import default_workers

    device = resolve_device(device)
    if device == "cpu":
        return default_workers(device)
    # a missing or malformed dataset is one error line here, not one per worker; its size and classes count in
    # each worker's footprint
    sweep.check_data()
    return default_workers(device, study=sweep.study, data_root=sweep.data_root())
