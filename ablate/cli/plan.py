"""``ablate plan``: a thin click command over ``analysis.planning.plan`` (imported lazily, like ``ablate analyze``)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("plan")
@click.argument("study_file", type=click.Path(dir_okay=False))
@click.option("--pilot", "pilot_dir", default=None, type=click.Path(file_okay=False),
              help="A pilot run directory (default: OUT/<study>-pilot, made by `ablate run STUDY --preset pilot`).")
@click.option("--preset", default=None, help="Plan for this preset of the study (its seeds are the budget).")
@click.option("--out", default="runs", show_default=True, help="Where the default pilot directory is looked for.")
@click.option("--seeds", type=click.IntRange(2), default=None, help="Seed budget to plan for (default: the study's).")
@click.option("--look-every", type=click.IntRange(1), default=1, show_default=True,
              help="Seeds between two looks of --until-settled.")
@click.option("--alpha", type=click.FloatRange(0, 0.5, min_open=True, max_open=True), default=0.05,
              show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
def plan_command(study_file, *, pilot_dir, preset, out, seeds, look_every, alpha, as_json):
    """How many seeds (and hours) settle each claim of STUDY_FILE, from a pilot run."""
    import json

    from ablate.rundir import json_safe
    from ablate.study.definition import load_study
    from analysis import plan_study
    from analysis.planning.plan import format_plan

    study = load_study(study_file, preset=preset)
    pilot_dir = Path(pilot_dir) if pilot_dir else Path(out) / f"{study.name}-pilot"
    from ablate.engine.config import TrainConfig  # torch-free

    protocol = {"epochs": study.train.get("epochs", TrainConfig.epochs), "image_size": list(study.image_size)}
    plan = plan_study(pilot_dir, study.claims, baseline=study.baseline, seeds=seeds or len(study.seeds),
                      alpha=alpha, look_every=look_every, protocol=protocol)
    differences = _pilot_differences(pilot_dir, study)
    plan.warnings[:0] = [f"the pilot does not follow the study's protocol: {d}" for d in differences]
    if as_json:
        click.echo(json.dumps(json_safe(plan.to_dict()), indent=2))
        return
    if differences:  # before the numbers, so they are not read as the real study's
        preset = _pilot_preset(pilot_dir)
        click.echo(f"NOT A PILOT OF THIS STUDY'S PROTOCOL{f' (it is the {preset!r} preset)' if preset else ''}: "
                   f"{len(differences)} difference(s), listed as warnings below; the plan is for what the pilot ran "
                   f"(for the study: ablate run {study_file} --preset pilot, then plan again)\n")
    click.echo(format_plan(plan))


def _pilot_study(pilot_dir) -> dict:
    import json

    try:
        return json.loads((Path(pilot_dir) / "study.json").read_text())
    except (OSError, ValueError):
        return {}


def _pilot_preset(pilot_dir) -> str | None:
    return _pilot_study(pilot_dir).get("preset")


def _pilot_differences(pilot_dir, study) -> list[str]:
    from analysis.planning.protocol import protocol_differences

    pilot = _pilot_study(pilot_dir)
    return protocol_differences(pilot, study.to_dict()) if pilot else []
