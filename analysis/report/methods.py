"""The numbers the Methods section states, each read from verdicts.json or study.json (fault 9).

The wording lives in the templates; nothing here is prose, so a 12-image test set can only
ever be reported as 12 images.
"""

from __future__ import annotations

from ablate.rundir.metrics import is_latency
from analysis.estimators.effects import DF_RULE_COVERAGE
from analysis.report.text import finite


def _values(items, key) -> list:
    return sorted({i.get(key) for i in items if finite(i.get(key)) and i.get(key) > 0})


def _power_target() -> float:
    """The target behind seeds_needed: the engine's own default, so the text cannot drift from it."""
    import inspect

    from analysis.estimators.verdict_power import seeds_needed

    return inspect.signature(seeds_needed).parameters["target"].default


def _seed_runs(results):
    if results is None or results.empty:
        return None
    ok = results[results["status"] == "ok"] if "status" in results else results
    return ok[ok["phase"] == "seed"] if "phase" in ok and (ok["phase"] == "seed").any() else ok


def _column(frame, column) -> list:
    if frame is None or column not in frame:
        return []
    values = frame[column].dropna()
    values = values[values.astype(str).str.len() > 0]
    return sorted({int(v) if isinstance(v, float) and v.is_integer() else v for v in values})


def _join(values, unit: str = "") -> str | None:
    if not values:
        return None
    text = str(values[0]) if len(values) == 1 else f"{', '.join(map(str, values[:-1]))} and {values[-1]}"
    return f"{text}{' ' + unit if unit else ''}"


def methods_facts(verdicts: dict, study: dict, results=None) -> dict:
    """Numbers for the Methods text; ``study`` = study.json, ``results`` = results.csv (either may be empty)."""
    variants = verdicts.get("variants") or {}
    claims = verdicts.get("claims") or []
    test_set = verdicts.get("test_set") or {}
    latency = verdicts.get("latency") or {}
    alpha = verdicts["alpha"]
    seed_claims = [c for c in claims if not is_latency(c.get("metric"))]
    seed_runs = _seed_runs(results)
    hypotheses = verdicts.get("hypotheses")
    test_runs = list((test_set.get("variants") or {}).values())
    n_classes = _values(test_runs, "n_classes") or sorted({len(v["class_iou"]) for v in variants.values()
                                                           if v.get("class_iou")})
    lat_variants = list((latency.get("variants") or {}).values())
    setting = dict(latency.get("claim_setting") or latency.get("setting") or {})
    declared = study.get("latency") or {}
    train = study.get("train") or {}
    data = study.get("data") or {}
    return {
        "alpha": alpha,
        "level": f"{100 * (1 - 2 * alpha):g}",
        "wide_level": f"{100 * (1 - alpha):g}",
        "n_boot": verdicts.get("n_boot"),
        "seed": verdicts.get("seed"),
        "baseline": verdicts.get("baseline"),
        "n_variants": len(variants),
        "seeds": _join(_values(list(variants.values()), "n_seeds")),
        "failed": sum(v.get("n_failed") or 0 for v in variants.values()),
        "paired": _join(_values(seed_claims, "n") or _values(verdicts.get("comparisons") or [], "n")),
        "n_claims": len(claims),
        "n_hypotheses": len(hypotheses) if hypotheses else len({c["variant"] for c in claims}),
        "hypothesis_verdicts": bool(hypotheses),
        "bayes": any(c.get("posterior") for c in claims),
        "power": any(c.get("seeds_needed") is not None or finite(c.get("power")) for c in claims),
        "power_target": f"{100 * (verdicts.get('power_target') or _power_target()):g}",
        "test_set": bool(test_set.get("available")),
        "df_rule": DF_RULE_COVERAGE,
        "test_set_reason": test_set.get("reason"),
        "test_images": _join(_values(test_runs, "n_images")),
        "interval_methods": sorted({c["ci_method"] for c in claims if c.get("ci_method")}),
        "other_settings": max(len(latency.get("settings") or []) - 1, 0),
        "classes": _join(n_classes),
        "latency": bool(latency.get("available")),
        "latency_reason": latency.get("reason"),
        "rounds": _join(_values(lat_variants, "n_rounds")),
        "speed_unit": _join(sorted({c.get("n_unit") for c in claims if is_latency(c.get("metric")) and c.get("n_unit")})),
        "launches": _join(_values(lat_variants, "n_launches")
                          or _values([c for c in claims if c.get("n_unit") == "launches"], "n")),
        "mode": setting.pop("mode", None) or latency.get("mode"),
        "setting": ", ".join(f"{k} {v}" for k, v in setting.items() if v not in (None, "")),
        "warmup": declared.get("warmup"),
        "epochs": _join(_column(seed_runs, "epochs")) or train.get("epochs"),
        "image_size": _join(_column(seed_runs, "image_size"))
        or ("×".join(map(str, study["image_size"])) if study.get("image_size") else None),
        "pretrained": _join([p if str(p).lower() not in ("none", "") else "none (random init)"
                             for p in _column(seed_runs, "pretrained")]),
        "declared_images": {k: data[k] for k in ("n_train", "n_val", "n_test") if finite(data.get(k))},
    }
