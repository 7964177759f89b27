"""The orchestrator: ``analyze(run_dir)`` composes the layers below it into verdicts.json (and the report).

``analyze`` returns exactly what it writes to ``report/verdicts.json``; its schema (schema_version 2) is
documented once, in ``analysis.verdicts.records`` (``schema_text()``). A composition that needs a whole analysis
(``analyze_budgets``) lives here too, so no layer below calls back up.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ablate.rundir import write_atomic
from ablate.rundir.metrics import is_latency

__all__ = ["analyze", "analyze_budgets"]


def analyze(run_dir, claims=None, baseline=None, alpha=0.05, seed=0, *, n_boot=10000, write=True,
            progress=False, report_dir=None) -> dict:
    """Verdicts, tests and (with ``write``) plots and a report for the run in ``run_dir``.

    ``claims``: strings (``"skip_fused miou +2%..+3%"``), ``Claim`` objects or dicts;
    default: study.json's. ``baseline``: default study.json's. Raises an ``AblateError`` (exit
    code 2 on the CLI) when the directory or results.csv cannot be read, ``alpha`` is out of
    range, or the baseline / a claim names an unknown variant or metric; everything else thin
    or odd becomes an inconclusive verdict and a warning.
    """
    from ablate.rundir import failed_phases, json_safe
    from analysis.run_reader import confusion_loader, load_run, seed_rows
    from analysis.sections.accuracy_cost import accuracy_cost_section
    from analysis.sections.budgets import budget_section, write_budgets_json
    from analysis.sections.comparisons import compare_to_baseline
    from analysis.sections.latency import latency_section
    from analysis.sections.power_curves import power_curves
    from analysis.sections.test_set import test_set_section
    from analysis.sections.variants import environment, variant_order, variant_summaries
    from analysis.sequential.gate import read_looks
    from analysis.verdicts.records import SCHEMA_VERSION
    from analysis.verdicts.rules import ClaimData, evaluate

    def step(message: str) -> None:
        if progress:
            print(f"analyze: {message}", file=sys.stderr, flush=True)

    if not 0 < alpha < 0.5:
        from ablate.errors import ConfigError

        raise ConfigError(f"alpha must be between 0 and 0.5, got {alpha}: pass e.g. --alpha 0.05")
    step("reading tables")
    tables = load_run(run_dir)
    if write:  # before any computing: a report that cannot be written is one line now, not a traceback later
        from ablate.rundir import ensure_writable_dir

        label = None if report_dir else f"the run directory {run_dir} (where the report goes)"
        report_dir = Path(report_dir) if report_dir else Path(run_dir) / "report"
        ensure_writable_dir(report_dir.parent, option="--report-dir", label=label)
    warnings = list(tables.warnings)
    baseline = baseline or tables.study.get("baseline")
    claim_objects = resolve_claims(claims, tables.study)
    _validate_names(tables, baseline, claim_objects)
    seeds = seed_rows(tables.results, warnings)
    order = variant_order(tables, baseline)
    _check_baseline_and_data(tables, seeds, baseline, order, warnings)
    load = confusion_loader(tables.confusion_paths, warnings)

    step("latency")
    latency, latency_rows, setting, latency_reason = latency_section(tables, order, baseline, alpha=alpha,
                                                                        warnings=warnings)
    for phase, error in failed_phases(tables.run_dir).items():  # a phase that failed as a whole: say why
        if phase == "latency" and not latency["available"]:
            latency_reason = latency["reason"] = (f"the latency phase failed ({error}); fix the cause, then "
                                                  f"`ablate run <study file> --retry-failed` measures it again")
            if not any(is_latency(c.metric) for c in claim_objects):  # else the speed claims' warning says it
                warnings.append(f"latency: {latency_reason}")
        else:
            warnings.append(f"the {phase} phase failed: {error}")
    if not latency["available"] and any(is_latency(c.metric) for c in claim_objects):
        warnings.append(f"latency: {latency['reason']}; speed claims stay inconclusive")
    step("claims")
    data = ClaimData(seeds=seeds, latency=latency_rows, latency_setting=setting, latency_reason=latency_reason,
                     load_confusion=load, warnings=warnings)
    hypotheses, claim_verdicts = evaluate(claim_objects, data, baseline=baseline, alpha=alpha)
    step("paired comparisons")
    comparisons = _guard(lambda: compare_to_baseline(seeds, order, baseline, alpha=alpha, seed=seed,
                                                       n_boot=n_boot), [], "comparisons", warnings)
    _warn_zero_variance(seeds, order, warnings)
    step("test set")
    test_set = _guard(lambda: test_set_section(seeds, order, baseline, load, alpha=alpha, warnings=warnings),
                      {"available": False, "reason": "failed"}, "test-set analysis", warnings)

    step("budgets and sequential looks")
    claim_dicts = [c.to_dict() for c in claim_verdicts]
    budgets = _guard(lambda: budget_section(tables.study, seeds, json_safe(claim_dicts), alpha=alpha),
                     None, "budgets", warnings)
    until_settled = _guard(lambda: read_looks(run_dir), None, "looks.json", warnings)
    variants = variant_summaries(tables, seeds, order, latency.get("variants", {}))
    step("accuracy vs cost")
    accuracy_cost = _guard(lambda: accuracy_cost_section(seeds, order, variants, load, alpha=alpha, seed=seed,
                                                         warnings=warnings),
                           {"available": False, "reason": "failed"}, "accuracy vs cost", warnings)

    verdicts = {
        "schema_version": SCHEMA_VERSION,
        "run_dir": str(run_dir),
        "study": tables.study.get("name") or _first_value(tables.results, "study"),
        "baseline": baseline,
        "alpha": alpha,
        "seed": seed,
        "n_boot": n_boot,
        "hypotheses": [h.to_dict() for h in hypotheses],
        "claims": claim_dicts,
        "comparisons": comparisons,
        "variants": variants,
        "accuracy_cost": accuracy_cost,
        "test_set": test_set,
        "latency": latency,
        "power_curves": _guard(lambda: power_curves(claim_verdicts, alpha=alpha), [], "power curves", warnings),
        "budgets": budgets,
        "until_settled": until_settled,
        "warnings": list(dict.fromkeys(warnings)),
        "environment": environment(tables.results, tables.study),
    }
    verdicts = json_safe(verdicts)
    if write:
        step("plots and report")
        from ablate.rundir import atomic_dir
        from analysis.report import write_report

        with atomic_dir(report_dir) as stage:  # the old report stays whole until the new one is
            verdicts["report"] = write_report(verdicts, tables, seeds, seed=seed, report_dir=stage,
                                              final_dir=report_dir)
            if budgets is not None:  # the section alone, for readers of the earlier file
                write_budgets_json(verdicts["budgets"], stage)
            write_atomic(stage / "verdicts.json", json.dumps(verdicts, indent=2) + "\n")
        step(f"wrote {report_dir}")
    return verdicts


def analyze_budgets(run_dir, *, alpha: float = 0.05, write: bool = True, verdicts: dict | None = None) -> dict | None:
    """The budget section of a run directory (None when its study declares no ``budgets``).

    ``verdicts``: analyze's result for the same run (analyze runs, without writing, when not given);
    its ``budgets`` is returned as is. With ``write`` also ``report/budgets.json`` and one figure per metric
    under ``report/plots/`` (``plots``: their PNGs).
    """
    from analysis.sections.budgets import budget_outputs

    if verdicts is None or "budgets" not in verdicts:
        verdicts = analyze(run_dir, alpha=alpha, write=False)
    out = budget_outputs(run_dir, verdicts, write=write)
    if write and out is not None:
        from analysis.plots import effect_vs_budget
        from analysis.plots.registry import FigureInputs, make_figures

        made = make_figures(FigureInputs(verdicts, tables=None, seeds=None), Path(run_dir) / "report" / "plots",
                            warnings=out.setdefault("warnings", []), notes=[], only=[effect_vs_budget])
        out["plots"] = [str(paths["png"]) for paths in made.values()]
    return out


def resolve_claims(claims, study: dict) -> list:
    """Claims as ``Claim`` objects: the caller's (strings, dicts or Claims), else study.json's.

    A claim that cannot be read raises ``ClaimError`` (a user error: exit code 2 on the CLI).
    """
    from ablate.study.claim import Claim, as_claim

    if claims is None:
        claims = study.get("claims") or []
    if isinstance(claims, (str, Claim, dict)):
        claims = [claims]
    return [as_claim(c) for c in claims]


def _validate_names(tables, baseline, claims) -> None:
    """Unknown baseline, variant or metric: a user error naming the valid choices (checked before any work)."""
    from ablate.errors import ConfigError
    from ablate.rundir.metrics import claimable_metrics
    from ablate.study.claim import ClaimError, format_claim
    from analysis.run_reader import class_columns

    known = list(dict.fromkeys([*(tables.study.get("variants") or {}), *tables.results["variant"].astype(str)]))
    if not known:
        return
    choices = ", ".join(known)
    if baseline is not None and baseline not in known:
        raise ConfigError(f"unknown baseline '{baseline}': choose one of {choices} (--baseline NAME)")
    metrics = [m for m in claimable_metrics(class_columns(tables.results))
               if is_latency(m) or m in tables.results.columns]
    for claim in claims:
        for role, name in (("variant", claim.variant), ("baseline", claim.baseline)):
            if name is not None and name not in known:
                raise ClaimError(f"claim '{format_claim(claim)}' names unknown {role} '{name}': choose one of {choices}")
        if claim.metric not in metrics:
            raise ClaimError(f"claim '{format_claim(claim)}' names unknown metric '{claim.metric}': choose one of "
                             f"{', '.join(metrics)}")


def _guard(compute, fallback, what: str, warnings: list[str]):
    # Any section may fail on data nobody anticipated; the rest of verdicts.json still stands.
    try:
        return compute()
    except Exception as exc:  # noqa: BLE001
        warnings.append(f"{what} skipped: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        return fallback


def _check_baseline_and_data(tables, seeds, baseline, order, warnings) -> None:
    if tables.results.empty:
        warnings.append("results.csv has no rows: nothing has finished yet")
    elif seeds.empty:
        warnings.append("no finished seed run with a finite mIoU: every run failed or is missing; nothing to compare")
    if baseline is None:
        warnings.append(f"no baseline named: pass --baseline NAME (variants: {', '.join(order) or 'none'})")
    elif baseline not in set(seeds["variant"]):
        warnings.append(f"baseline '{baseline}' has no finished seed run: every comparison is inconclusive")


def _warn_zero_variance(seeds, order, warnings) -> None:
    for variant in order:
        miou = seeds.loc[seeds["variant"] == variant, "miou"]
        if len(miou) > 1 and miou.nunique() == 1:
            warnings.append(f"{variant}: every seed gave the same mIoU ({miou.iloc[0]:.4f}); check the runs really differ")


def _first_value(frame, column):
    if column not in frame or frame[column].dropna().empty:
        return None
    value = frame[column].dropna().iloc[0]
    return str(value) if str(value) else None
