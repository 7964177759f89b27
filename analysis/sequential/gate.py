"""The look of ``ablate run --until-settled``: from the recorded runs, is every hypothesis settled yet?

``ablate run`` (which never imports ``analysis`` itself) is handed a :class:`SeedGate` by its CLI.
When every seed scheduled so far is settled, the sweep calls the gate with the run directory; the
gate recomputes *every* look from ``results.csv`` (deterministic in the recorded runs, so a worker
that resumes after kill -9, or a second worker, reaches the same decisions), writes them to
``looks.json`` and returns how many of the study's seeds to schedule in total: more when the
verdict is still open, the same number when the study stops.

Looks count *complete pairs*: seeds, in the study's seed order, at which the baseline and every
variant with a seed-based claim have a row that ``analysis.run_reader.seed_rows`` keeps (the one seed
filter: finished ok with a finite mIoU). Each look's estimate, standard error and df are analyze's
own (``analysis.verdicts.rules.estimate_claim``: seeds x test images for mIoU when confusions exist), on that
look's seeds; the design only sets the boundaries. A failed run costs its seed and the next seed takes
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

from ablate.errors import AblateError
from ablate.rundir import json_safe, write_atomic
from ablate.rundir.metrics import format_effect, format_interval, is_latency
from ablate.study.claim import Claim, as_claim, format_claim, parse_claim
from analysis import sequential
from analysis.run_reader import confusion_loader, confusion_paths, read_results, seed_rows
from analysis.verdicts.rules import ClaimData, band_on_test_scale, estimate_claim

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
    def evaluate(self, run_dir) -> dict:
        """The looks of the runs recorded in ``run_dir`` (results.csv and confusion/), as written to looks.json."""
        path = Path(run_dir) / "results.csv"
        if not path.is_file():
            return self.evaluate_tables(None)
        warnings: list[str] = []
        return self.evaluate_tables(read_results(path), confusion_loader(confusion_paths(Path(run_dir)), warnings))

    def evaluate_tables(self, results, load_confusion=None) -> dict:
        """The looks from a results table (``analysis.run_reader.read_results``) and a run_id -> per-image
        confusions loader (``analysis.run_reader.confusion_loader``; None: seeds only, as analyze without confusions).

        Every look's estimate is analyze's own (``analysis.verdicts.rules.estimate_claim``: seeds x images for mIoU)
        on the seeds of that look; only the boundaries are the sequential design's."""
        rows = None if results is None else results[results["phase"] == "seed"]
        prefix, pairs, seeds = [], [], None
        if rows is not None and len(rows):
            status = {(str(v), int(s)): st for v, s, st in zip(rows["variant"], rows["seed"].fillna(-1),
                                                                rows["status"])}
            seeds = seed_rows(rows, [])  # the one seed filter: finished, finite mIoU, one row per (variant, seed)
            complete = {(str(v), int(s)) for v, s in zip(seeds["variant"], seeds["seed"])}
            for seed in self.seeds:
                states = [status.get((v, seed)) for v in self.involved]
                if any(st not in ("ok", "failed") for st in states):
                    break  # the settled prefix ends at the first seed still to run
                prefix.append(seed)
                if all((v, seed) in complete for v in self.involved):
                    pairs.append(seed)
        looks, decisions = self._looks(seeds, pairs, load_confusion)
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

    def _looks(self, seeds, pairs, load_confusion) -> tuple[list[dict], dict]:
        if seeds is None or len(pairs) < self.design.looks[0]:
            return [], {v: "continue" for v in self.variants}
        looks, decisions = [], {}
        fixed: dict[str, str] = {}  # a settled claim keeps its decision at later looks
        for n in self.design.looks:
            if n > len(pairs):
                break
            data = ClaimData(seeds=seeds[seeds["seed"].isin(pairs[:n])], load_confusion=load_confusion)
            final = n == self.design.looks[-1]
            entry = {"n": n, "seeds": [int(s) for s in pairs[:n]], "hypotheses": {}}
            for v in self.variants:
                if decisions.get(v) in sequential.SETTLED:
                    continue  # a settled hypothesis has no later looks: it keeps its decision
                claims = {}
                for c in (c for c in self.claims if c.variant == v):
                    name = format_claim(c)
                    claims[name] = self._look(c, n, data, final)
                    if name in fixed:
                        claims[name].decision = fixed[name]
                    elif claims[name].decision in sequential.SETTLED:
                        fixed[name] = claims[name].decision
                decisions[v] = sequential.combine_hypothesis([lk.decision for lk in claims.values()])
                entry["hypotheses"][v] = {"decision": decisions[v],
                                          "claims": {name: lk.to_dict() for name, lk in claims.items()}}
            looks.append(entry)
            if all(decisions.get(v) in sequential.SETTLED for v in self.variants):
                break
        return looks, decisions

    def _look(self, claim: Claim, n: int, data: ClaimData, final: bool) -> sequential.Look:
        est, _, reason = estimate_claim(claim, claim.baseline or self.baseline, data)
        if est is None or not est.ok:
            nan = float("nan")
            return sequential.Look(n, nan, nan, (nan, nan), (nan, nan), "inconclusive" if final else "continue")
        return sequential.estimate_look(n, est.estimate, est.se, est.df, band_on_test_scale(claim), self.design,
                                        final=final)


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
