"""A study that grows: a run directory's study.json against the study file as it is now.

Adding seeds, variants or claims to a study whose finished runs are unchanged only adds runs (or, for
claims, changes only the analysis): the run directory takes the new study and the sweep runs what is new.
Anything else changes what the finished runs mean; it is named field by field, and ``--fork`` starts a new
run directory beside the old one that re-uses every finished seed run whose settings are unchanged.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

# written by `ablate run` beside the study (what the last command asked, what the data held): not the study
RUNTIME_KEYS = ("path", "fingerprint", "versions", "dataset", "pack_seeds", "imports")
PER_VARIANT = ("variants", "variant_search_spaces")
ABSENT = "(absent)"


def compare_studies(old: dict, new: dict) -> tuple[list[str], list[str]]:
    """``(growth, changes)``: what only adds runs or changes only the analysis, and each real change as
    ``field: old -> new``."""
    growth, changes = [], []
    tunes = bool(new.get("trials"))
    for key in sorted((set(old) | set(new)) - set(RUNTIME_KEYS)):
        before, after = old.get(key, ABSENT), new.get(key, ABSENT)
        if _same(before, after):
            continue
        if key == "claims":
            growth.append("claims changed (they decide the verdicts, not the runs)")
        elif key == "seeds":
            before, after = list(before if isinstance(before, list) else []), list(after)
            added = [s for s in after if s not in before]
            # tuning trains every trial with the first seed: it must stay first
            if set(before) <= set(after) and not (tunes and before and after[0] != before[0]):
                growth.append(f"seeds added: {added}")
            else:
                changes.append(f"seeds: {_short(before)} -> {_short(after)} (only adding seeds keeps the runs)")
        elif key in PER_VARIANT and isinstance(before, dict) and isinstance(after, dict):
            for name in before:
                if name not in after:
                    changes.append(f"{key}.{name}: removed")
                elif not _same(before[name], after[name]):
                    changes += _dict_changes(f"{key}.{name}", before[name], after[name])
            added = [name for name in after if name not in before]
            if added and key == "variants":
                growth.append(f"variants added: {', '.join(added)}")
        elif isinstance(before, dict) and isinstance(after, dict):
            changes += _dict_changes(key, before, after)
        else:
            changes.append(f"{key}: {_short(before)} -> {_short(after)}")
    return growth, changes


def fork_run_dir(study, old_root: Path, resolved: dict):
    """A new run directory beside ``old_root`` for the changed study (``<old name>-fork-<fingerprint>``; reused
    when it already holds this study), holding the old directory's finished seed runs whose settings the new
    study would use unchanged (records and per-image confusions). Returns ``(RunDir, re-used run keys)``."""
    from ablate.rundir import RunDir, confusion_path

    root = old_root.parent / f"{old_root.name}-fork-{resolved['fingerprint'][:8]}"
    if (root / "study.json").is_file():
        return RunDir(root), []
    new = RunDir(root)
    reused = []
    for path in sorted((old_root / "records").glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        row = record.get("row") if isinstance(record, dict) else None
        if not row or not _still_applies(study, row):
            continue
        key = path.stem
        shutil.copy2(path, new.record_path(key))
        npz = confusion_path(old_root, key)
        if npz.is_file():
            shutil.copy2(npz, confusion_path(root, key))
        reused.append(key)
    new.write_study(resolved)
    new.rebuild_tables()
    return new, reused


def _still_applies(study, row: dict) -> bool:
    """A finished seed run of a variant with fixed settings, trained with exactly the settings the new study
    gives that variant and seed (tuned variants are redone: their best setting depends on the whole tuning)."""
    variant = str(row.get("variant"))
    if row.get("phase") != "seed" or row.get("status") != "ok" or variant not in study.variants:
        return False
    if study.tunes(variant):
        return False
    try:
        seed = int(row.get("seed"))
        config = json.loads(row.get("config") or "{}")
    except (TypeError, ValueError):
        return False
    if seed not in study.seeds:
        return False
    wanted = study.train_settings(variant, {}, seed=seed)
    return all(_same(config.get(k), v) for k, v in wanted.items() if k != "device")


def _dict_changes(prefix: str, before: dict, after: dict) -> list[str]:
    return [f"{prefix}.{k}: {_short(before.get(k, ABSENT))} -> {_short(after.get(k, ABSENT))}"
            for k in sorted(set(before) | set(after)) if not _same(before.get(k, ABSENT), after.get(k, ABSENT))]


def _same(a, b) -> bool:
    return _canon(a) == _canon(b)


def _canon(value) -> str:
    return json.dumps(value, sort_keys=True, default=str)  # tuples and lists alike, as in study.json


def _short(value, width: int = 80) -> str:
    text = "(absent)" if value is ABSENT else _canon(value)
    return text if len(text) <= width else text[: width - 3] + "..."
