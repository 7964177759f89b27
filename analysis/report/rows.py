"""The report's tables as ``{headers, rows}``: each row ``{cells, verdict, vcol}`` (vcol: the verdict cell).

Built once here, rendered by both templates, so the Markdown and the HTML say the same thing.
"""

from __future__ import annotations

from ablate.rundir.metrics import format_effect
from analysis.report import text


def table(headers: list[str], rows: list) -> dict:
    return {"headers": headers, "rows": [r if isinstance(r, dict) else {"cells": r, "vcol": None} for r in rows]}


def hypothesis_table(verdicts: dict) -> dict | None:
    hyps = [h for h in text.hypotheses(verdicts) if h.get("verdict")]
    if not hyps:
        return None
    rows = [{"cells": [f"{h['variant']}: {h['text']}" if h.get("text") else h["variant"], text.HYPOTHESIS_WORDS.get(h["verdict"], h["verdict"]),
                       text.pvalue(h.get("p_supported_holm")), text.pvalue(h.get("p_refuted_holm")), text.why_text(h)],
             "verdict": h["verdict"], "vcol": 1} for h in hyps]
    return table(["hypothesis", "verdict", "p supported (Holm)", "p refuted (Holm)", "why"], rows)


def claim_table(verdicts: dict) -> dict | None:
    claims = text.claims_in_order(verdicts)
    if not claims:
        return None
    rows = []
    for c in claims:
        rel, absolute = text.claim_effects(c)
        needed = "/".join("—" if c.get(k) is None else str(c[k]) for k in ("seeds_needed", "seeds_to_settle"))
        rows.append({"cells": [c["claim"], text.band_text(c), rel, absolute, c.get("reading") or "—",
                               text.verdict_text(c), text.posterior_text(c), f"{c.get('n') or 0} {c.get('n_unit') or ''}"
                               .strip(), needed, text.why_text(c)],
                     "verdict": c.get("verdict") or "inconclusive", "vcol": 5})
    return table(["claim", "band", "effect (relative, CI)", "effect (absolute, CI)", "the data show", "verdict",
                  "P(below / in / above band)", "n", "n needed (supported / settled)", "why / what would settle it"], rows)


def variant_table(verdicts: dict) -> dict:
    rows = []
    for name, v in verdicts["variants"].items():
        sd = f" ± {100 * v['miou_sd']:.2f}" if text.finite(v.get("miou_sd")) else ""
        fps = (f"{v['fps_median']:.1f} [{v['fps_q25']:.1f}, {v['fps_q75']:.1f}]"
               if all(text.finite(v.get(k)) for k in ("fps_median", "fps_q25", "fps_q75")) else "—")
        rows.append([name + (" (baseline)" if name == verdicts["baseline"] else ""), str(v.get("decoder") or "—"),
                     f"{v.get('n_seeds', 0)} ({v.get('n_failed', 0)} failed)",
                     f"{100 * v['miou_mean']:.2f}{sd}" if text.finite(v.get("miou_mean")) else "—",
                     text.num(100 * v["pixel_acc_mean"] if text.finite(v.get("pixel_acc_mean")) else None, ".2f"),
                     text.num(v.get("params_m"), ".2f"), text.num(v.get("gflops"), ".2f"), fps])
    return table(["variant", "decoder", "seeds (failed)", "test mIoU % (mean ± sd)", "pixel acc %", "params (M)",
                  "GFLOPs", "fps median [IQR]"], rows)


def accuracy_cost_table(verdicts: dict) -> dict | None:
    """The many-variant view: mIoU with its seeds x images interval, P(most accurate), costs, fronts."""
    section = verdicts.get("accuracy_cost") or {}
    if not section.get("available"):
        return None
    fronts = section.get("pareto") or {}
    rows = []
    for name, r in sorted(section["variants"].items(), key=lambda item: -(item[1].get("miou") or 0)):
        on = [cost for cost in ("gflops", "params_m", "fps") if name in (fronts.get(cost) or [])]
        rows.append([name + (" (baseline)" if name == verdicts.get("baseline") else ""),
                     f"{100 * r['miou']:.2f}{text.ci_text(r.get('ci'), fmt='.2f')}" if text.finite(r.get("miou")) else "—",
                     text.num(100 * r["p_most_accurate"] if text.finite(r.get("p_most_accurate")) else None, ".1f"),
                     text.num(r.get("params_m"), ".2f"), text.num(r.get("gflops"), ".2f"), text.num(r.get("fps"), ".1f"),
                     ", ".join({"gflops": "GFLOPs", "params_m": "params", "fps": "fps"}[c] for c in on) or "—"])
    level = f"{100 * section.get('level', 0.9):g}"
    return table(["variant", f"test mIoU % [{level} % CI, seeds × images]", "P(most accurate) %", "params (M)",
                  "GFLOPs", "fps", "on the Pareto front of"], rows)


def comparison_table(verdicts: dict) -> dict | None:
    rows = []
    for c in verdicts.get("comparisons") or []:
        if not text.finite(c.get("mean_diff")):
            rows.append([c["variant"], str(c.get("n", 0)), "—", "—", "—", "—", "—", "—", "—",
                         c.get("reason", "")])
            continue
        sizes = c.get("effect_sizes") or {}
        win = next((x.get(k) for x in (c, sizes) for k in ("paired_win_rate", "prob_improvement")
                    if text.finite(x.get(k))), None)
        d_z = c.get("d_z", sizes.get("d_z"))
        rows.append([c["variant"], str(c.get("n", "—")),
                     f"{100 * c['mean_diff']:+.2f}{text.ci_text(c.get('ci_t'), fmt='+.2f')}",
                     text.ci_text(c.get("ci_bca"), fmt="+.2f").strip() or "—",
                     f"{text.pct(c.get('rel_diff'))}{text.ci_text(c.get('rel_ci'))}", text.pvalue(c.get("p_ttest")),
                     text.pvalue(c.get("p_holm")), text.pvalue(c.get("p_permutation")), text.num(d_z, "+.2f"),
                     f"{win:.0%}" if text.finite(win) else "—"])
    if not rows:
        return None
    return table(["variant", "n", "Δ points [t CI]", "[BCa CI]", "relative [CI]", "p (t)", "p (t, Holm)", "p (perm.)", "d_z",
                  "paired win rate"], rows)


def test_set_table(test_set: dict) -> dict | None:
    """Per variant: spread over seeds vs the test set's own uncertainty, and the paired effect's split."""
    paired = test_set.get("paired_vs_baseline") or {}
    rows = []
    for name, t in (test_set.get("variants") or {}).items():
        share, delta = t.get("seed_share_of_variance"), paired.get(name) or {}
        image_se = t.get("mean_image_se", t.get("mean_bootstrap_se"))
        delta_text = (f"{100 * delta['delta']:+.2f}{text.ci_text(delta.get('ci'), fmt='+.2f')}"
                      if text.finite(delta.get("delta")) else "—")
        image_share = delta.get("image_share")
        rows.append([name, str(t.get("n_images") or "—"), str(t.get("n_runs", "—")),
                     text.num(100 * t["sd_over_seeds"] if text.finite(t.get("sd_over_seeds")) else None, ".2f"),
                     text.num(100 * image_se if text.finite(image_se) else None, ".2f"),
                     f"{share:.0%}" if text.finite(share) else "—", delta_text,
                     f"{image_share:.0%}" if text.finite(image_share) else "—"])
    if not rows:
        return None
    return table(["variant", "test images", "runs", "mIoU sd over seeds (pts)", "mIoU image se (pts)",
                  "seed share", "Δ vs baseline (pts, CI over seeds × images)", "test-set share of Δ's se²"], rows)


def latency_table(latency: dict, order: list[str] = ()) -> dict | None:
    rows = []
    measured = latency.get("variants") or {}
    for name in sorted(measured, key=lambda v: list(order).index(v) if v in order else len(order)):
        v = measured[name]
        ratio = (latency.get("ratio_vs_baseline") or {}).get(name) or {}
        value = ratio.get("ratio", ratio.get("estimate"))
        rows.append([name, str(v.get("n_launches", "—")), str(v.get("n_rounds", "—")),
                     f"{v['ms_median']:.2f} [{v['ms_q25']:.2f}, {v['ms_q75']:.2f}]"
                     if all(text.finite(v.get(k)) for k in ("ms_median", "ms_q25", "ms_q75")) else "—",
                     text.num(v.get("fps_median"), ".1f"),
                     f"{value:.3f}{text.ci_text(ratio.get('ci'), 1.0, '.3f')}" if text.finite(value) else "—"])
    if not rows:
        return None
    return table(["variant", "launches", "rounds", "ms/image median [IQR]", "fps median",
                  "fps ratio vs baseline [CI]"], rows)


def latency_settings_table(latency: dict) -> dict | None:
    """Every setting latency.csv holds, and which one the speed claims are judged on (only when several)."""
    settings = latency.get("settings") or []
    if len(settings) < 2:
        return None
    claimed = latency.get("claim_setting") or {}
    rows = []
    for entry in settings:
        setting = entry.get("setting") or {}
        used = all(setting.get(k) == v for k, v in claimed.items() if k in setting) and bool(claimed)
        rows.append([", ".join(f"{k} {v}" for k, v in setting.items()), ", ".join(entry.get("variants") or []),
                     str(entry.get("n_rows", "—")), str(entry.get("n_launches", "—")),
                     "yes" if used else "no (reported only)"])
    return table(["setting", "variants", "rows", "launches", "used for claims"], rows)


def environment_table(env: dict) -> dict:
    def value(x) -> str:
        if isinstance(x, bool):
            return "yes" if x else "no"
        if x in ("none", "None"):
            return "— (random init)"
        if x in (None, ""):
            return "—"
        return ", ".join(map(str, x)) if isinstance(x, list) else str(x)

    rows = [[k, value(v)] for k, v in env.items() if not isinstance(v, dict)]
    rows += [[f"{k}: {kk}", value(vv)] for k, v in env.items() if isinstance(v, dict) for kk, vv in v.items()]
    return table(["setting", "value"], rows)


def budget_table(verdicts: dict) -> dict | None:
    """verdicts.json's ``budgets``: one row per claim per budget (its verdict, estimate and interval)."""
    section = verdicts.get("budgets") or {}
    rows = []
    for c in section.get("claims") or []:
        for b in c.get("budgets") or []:
            effect = format_effect(b.get("estimate"), c["metric"], relative=bool(c.get("relative")),
                                   ci=text.interval(b.get("ci")), test_scale=True)
            rows.append({"cells": [c["claim"], b["budget"], f"{b.get('n') or 0} seeds", effect,
                                   text.verdict_text(b)], "verdict": b.get("verdict") or "inconclusive", "vcol": 4})
    if not rows:
        return None
    return table(["claim", "budget", "n", "effect (CI)", "verdict"], rows)


def budget_notes(verdicts: dict) -> list[str]:
    """Per claim: the flip / holds sentence and the interaction test, as analysis.sections.budgets wrote them."""
    return [c.get("summary") or "" for c in (verdicts.get("budgets") or {}).get("claims") or []]


def looks_table(record: dict | None) -> dict | None:
    """verdicts.json's ``until_settled``: one row per look (analysis.sequential.gate.look_rows)."""
    if not record or not record.get("looks"):
        return None
    from analysis.sequential.gate import look_rows

    headers, looks = look_rows(record)
    rows = [[n, *(f"{d} — {t}" if d else t for d, t in cells)] for n, *cells in looks]
    return table(headers, rows)
