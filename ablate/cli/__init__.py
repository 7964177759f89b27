"""The ``ablate`` command line: run, analyze, plan, train, bench, data.

One thin click file per command (``run``, ``train``, ``bench``, ``data``) over a library that
returns values; ``analyze`` lives with ``analysis`` (``analysis.cli``). Subcommands are imported
lazily, so ``ablate --help`` and ``ablate analyze`` never import torch.
"""

from __future__ import annotations

import importlib
import sys

import click

from ablate.errors import AblateError


class LazyGroup(click.Group):
    """A click group whose subcommands are ``name: ("module:attribute", short help)``."""

    def __init__(self, *args, lazy_commands: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def format_commands(self, ctx, formatter):
        # List lazy commands from their registered help so `--help` imports nothing heavy.
        rows = [(name, help_) for name, (_, help_) in sorted(self.lazy_commands.items())]
        rows += [(n, self.commands[n].get_short_help_str()) for n in sorted(self.commands)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(sorted(rows))

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self.lazy_commands))

    def get_command(self, ctx, name):
        if name in self.lazy_commands:
            module, attr = self.lazy_commands[name][0].split(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)


@click.group(
    cls=LazyGroup,
    lazy_commands={
        "run": ("ablate.cli.run:run_command", "Run a study: Optuna sweeps, repeated seeds, latency."),
        "analyze": ("analysis.cli:analyze_command", "Claim verdicts, tests, plots and a report for a run."),
        "plan": ("ablate.cli.plan:plan_command", "Seeds, hours and settleable bands from a pilot run."),
        "train": ("ablate.cli.train:train_command", "Train and evaluate one model; write a JSON result."),
        "data": ("ablate.cli.data:data_group", "Check, download or synthesise datasets."),
    },
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(package_name="ablate")
def cli():
    """Test whether a segmentation-decoder change buys what its author claims."""


@cli.group(
    cls=LazyGroup,
    lazy_commands={
        "latency": ("ablate.cli.bench:latency_command", "Inference latency of a study's variants."),
        "train": ("ablate.cli.bench:bench_train_command", "Training speed vs a plain Hugging Face loop."),
    },
)
def bench():
    """Benchmarks that print ratios against a reference, measured in one run."""


def main(argv=None):
    """Console entry point: user errors become one line on stderr and exit code 2."""
    from ablate.engine.environment import request_huge_pages

    request_huge_pages()  # before torch is imported (engine.environment): ~5 % per CPU training step
    try:
        cli.main(args=argv, standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:  # one line, like every other error (click's own is three)
        hint = f" (see: {exc.ctx.command_path} --help)" if getattr(exc, "ctx", None) is not None else ""
        click.echo(f"error: {exc.format_message()}{hint}", err=True)
        sys.exit(exc.exit_code)
    except AblateError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted: finished runs are saved; run the same command again to resume", err=True)
        sys.exit(130)
    except Exception as exc:  # a full disk can surface anywhere (SQLite storage, a library's own write)
        from ablate.rundir import is_disk_full

        if "operator torchvision::" in str(exc):  # torchvision built for another torch (e.g. a CUDA one on CPU torch)
            from importlib.metadata import version  # not torch itself: the command layer stays torch-free

            click.echo(f"error: torchvision {version('torchvision')} does not match torch {version('torch')} "
                       f"({_first_line(exc)}): install "
                       f"both from one index, e.g. pip install --force-reinstall torch torchvision --index-url "
                       f"https://download.pytorch.org/whl/cpu", err=True)
            sys.exit(2)
        if not is_disk_full(exc):
            raise
        where = next((e.filename for e in _chain(exc) if isinstance(e, OSError) and e.filename), None)
        click.echo(f"error: disk full{f' while writing {where}' if where else ''} ({_first_line(exc)}): free space "
                   f"there (or write elsewhere with --out), then run the same command again; what was recorded is "
                   f"kept", err=True)
        sys.exit(1)
    sys.exit(0)


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _first_line(exc: BaseException) -> str:
    root = list(_chain(exc))[-1]
    return (str(root).strip().splitlines() or [type(root).__name__])[0][:200]


if __name__ == "__main__":
    main()
