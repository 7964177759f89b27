"""The look of ``ablate run --until-settled``: from the recorded runs, is every hypothesis settled yet?

``ablate run`` (which never imports ``analysis`` itself) is handed a :class:`SeedGate` by its CLI.
When every seed scheduled so far is settled, the sweep calls the gate with the run directory; the
gate recomputes *every* look from ``results.csv`` (deterministic in the recorded runs, so a worker
that resumes after kill -9, or a second worker, reaches the same decisions), writes them to
``looks.json`` and returns how many of the study's seeds to schedule in total: more when the
verdict is still open, the same number when the study stops.

Looks count *complete pairs*: seeds, in the study's seed order, at which the baseline and every
variant with a seed-based claim finished ok. A failed run costs its seed and the next seed takes
its place. Only the settled prefix of the seed list is used, so the order in which workers finish
never changes which seeds a look sees. Speed claims are judged on latency launches (measured once
the seeds stop), not by this gate.

``looks.json`` keys (for the report): ``design`` (SequentialDesign.to_dict: looks, alpha,
spending, boundaries, method), ``alpha_family`` (alpha before Bonferroni over hypotheses),
``hypotheses`` ({variant: [claim text]}), ``skipped`` ([claim text: why]), ``seeds_scheduled``,
``pairs`` (seed ids of the complete pairs in order), ``looks`` ([{n, seeds, hypotheses: {variant:
{decision, claims: {claim text: Look.to_dict()}}}}]), ``stopped`` (bool), ``stop_reason`` (text),
``decisions`` ({variant: supported|refuted|inconclusive|continue}).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ablate.errors import AblateError
from ablate.rundir import json_safe, write_atomic
from ablate.rundir.metrics import format_effect, format_interval, is_latency
from ablate.study.claim import Claim, as_claim, format_claim, parse_claim
from analysis import sequential
from analysis.estimators.effects import paired_effects
from analysis.run_reader import read_results
from analysis.verdicts.rules import band_on_test_scale

LOOKS_FILE = "looks.json"


class UntilSettledError(AblateError):
    """--until-settled cannot run for this study."""


@dataclass
class SeedGate:
    """Decides, from the recorded runs, how many of ``seeds`` to schedule (see the module docstring)."""

    claims: list[Claim]
    baseline: str
    seeds: list[int]
    max_seeds: int
    look_every: int = 1
    first_look: int = 3
    alpha: float = 0.05
    spending: str = "obf"
    skipped: list[str] = field(default_factory=list)

    def __post_init__(self):
        claims = [as_claim(c) for c in self.claims]
        self.skipped = [f"{format_claim(c)}: a speed claim, judged on latency launches, not seeds"
                        for c in claims if is_latency(c.metric)]
        self.claims = [c for c in claims if not is_latency(c.metric)]
        if not self.claims:
            raise UntilSettledError("--until-settled needs a seed-based claim (e.g. on miou) in the study: "
                                    "it has none, so there is nothing for more seeds to settle")
        if self.max_seeds < self.first_look:
            raise UntilSettledError(f"--max-seeds {self.max_seeds} is below the first look ({self.first_look} seeds): "
                                    f"pass --max-seeds {self.first_look} or more")
        self.variants = sorted({c.variant for c in self.claims})
        m = len(self.variants)
        self.design = sequential.SequentialDesign.every(max_seeds=self.max_seeds, look_every=self.look_every,
                                                        first_look=self.first_look, alpha=self.alpha / m,
                                                        spending=self.spending)

    @property
    def involved(self) -> list[str]:
        return sorted({self.baseline, *self.variants, *(c.baseline for c in self.claims if c.baseline)})

    def __call__(self, run_dir) -> int:
        record = self.evaluate(run_dir)
        write_atomic(Path(run_dir) / LOOKS_FILE, json.dumps(json_safe(record), indent=2) + "\n")
        return int(record["seeds_scheduled"])

    # ------------------------------------------------------------------------------------------
    def _seed_table(self, run_dir):
        path = Path(run_dir) / "results.csv"
        if not path.is_file():
            return None
        rows = read_results(path)
        return rows[rows["phase"] == "seed"]

    def evaluate(self, run_dir) -> dict:
        rows = self._seed_table(run_dir)
        prefix, pairs = [], []
        if rows is not None and len(rows):
            status = {(str(v), int(s)): st for v, s, st in zip(rows["variant"], rows["seed"].fillna(-1),
                                                                rows["status"])}
            for seed in self.seeds:
                states = [status.get((v, seed)) for v in self.involved]
                if any(st not in ("ok", "failed") for st in states):
                    break  # the settled prefix ends at the first seed still to run
                prefix.append(seed)
                if all(st == "ok" for st in states):
                    pairs.append(seed)
        ok = rows[rows["status"] == "ok"] if rows is not None else None
        looks, decisions = self._looks(ok, pairs)
        n_pairs = len(pairs)
        settled = bool(decisions) and all(d in sequential.SETTLED for d in decisions.values())
        last_look = self.design.looks[-1]
        if settled:
            stopped, reason = True, f"every hypothesis settled at {looks[-1]['n']} complete pairs"
        elif n_pairs >= last_look:
            open_ = ", ".join(v for v, d in decisions.items() if d not in sequential.SETTLED)
            stopped, reason = True, f"reached --max-seeds ({last_look} complete pairs): {open_} inconclusive"
        else:
            next_look = next(n for n in self.design.looks if n > n_pairs)
            want = len(prefix) + (next_look - n_pairs)
            if want > len(self.seeds):
                stopped, reason = True, (f"ran out of seeds ({len(self.seeds)} in the list, {n_pairs} complete pairs) "
                                         f"before the look at {next_look}")
            else:
                stopped, reason = False, f"continue to the look at {next_look} complete pairs"
        scheduled = len(prefix) if stopped else len(prefix) + (next_look - n_pairs)
        final = {v: ("inconclusive" if stopped and d == "continue" else d) for v, d in decisions.items()}
        return {"design": self.design.to_dict(), "alpha_family": self.alpha,
                "hypotheses": {v: [format_claim(c) for c in self.claims if c.variant == v] for v in self.variants},
                "skipped": self.skipped, "seeds_scheduled": scheduled,
                "pairs": [int(s) for s in pairs], "looks": looks, "stopped": stopped, "stop_reason": reason,
                "decisions": final}

    def _looks(self, ok, pairs) -> tuple[list[dict], dict]:
        if ok is None or len(pairs) < self.design.looks[0]:
            return [], {v: "continue" for v in self.variants}
        ok = ok[ok["seed"].isin(pairs)].copy()
        ok["seed"] = ok["seed"].astype(int)
        order = {s: i for i, s in enumerate(pairs)}
        per_variant = {}
        for v in self.variants:
            effects, bands = {}, {}
            for c in (c for c in self.claims if c.variant == v):
                seed_ids, x = paired_effects(ok, c, self.baseline)
                idx = np.argsort([order[int(s)] for s in seed_ids])
                effects[format_claim(c)], bands[format_claim(c)] = x[idx], band_on_test_scale(c)
            per_variant[v] = sequential.hypothesis_looks(effects, bands, self.design, variant=v)
        looks, decisions = [], {}
        for k, n in enumerate(self.design.looks):
            if n > len(pairs):
                break
            entry = {"n": n, "seeds": [int(s) for s in pairs[:n]], "hypotheses": {}}
            for v, h in per_variant.items():
                if k < len(h.ns):  # a settled hypothesis has no later looks: it keeps its decision
                    entry["hypotheses"][v] = {"decision": h.decisions[k],
                                              "claims": {name: lk[k].to_dict() for name, lk in h.claims.items()}}
                    decisions[v] = h.decisions[k]
            looks.append(entry)
            if all(decisions.get(v) in sequential.SETTLED for v in self.variants):
                break
        return looks, decisions


def read_looks(run_dir) -> dict | None:
    """looks.json of a run directory, or None."""
    path = Path(run_dir) / LOOKS_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def make_gate(study, *, max_seeds: int, look_every: int = 1, alpha: float = 0.05, spending: str = "obf") -> SeedGate:
    """The gate for a loaded study (``ablate.study.definition.Study``), its seed list already extended."""
    return SeedGate(claims=list(study.claims), baseline=study.baseline, seeds=list(study.seeds),
                    max_seeds=max_seeds, look_every=look_every, alpha=alpha, spending=spending)


def look_rows(record: dict) -> tuple[list[str], list[list]]:
    """(headers, rows) of the looks table: one row per look; each hypothesis cell ``(decision, text)``,
    text = each claim's estimate and support RCI in the claim's unit; ``(None, "settled earlier")`` after it settled.
    Built once here for format_looks (Markdown) and the report's tables."""
    variants = list(record["hypotheses"])
    rows = []
    for look in record["looks"]:
        cells = []
        for v in variants:
            h = look["hypotheses"].get(v)
            if h is None:
                cells.append((None, "(settled earlier)"))
                continue
            parts = []
            for name, lk in h["claims"].items():
                claim = parse_claim(name)
                effect = format_effect(lk["estimate"], claim.metric, relative=claim.relative, test_scale=True)
                rci = format_interval(lk["support_ci"], claim.metric, relative=claim.relative, test_scale=True)
                parts.append(f"{name.split(' ', 1)[1]}: {effect} RCI {rci}")
            cells.append((h["decision"], "; ".join(parts)))
        rows.append([look["n"], *cells])
    return ["pairs", *variants], rows


def design_text(record: dict) -> str:
    design = record["design"]
    m = len(record["hypotheses"])
    return (f"looks at {', '.join(map(str, design['looks']))} complete seed pairs; {design['method']}; "
            f"alpha {record['alpha_family']} split over {m} hypothesis(es) (Bonferroni).")


def stopped_early(record: dict) -> bool:
    """True when the study stopped before its last planned look (every hypothesis settled)."""
    looks, planned = record.get("looks") or [], record["design"]["looks"]
    return bool(record.get("stopped") and looks and looks[-1]["n"] < planned[-1])


def format_looks(record: dict) -> str:
    """looks.json as Markdown: the design, one row per look, the stopping decision."""
    headers, rows = look_rows(record)
    lines = [f"**Adaptive seeding (`--until-settled`)**: {record['stop_reason']}.", "",
             f"Design: {design_text(record)}", "",
             "| " + " | ".join(headers) + " |", "|---|" + "---|" * (len(headers) - 1)]
    for n, *cells in rows:
        lines.append(f"| {n} | " + " | ".join(f"**{d}** — {t}" if d else t for d, t in cells) + " |")
    decisions = ", ".join(f"{v}: {d}" for v, d in record["decisions"].items())
    lines += ["", f"Decision: {decisions}. RCI: the repeated confidence interval the design's supported rule uses."]
    for s in record.get("skipped", []):
        lines.append(f"Not decided by seeds: {s}.")
    return "\n".join(lines)
