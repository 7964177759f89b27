"""``ablate run --list``: per variant and phase, what the storage says is done, running, failed, to do."""

from __future__ import annotations

from pathlib import Path

from ablate.rundir import sqlite_url
from ablate.study.definition import Study, run_dir_name
from ablate.sweep import trials as T
from ablate.sweep.storage import optuna_name, with_db_driver

COLUMNS = ("variant", "phase", "done", "running", "failed", "pruned", "to do")


def state_table(study: Study, storage_url: str | None) -> list[dict]:
    rows = []
    for v in study.variants:
        if study.tunes(v):
            tune = _trials(storage_url, optuna_name(study, v, "tune"))
            c = T.tune_counts(tune)
            todo = 0 if T.tune_finished(tune, study.trials) else max(0, study.trials - c["finished"] - c["running"])
            rows.append({"variant": v, "phase": "tune", "done": c["done"], "running": c["running"],
                         "failed": c["failed"], "pruned": c["pruned"], "to do": todo})
        seeds = _trials(storage_url, optuna_name(study, v, "seed"))
        states = [_seed_state(seeds, s) for s in study.seeds]
        rows.append({"variant": v, "phase": "seed", "done": states.count("done"),
                     "running": states.count("running"), "failed": states.count("failed"), "pruned": 0,
                     "to do": states.count("to do")})
    lat = _seed_state(_trials(storage_url, optuna_name(study, None, "latency")), 0, name="round_set")
    rows.append({"variant": "(all)", "phase": "latency", "done": int(lat == "done"),
                 "running": int(lat == "running"), "failed": int(lat == "failed"), "pruned": 0,
                 "to do": int(lat == "to do")})
    return rows


def status_table(study: Study, *, out: str, storage: str | None) -> str:
    """The state table as aligned text (what ``ablate run --list`` prints)."""
    db = Path(out) / run_dir_name(study) / "study.db"
    url = with_db_driver(storage) if storage else (sqlite_url(db) if db.exists() else None)
    rows = state_table(study, url)
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in COLUMNS}
    lines = ["  ".join(c.ljust(widths[c]) for c in COLUMNS)]
    lines += ["  ".join(str(r[c]).ljust(widths[c]) for c in COLUMNS) for r in rows]
    lines += [f"failed: {key}: {error} (--retry-failed runs it again)" for key, error in failed_runs(study, url)]
    lines.append(size_line(Path(out) / run_dir_name(study)))
    return "\n".join(lines)


def failed_runs(study: Study, storage_url: str | None) -> list[tuple[str, str]]:
    """``(run, error)`` of each failed run the storage holds, the latency phase last."""
    names = [(v, p) for v in study.variants for p in (("tune", "seed") if study.tunes(v) else ("seed",))]
    out = []
    for variant, phase in [*names, (None, "latency")]:
        for t in _trials(storage_url, optuna_name(study, variant, phase)):
            if T.kind(t) == "failed":
                out.append((t.user_attrs.get("run_id") or phase, t.user_attrs.get("error") or "failed"))
    return out


def size_line(root: Path) -> str:
    """``run directory <root>: 12.3 MB (checkpoints 9.8 MB in 6 files)`` (or that it does not exist yet)."""
    if not root.is_dir():
        return f"run directory {root}: not created yet"
    files = [p for p in root.rglob("*") if p.is_file()]
    ckpt = [p for p in files if p.parent.name == "checkpoints"]
    total, ckpt_bytes = sum(p.stat().st_size for p in files), sum(p.stat().st_size for p in ckpt)
    return (f"run directory {root}: {_mb(total)} (checkpoints {_mb(ckpt_bytes)} in {len(ckpt)} files; "
            f"--keep-checkpoints all|seeds|none)")


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def _seed_state(trials, value, name: str = "seed") -> str:
    kinds = {T.kind(t) for t in trials if T.queued_value(t, name) == value}
    for state, found in (("done", "done"), ("failed", "failed"), ("running", "running")):
        if found in kinds:
            return state
    return "to do"


def _trials(url: str | None, name: str):
    import optuna

    if url is None:
        return []
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        loaded = optuna.load_study(study_name=name, storage=url)
    except KeyError:  # that phase has not started yet
        return []
    return T.without_retried(loaded.get_trials(deepcopy=False), loaded.user_attrs)
