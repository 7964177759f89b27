"""report/report.md and a self-contained report/report.html, rendered from Jinja2 templates.

Both templates (``analysis/templates/``) get the same context, built here from verdicts.json
and the run's tables only, so every number in the report comes from the run. Order: the
answer (one paragraph), the verdict table with the forest plot under it, the sequential looks and
the budgets (when the run has them), warnings, methods,
tables, the remaining plots, the environment.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pandas as pd

from analysis.plots.figure import PLACEMENTS
from analysis.report import rows, text
from analysis.report.methods import methods_facts

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"




def jinja_environment():
    """The Jinja2 environment: HTML autoescaped, Markdown verbatim; the text helpers as filters."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined,
                             autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",),
                                                                 default_for_string=False),
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["md_cell"] = lambda cell: str(cell).replace("|", "\\|").replace("\n", " ")
    return env


def context(verdicts: dict, made: dict[str, dict], report_dir: Path, notes: list[str], study: dict | None = None,
            results: pd.DataFrame | None = None) -> dict:
    """Everything the templates show, as plain values."""
    figures = [{"name": name, "title": name.replace("_", " "), "caption": made_figure["caption"],
                "placement": made_figure["placement"], "png": str(made_figure["png"]),
                "src": Path(made_figure["png"]).relative_to(report_dir).as_posix()}
               for name, made_figure in made.items()]
    placed = {p: [f for f in figures if f["placement"] == p] for p in PLACEMENTS}
    # sections an older or partial verdicts.json may lack render as "not available", never as an error
    verdicts = {"warnings": [], "claims": [], "comparisons": [], "test_set": {}, "latency": {}, "environment": {},
                "variants": {}, "baseline": None, **verdicts}
    return {
        "v": verdicts,
        "title": f"ablate report: {verdicts.get('study') or Path(verdicts['run_dir']).name}",
        "answer": text.answer(verdicts),
        "hypotheses": rows.hypothesis_table(verdicts),
        "claims": rows.claim_table(verdicts),
        "level": f"{100 * (1 - 2 * verdicts['alpha']):g}",
        "forest": next(iter(placed["headline"]), None),
        "figures": placed["figures"],
        "accuracy_cost": rows.accuracy_cost_table(verdicts),
        "accuracy_cost_figures": placed["accuracy_cost"],
        "budgets": rows.budget_table(verdicts),
        "budget_notes": rows.budget_notes(verdicts),
        "budget_figures": placed["budgets"],
        "looks": rows.looks_table(verdicts.get("until_settled")),
        "looks_design": _looks_design(verdicts.get("until_settled")),
        "notes": notes,
        "methods": methods_facts(verdicts, study or {}, results),
        "variants": rows.variant_table(verdicts),
        "comparisons": rows.comparison_table(verdicts),
        "test_set": rows.test_set_table(verdicts.get("test_set") or {}),
        "test_set_note": "sd over seeds is training randomness (every seed is scored on the same images); the image se "
                         "is how much mIoU would move on another test set of the same size. The paired effect's "
                         "interval counts both, and the last column says how much of it the test set contributes.",
        "latency": rows.latency_table(verdicts.get("latency") or {}, list(verdicts["variants"])),
        "latency_settings": rows.latency_settings_table(verdicts.get("latency") or {}),
        "environment": rows.environment_table(verdicts.get("environment") or {}),
        "schema": schema_text(),
    }


def _looks_design(record: dict | None) -> str:
    if not record or not record.get("design"):
        return ""
    from analysis.sequential.gate import design_text

    return design_text(record)


def schema_text() -> str:
    """The verdicts.json schema as its owner documents it."""
    import importlib

    try:
        return importlib.import_module("analysis.verdicts.records").schema_text()
    except (ImportError, AttributeError):  # an older engine: the schema in the package docstring
        doc = importlib.import_module("analysis").__doc__ or ""
        return doc[doc.find("verdicts.json"):].strip() if "verdicts.json" in doc else ""


def render(verdicts: dict, made: dict, report_dir: Path, notes: list[str], study: dict | None = None,
           results: pd.DataFrame | None = None) -> tuple[str, str]:
    """(markdown, html) of the report."""
    ctx = context(verdicts, made, report_dir, notes, study, results)
    env = jinja_environment()
    markdown = env.get_template("report.md.j2").render(**ctx)
    for figure in [*([ctx["forest"]] if ctx["forest"] else []), *ctx["budget_figures"], *ctx["accuracy_cost_figures"],
                   *ctx["figures"]]:
        figure["data"] = base64.b64encode(Path(figure["png"]).read_bytes()).decode("ascii")
    page = env.get_template("report.html.j2").render(**ctx)
    return markdown, page


def write_report(verdicts: dict, tables, seeds: pd.DataFrame, *, seed: int = 0, report_dir=None,
                 final_dir=None) -> dict:
    """Plots, report.md and report.html under ``report_dir`` (default ``run_dir/report``); plot failures become
    warnings. ``final_dir``: where ``report_dir`` will be moved (the paths returned name it)."""
    from ablate.rundir import write_atomic

    report_dir = Path(report_dir) if report_dir is not None else Path(tables.run_dir) / "report"
    final = Path(final_dir) if final_dir is not None else report_dir
    plots_dir = report_dir / "plots"
    plots_dir.mkdir(parents=True, exist_ok=True)
    from analysis.plots.registry import FigureInputs, make_figures

    notes: list[str] = []
    made = make_figures(FigureInputs(verdicts, tables, seeds, seed), plots_dir, warnings=verdicts["warnings"],
                        notes=notes)
    markdown, page = render(verdicts, made, report_dir, notes, getattr(tables, "study", None),
                            getattr(tables, "results", None))
    write_atomic(report_dir / "report.md", markdown)
    write_atomic(report_dir / "report.html", page)
    return {"dir": str(final), "markdown": str(final / "report.md"), "html": str(final / "report.html"),
            "plots": {name: str(final / Path(paths["png"]).relative_to(report_dir)) for name, paths in made.items()}}
