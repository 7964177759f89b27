"""``ablate analyze RUN_DIR``: a thin wrapper over ``analysis.analyze``."""

from __future__ import annotations

import json
import sys

import click

VERDICT_MARKS = {"supported": "SUPPORTED", "refuted": "REFUTED", "inconclusive": "inconclusive"}


@click.command("analyze")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=str))
@click.option("--json", "as_json", is_flag=True, help="Print verdicts.json to stdout and nothing else.")
@click.option("--alpha", type=click.FloatRange(0, 0.5, min_open=True, max_open=True), default=0.05, show_default=True,
              help="Level of every verdict: supported by TOST at alpha ((1 - 2 alpha) CI), refuted at alpha.")
@click.option("--claim", "claims", multiple=True, metavar="CLAIM",
              help='Ad-hoc claim replacing the study\'s, e.g. "skip_fused miou +1%..+2%" (relative) or '
                   '"progressive miou -0.01..0.01" (absolute). Repeatable.')
@click.option("--baseline", default=None, help="Baseline variant (default: study.json's); must be a variant of the run.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of every bootstrap and permutation.")
@click.option("--n-boot", type=click.IntRange(min=100), default=10000, show_default=True,
              help="Bootstrap resamples (seed-level and image-level).")
@click.option("--no-report", is_flag=True, help="Compute verdicts only; write nothing under RUN_DIR/report.")
@click.option("--report-dir", default=None, type=click.Path(file_okay=False, path_type=str),
              help="Write the report here instead of RUN_DIR/report (e.g. when the run directory is read-only).")
def analyze_command(run_dir, as_json, alpha, claims, baseline, seed, n_boot, no_report, report_dir):
    """Claim verdicts, paired tests, power, plots and a report for RUN_DIR.

    Writes RUN_DIR/report/{report.md, report.html, verdicts.json, plots/} (or --report-dir), all at once.
    """
    from analysis import analyze

    verdicts = analyze(run_dir, claims=list(claims) or None, baseline=baseline, alpha=alpha, seed=seed,
                       n_boot=n_boot, write=not no_report, progress=not as_json and sys.stderr.isatty(),
                       report_dir=report_dir)
    if as_json:
        click.echo(json.dumps(verdicts, indent=2))
        return
    click.echo(format_verdicts(verdicts))


def format_verdicts(verdicts: dict) -> str:
    """Hypothesis and claim verdicts as plain text for a terminal."""
    level = 100 * (1 - 2 * verdicts["alpha"])
    lines = [f"baseline: {verdicts['baseline'] or 'not named'}   alpha: {verdicts['alpha']}   "
             f"claim CIs: {level:g} % (1 - 2*alpha, the interval TOST uses)"]
    if verdicts.get("hypotheses"):
        lines.append("hypotheses:")
        for h in verdicts["hypotheses"]:
            lines.append(f"  {h['hypothesis']}: {h['text']}  ->  {VERDICT_MARKS.get(h['verdict'], h['verdict'])}")
            lines.append(f"    why: {h['reason']}")
    rows = []
    for claim in verdicts["claims"]:
        verdict = VERDICT_MARKS.get(claim["verdict"], claim["verdict"])
        if claim.get("direction"):
            verdict += f" ({claim['direction']})"
        rows.append([claim["claim"], _effect(claim), f"{claim.get('n') or 0} {claim.get('n_unit') or ''}".strip(),
                     verdict])
    if rows:
        header = ["claim", f"effect [{level:g} % CI]", "n", "verdict"]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
        lines.append("  ".join("-" * w for w in widths))
        for row, claim in zip(rows, verdicts["claims"]):
            lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
            lines.append(f"    why: {claim.get('reason') or ''}")
    else:
        lines.append("no claims (none in study.json, no --claim): see the comparisons in the report")
    budgets, looks = verdicts.get("budgets"), verdicts.get("until_settled")
    if budgets:  # issue 9: computed by analyze, printed as verdicts.json has it
        lines.append("budgets (does the verdict hold across training budgets?):")
        lines += [f"  {line}" for line in budgets["text"].splitlines()]
    if looks:
        lines.append(f"until settled: {looks['stop_reason']} (looks at {[lk['n'] for lk in looks['looks']]} pairs)")
    for warning in verdicts["warnings"]:
        lines.append(f"warning: {warning}")
    report = verdicts.get("report")
    if report:
        lines.append(f"report: {report['html']}")
    return "\n".join(lines)


def _effect(claim: dict) -> str:
    from ablate.rundir.metrics import format_effect

    estimate, ci = claim.get("estimate"), claim.get("ci") or [None, None]
    if estimate is None or None in ci:
        return "n/a"
    return format_effect(estimate, claim["metric"], relative=bool(claim.get("relative")), ci=ci)
