"""``ablate train``: train and evaluate one model (``ablate.engine.train_run``), write ``<out>/result.json``."""

from __future__ import annotations

import sys

import click

from ablate.engine.config import AMP_MODES, DEVICES, OPTIMIZERS, TrainConfig, parse_size
from ablate.errors import ConfigError, DataError


def _decoder_settings(pairs: tuple[str, ...]) -> dict:
    """--set embed_dim=128 --set refine=dw -> {"embed_dim": 128, "refine": "dw"} (JSON values where they parse)."""
    import json

    settings = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"bad --set {pair!r}; use KEY=VALUE, e.g. --set embed_dim=128")
        try:
            settings[key] = json.loads(value)
        except json.JSONDecodeError:
            settings[key] = value
    return settings


@click.command("train")
@click.option("--data", "data", default=None, metavar="DIR",
              help="Dataset folder (any registered layout); default $ABLATE_DATA or the download cache (CamVid).")
@click.option("--layout", default=None, metavar="NAME", help="Read --data with this registered layout (default: detect).")
@click.option("--decoder", default="all_mlp", show_default=True, help="Decoder name (see the model registry).")
@click.option("--encoder", default=None, metavar="NAME",
              help="Encoder: mit_b0..mit_b5, resnet18/34/50/101, timm:<name> (default: the decoder's own).")
@click.option("--study", "study_file", default=None, metavar="FILE", type=click.Path(dir_okay=False),
              help="A study file to run first, so its own decoders (or a module beside it) can be trained.")
@click.option("--pretrained", default="imagenet", show_default=True, metavar="imagenet|none|ID|DIR",
              help="Encoder weights: imagenet (nvidia/mit-b0, or timm's ResNet34), a Hugging Face id, a local "
                   "directory, or none (random init: only when asked, and recorded with the result).")
@click.option("--epochs", default=15, show_default=True, type=int)
@click.option("--image-size", default="256", show_default=True, metavar="N|HxW")
@click.option("--batch-size", default=4, show_default=True, type=int)
@click.option("--lr", default=1e-4, show_default=True, type=float)
@click.option("--weight-decay", default=0.0, show_default=True, type=float)
@click.option("--optimizer", default="adam", show_default=True, type=click.Choice(OPTIMIZERS))
@click.option("--seed", default=0, show_default=True, type=int, help="Seeds data order, augmentation and init.")
@click.option("--amp", default="auto", show_default=True, type=click.Choice(AMP_MODES),
              help="auto: bf16 on CPUs with native bf16 and on CUDA; off: fp32.")
@click.option("--device", default="auto", show_default=True, type=click.Choice(DEVICES))
@click.option("--channels-last/--no-channels-last", default=True, show_default=True)
@click.option("--augment/--no-augment", default=True, show_default=True,
              help="Random flip + scale/crop. The report's 15-epoch protocol had none.")
@click.option("--poly-power", default=1.0, show_default=True, type=float,
              help="Poly LR decay power per step; 0 keeps the LR constant (plain Adam, as in the report).")
@click.option("--eval-split", default="val", show_default=True, type=click.Choice(["val", "test"]))
@click.option("--max-steps", default=None, type=int, help="Stop after this many optimiser steps (smoke runs).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Decoder setting, repeatable.")
@click.option("--out", default="runs/try", show_default=True, metavar="DIR")
@click.option("--cache-dir", default=None, metavar="DIR", help="Decoded-data cache (default $ABLATE_CACHE).")
@click.option("--threads", type=click.IntRange(1), default=None,
              help="torch CPU threads (default: torch's choice). On a shared machine pass 1.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def train_command(data, layout, decoder, encoder, study_file, pretrained, epochs, image_size, batch_size, lr,
                  weight_decay, optimizer, seed, amp, device, channels_last, augment, poly_power, eval_split, max_steps,
                  sets, out, cache_dir, threads,
                  quiet):
    """Train and evaluate one model; write OUT/result.json and print a short table."""
    from ablate.rundir import ensure_writable_dir

    if study_file is not None:
        from ablate.study.plugins import run_study_file

        run_study_file(study_file)

    cfg = TrainConfig(decoder=decoder, encoder=encoder, pretrained=pretrained, image_size=parse_size(image_size),
                      batch_size=batch_size, epochs=epochs, optimizer=optimizer, lr=lr, weight_decay=weight_decay,
                      seed=seed, augment=augment, poly_power=poly_power, amp=amp, device=device,
                      channels_last=channels_last,
                      max_steps=max_steps, decoder_cfg=_decoder_settings(sets), layout=layout)
    from ablate.engine.config import resolve_amp, resolve_device

    resolve_amp(cfg.amp, resolve_device(cfg.device))  # option errors before any data is read
    out_dir = ensure_writable_dir(out)  # before any work: a finished run is never lost to a bad --out
    root = _data_root(data)
    if threads:
        from ablate.engine.environment import configure_threads

        configure_threads(threads)

    from ablate.engine.train import train_run

    bars = not quiet and sys.stderr.isatty()  # off a terminal (logs): one line per epoch instead of bars
    on_epoch = None if quiet or bars else _epoch_line
    row = train_run(cfg, data_root=root, out_dir=out_dir, run_id="train", eval_split=eval_split,
                    progress=bars, cache_dir=cache_dir, on_epoch=on_epoch)
    result = _result_json(row, out_dir)
    path = out_dir / "result.json"
    _write_json(path, result)
    _print_table(result)
    click.echo(f"wrote {path}")
    if row["status"] != "ok":
        click.echo(f"error: run {row['status']}: {row['error']}", err=True)
        sys.exit(1)


def _epoch_line(epoch, metrics) -> None:
    click.echo(f"epoch {epoch}: train loss {metrics.get('train_loss', float('nan')):.4f}, "
               f"val mIoU {metrics.get('miou', float('nan')):.4f}", err=True)


def _data_root(data):
    from pathlib import Path

    if data is not None:
        root = Path(data).expanduser()
        if not root.is_dir():
            raise DataError(f"data directory {root} does not exist; pass --data DIR pointing at a dataset folder")
        return root
    try:
        from ablate.data import resolve_data_root
    except ImportError:
        raise DataError("no dataset given; pass --data DIR pointing at a dataset folder") from None
    return resolve_data_root(None)


def _result_json(row: dict, out_dir) -> dict:
    """The results row made readable: config as an object, per-class IoU and Dice by name."""
    import json

    import numpy as np

    result = {k: v for k, v in row.items() if k != "epochs_history" and not k.startswith("iou_")}
    result["config"] = json.loads(row["config"])
    result["iou"] = {k[len("iou_"):]: v for k, v in row.items() if k.startswith("iou_")}
    from ablate.rundir import checkpoint_path, confusion_path

    confusion = confusion_path(out_dir, row["run_id"])
    if row["status"] == "ok" and confusion.exists():
        from ablate.engine.metrics import metrics_from_confusion

        with np.load(confusion) as npz:
            metrics = metrics_from_confusion(npz["per_image"].sum(axis=0), list(npz["class_names"]))
        result["iou"] = metrics["iou"]  # by the dataset's own class names (the columns are sanitised)
        result["dice"] = metrics["dice"]
        result["acc"] = metrics["acc"]
        result["confusion"] = str(confusion)
        result["checkpoint"] = str(checkpoint_path(out_dir, row["run_id"]))
    return result


def _write_json(path, obj) -> None:
    import json

    from ablate.rundir import json_safe, write_atomic  # JSON has no NaN: null

    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(json_safe(obj), indent=2) + "\n")


def _print_table(result: dict) -> None:
    cfg = result["config"]
    fmt = lambda v: "-" if v is None or v != v else f"{v:.4f}"  # noqa: E731
    lines = [
        f"{result['decoder']}  pretrained={result['pretrained']}  {result['image_size']}  "
        f"{cfg['device_used']} ({cfg['device_name']}), amp={cfg['amp_used']}, {cfg['threads']} threads",
        f"status {result['status']}   epochs {result['epochs']}   train {result['train_seconds']:.1f} s   "
        f"params {result['params_m']:.2f} M   {result['gflops']:.2f} GFLOPs",
        f"{result['split']}: mIoU {fmt(result['miou'])}  pixel acc {fmt(result['pixel_acc'])}  "
        f"mean acc {fmt(result['mean_acc'])}  fwIoU {fmt(result['fwiou'])}  mean Dice {fmt(result['mean_dice'])}",
    ]
    if result.get("best_val_epoch") is not None:
        lines.append(f"best val mIoU {fmt(result['best_val_miou'])} at epoch {result['best_val_epoch']}; "
                     f"that checkpoint on {result['split']}: {fmt(result['miou_at_best_val'])}")
    width = max(len(k) for k in result["iou"]) if result["iou"] else 0
    lines += [f"  {name:<{width}}  IoU {fmt(v)}" for name, v in result["iou"].items()]
    click.echo("\n".join(lines))
