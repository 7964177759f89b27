"""Read a run directory's tables (schema: ablate/rundir) into validated frames.

Everything here is tolerant of what a real run leaves behind (failed runs, NaN
metrics, duplicated seeds after a resume, missing optional tables) and records
what it dropped in ``RunTables.warnings``; only a missing directory or an
unreadable ``results.csv`` is an error, because then there is nothing to analyse.
No torch: this module is imported by ``ablate analyze``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ablate.engine.latency_stats import LATENCY_SETTING_COLUMNS
from ablate.errors import AblateError
from ablate.rundir import sqlite_url
from ablate.rundir.metrics import CLASS_PREFIX, find_metric, result_metrics


class RunDirError(AblateError):
    """A run directory, or one of its tables, cannot be read."""


RESULTS_REQUIRED = ("variant", "seed", "miou")
EPOCHS_REQUIRED = ("epoch", "val_miou")
LATENCY_REQUIRED = ("variant", "round", "ms_per_image")
# Environment columns of results.csv that describe how the numbers were made.
ENVIRONMENT_COLUMNS = ("device", "torch", "pretrained", "image_size")


@dataclass
class ConfusionRun:
    """Per-image confusion matrices of one run's evaluation (rows = truth)."""

    per_image: np.ndarray  # int64 [N, C, C]
    names: list[str]
    class_names: list[str]


@dataclass
class RunTables:
    """The tables of one run directory; optional tables are ``None`` when absent."""

    run_dir: Path
    results: pd.DataFrame
    epochs: pd.DataFrame | None = None
    latency: pd.DataFrame | None = None
    study: dict = field(default_factory=dict)
    confusion_paths: dict[str, Path] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def storage_path(self) -> Path | None:
        path = self.run_dir / "study.db"
        return path if path.is_file() else None


def load_run(run_dir: str | Path) -> RunTables:
    """Read every table of ``run_dir``; raise ``RunDirError`` only when nothing can be analysed."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"run directory {run_dir} does not exist: pass the folder `ablate run` wrote")
    warnings: list[str] = []
    _rebuild_tables_from_records(run_dir, warnings)
    results = read_results(run_dir / "results.csv")
    epochs = _read_optional(run_dir / "epochs.csv", read_epochs, warnings)
    latency = _read_optional(run_dir / "latency.csv", read_latency, warnings)
    study = _read_optional(run_dir / "study.json", read_study, warnings) or {}
    return RunTables(
        run_dir=run_dir,
        results=results,
        epochs=epochs,
        latency=latency,
        study=study,
        confusion_paths=confusion_paths(run_dir),
        warnings=warnings,
    )


def _rebuild_tables_from_records(run_dir: Path, warnings: list[str]) -> None:
    """Tables that no longer hold what the run's records say (cut short, edited, deleted) are rebuilt from
    ``records/`` exactly as ``ablate run`` writes them (``ablate.rundir``), or the fix is named."""
    from ablate.rundir import RunDir, tables_behind_records

    stale = tables_behind_records(run_dir)
    if not stale:
        return
    try:
        RunDir(run_dir).rebuild_tables()
    except OSError as exc:
        raise RunDirError(f"{', '.join(stale)} in {run_dir} do not match the run's records/ (cut short?) and cannot "
                          f"be rebuilt here ({exc.strerror or type(exc).__name__}): run the study's `ablate run` "
                          f"command again (it rebuilds them from the records), or copy the folder somewhere "
                          f"writable") from None
    warnings.append(f"rebuilt {', '.join(stale)} from records/: they did not match the run's records (cut short?)")


def _read_optional(path: Path, reader, warnings: list[str]):
    # An optional table that is broken costs its section of the report, not the whole analysis.
    if not path.is_file():
        return None
    try:
        return reader(path)
    except RunDirError as exc:
        warnings.append(f"skipped {path.name}: {exc}")
        return None


def _read_csv(path: Path, required: tuple[str, ...], fix: str) -> pd.DataFrame:
    if not path.is_file():
        raise RunDirError(f"{path} not found: {fix}")
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        frame = pd.DataFrame(columns=list(required))
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RunDirError(f"cannot read {path}: {reason}") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise RunDirError(f"{path} lacks column(s) {', '.join(missing)}: it must follow the results schema of ablate/rundir (RESULTS_HEAD)")
    return frame


def read_results(path: str | Path) -> pd.DataFrame:
    """``results.csv`` with defaults for the columns a hand-made table may omit."""
    frame = _read_csv(Path(path), RESULTS_REQUIRED, "is this a run directory written by `ablate run`?")
    defaults = {"phase": "seed", "status": "ok", "split": "test", "study": "", "run_id": None}
    for column, value in defaults.items():
        if column not in frame.columns:
            frame[column] = value
    frame["variant"] = frame["variant"].astype(str)
    frame["status"] = frame["status"].fillna("ok").astype(str)
    frame["phase"] = frame["phase"].fillna("seed").astype(str)
    if frame["run_id"].isna().all():
        frame["run_id"] = [f"{v}-{s}" for v, s in zip(frame["variant"], frame["seed"])]
    for column in ["seed", *_metric_columns(frame)]:
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def _metric_columns(frame: pd.DataFrame) -> list[str]:
    named = [*result_metrics(), "params_m", "gflops", "train_seconds", "epochs"]
    return [c for c in frame.columns if c in named or find_metric(c) is not None]


def read_epochs(path: str | Path) -> pd.DataFrame:
    frame = _read_csv(Path(path), EPOCHS_REQUIRED, "")
    for column in ("epoch", "val_miou", "train_loss", "seconds"):
        if column in frame.columns:
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def read_latency(path: str | Path) -> pd.DataFrame:
    frame = _read_csv(Path(path), LATENCY_REQUIRED, "")
    frame["variant"] = frame["variant"].astype(str)
    frame["ms_per_image"] = pd.to_numeric(frame["ms_per_image"], errors="coerce")
    return frame


def read_study(path: str | Path) -> dict:
    path = Path(path)
    try:
        study = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunDirError(f"cannot read {path}: {str(exc).splitlines()[0]}") from None
    if not isinstance(study, dict):
        raise RunDirError(f"{path} is not a JSON object: it must hold the resolved study")
    return study


def confusion_paths(run_dir: Path) -> dict[str, Path]:
    """``run_id -> confusion/<run_id>.npz``."""
    folder = Path(run_dir) / "confusion"
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.glob("*.npz"))}


def load_confusion(path: str | Path) -> ConfusionRun:
    """One run's per-image confusion matrices; ``RunDirError`` names the file when it is unusable."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            per_image = np.asarray(npz["per_image"], dtype=np.int64)
            names = [str(n) for n in npz["names"]] if "names" in npz else []
            class_names = [str(n) for n in npz["class_names"]] if "class_names" in npz else []
    except (OSError, KeyError, ValueError) as exc:
        raise RunDirError(f"cannot read {path}: {str(exc).splitlines()[0]}") from None
    if per_image.ndim != 3 or per_image.shape[1] != per_image.shape[2]:
        raise RunDirError(f"{path}: per_image must be [images, classes, classes], got {per_image.shape}")
    if not class_names:
        class_names = [f"class_{i}" for i in range(per_image.shape[1])]
    return ConfusionRun(per_image=per_image, names=names, class_names=class_names)


def confusion_loader(paths: dict, warnings: list[str]):
    """run_id -> per-image confusions ``[N, C, C]`` (cached; an unreadable file becomes a warning and None),
    or None when the run directory has no confusions. ``paths``: ``confusion_paths(run_dir)``."""
    if not paths:
        return None
    cache: dict = {}

    def load(run_id: str):
        if run_id not in cache:
            path = paths.get(run_id)
            try:
                cache[run_id] = None if path is None else load_confusion(path).per_image
            except RunDirError as exc:
                warnings.append(f"skipped {exc}")
                cache[run_id] = None
        return cache[run_id]

    return load


def seed_rows(results: pd.DataFrame, warnings: list[str]) -> pd.DataFrame:
    """Finished seed-phase rows with a finite mIoU, one per (variant, seed), on one split.

    Drops (and says so in ``warnings``) failed/pruned runs, NaN metrics and
    duplicates a resumed run may leave; prefers the test split when both exist.
    """
    rows = results[results["phase"] == "seed"]
    if rows.empty and not results.empty:
        warnings.append("no seed-phase rows in results.csv: analysing every row as if it were a seed run")
        rows = results
    failed = rows[rows["status"] != "ok"]
    if len(failed):
        counts = failed.groupby("variant").size()
        errors = failed["error"].dropna().astype(str) if "error" in failed.columns else pd.Series([], dtype=str)
        errors = errors[errors.str.strip() != ""]
        first_error = f" (first error: {errors.iloc[0].splitlines()[0][:200]})" if len(errors) else ""
        warnings.append("dropped seed runs that did not finish: "
                        + ", ".join(f"{v} ×{n}" for v, n in counts.items()) + first_error)
    rows = rows[rows["status"] == "ok"]
    bad = rows["miou"].isna() | ~np.isfinite(rows["miou"].astype(float)) | rows["seed"].isna()
    if bad.any():
        warnings.append(f"dropped {int(bad.sum())} row(s) with a missing or non-finite mIoU or seed")
        rows = rows[~bad]
    if "split" in rows.columns and rows["split"].nunique() > 1:
        keep = "test" if (rows["split"] == "test").any() else rows["split"].iloc[0]
        warnings.append(f"seed rows span splits {sorted(rows['split'].unique())}: using split '{keep}' only")
        rows = rows[rows["split"] == keep]
    duplicated = rows.duplicated(["variant", "seed"], keep="last")
    if duplicated.any():
        warnings.append(f"{int(duplicated.sum())} duplicated (variant, seed) row(s): kept the last of each")
        rows = rows[~duplicated]
    rows = rows.copy()
    rows["seed"] = rows["seed"].astype(int)
    return rows.reset_index(drop=True)


def class_columns(frame: pd.DataFrame) -> list[str]:
    """The ``iou_<class>`` columns, in table order."""
    return [c for c in frame.columns if c.startswith(CLASS_PREFIX)]


def paired_frame(seeds: pd.DataFrame, variant: str, baseline: str, metric: str = "miou") -> pd.DataFrame:
    """``seed, variant, baseline`` columns: the seeds both have, in seed order."""
    wide = seeds.pivot_table(index="seed", columns="variant", values=metric, aggfunc="last")
    if variant not in wide or baseline not in wide:
        return pd.DataFrame(columns=["seed", "variant", "baseline"])
    pairs = wide[[variant, baseline]].dropna().sort_index()
    return pd.DataFrame({"seed": pairs.index, "variant": pairs[variant].values, "baseline": pairs[baseline].values})


def unpaired_seeds(seeds: pd.DataFrame, variant: str, baseline: str) -> list[int]:
    mine = set(seeds.loc[seeds["variant"] == variant, "seed"])
    theirs = set(seeds.loc[seeds["variant"] == baseline, "seed"])
    return sorted(int(s) for s in mine ^ theirs)


def load_tune_studies(storage_path: Path, variants: list[str]) -> dict:
    """``variant -> optuna.Study`` for the tune phase in ``study.db`` (empty when Optuna or the file is unusable).

    Study names are matched to variants by name (the sweep names one Optuna study per
    variant); optuna is imported here only, because it is slow to import.
    """
    try:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        storage = sqlite_url(storage_path)
        names = optuna.study.get_all_study_names(storage=storage)
    except Exception:  # noqa: BLE001 - a broken storage only costs the Optuna plots
        return {}
    matched: dict = {}
    for name in sorted(names):
        variant = tune_study_variant(name, variants)
        if variant is not None and variant not in matched:
            matched[variant] = optuna.load_study(study_name=name, storage=storage)
    return matched


def tune_study_variant(name: str, variants: list[str]) -> str | None:
    """The variant whose tune phase the Optuna study ``name`` holds, else ``None``.

    The sweep names studies ``<study>/<variant>/tune`` (and ``.../seed``, ``<study>/latency``,
    which hold no tuning); a bare ``<variant>`` or ``<study>/<variant>`` is accepted too.
    """
    parts = name.split("/")
    if parts[-1] in ("seed", "latency"):
        return None
    if parts[-1] == "tune":
        parts = parts[:-1]
    for variant in variants:
        if parts and parts[-1] == variant:
            return variant
    return None


# --- latency: the one setting rule -------------------------------------------------------------

#: The part of a setting that ``study.json["latency"]["claim_setting"]`` declares.
CLAIM_SETTING_KEYS = ("batch", "height", "width", "dtype", "mode")


def _latency_frame(latency: pd.DataFrame) -> pd.DataFrame:
    rows = latency.copy()
    if "mode" not in rows.columns:
        rows["mode"] = "eager"  # tables written before latency had modes timed eager only
    rows["ms_per_image"] = pd.to_numeric(rows["ms_per_image"], errors="coerce")
    rows = rows[np.isfinite(rows["ms_per_image"]) & (rows["ms_per_image"] > 0)]
    for column in ("batch", "height", "width", "threads"):
        if column in rows.columns:
            rows[column] = pd.to_numeric(rows[column], errors="coerce")
    return rows


def latency_settings(latency: pd.DataFrame | None) -> list[dict]:
    """Every setting in latency.csv: ``[{setting {...}, variants [...], n_rows, n_launches}]``, most rows first."""
    if latency is None or latency.empty:
        return []
    rows = _latency_frame(latency)
    keys = [c for c in LATENCY_SETTING_COLUMNS if c in rows.columns]
    out = []
    for key, group in rows.groupby(keys, dropna=False, sort=False) if keys else [((), rows)]:
        key = key if isinstance(key, tuple) else (key,)
        out.append({"setting": {k: _plain(v) for k, v in zip(keys, key)},
                    "variants": sorted(group["variant"].astype(str).unique()), "n_rows": int(len(group)),
                    "n_launches": int(group["launch"].nunique()) if "launch" in group.columns else 1})
    return sorted(out, key=lambda s: -s["n_rows"])


def claim_latency_rows(latency: pd.DataFrame | None, study: dict, warnings: list[str]) -> tuple:
    """``(rows, setting, reason)``: the latency rows speed claims are judged on, and nothing else.

    The setting is ``study.json["latency"]["claim_setting"]`` (batch, height, width, dtype, mode);
    a run directory written before studies declared one uses the most common setting (with a
    warning). Other settings stay in latency.csv for the report but never enter a claim.
    ``rows`` is None (with ``reason``) when no row matches.
    """
    if latency is None or latency.empty:
        return None, {}, "no latency rounds (latency.csv missing or empty)"
    rows = _latency_frame(latency)
    settings = latency_settings(latency)
    declared = ((study.get("latency") or {}).get("claim_setting") if isinstance(study, dict) else None) or None
    if declared:
        setting = {k: declared[k] for k in CLAIM_SETTING_KEYS if k in declared}
        chosen = rows[_matches(rows, setting)]
        if chosen.empty:
            found = "; ".join(_setting_text(s["setting"]) for s in settings) or "none"
            return None, setting, (f"latency.csv has no rounds at the study's claim setting {_setting_text(setting)} "
                                   f"(found: {found})")
    else:
        if not settings:
            return None, {}, "no latency rounds with a positive time"
        setting = dict(settings[0]["setting"])
        if len(settings) > 1:
            warnings.append("study.json declares no latency claim_setting (older run directory): speed claims use "
                            f"the most common setting {_setting_text(setting)}; "
                            f"{len(settings) - 1} other setting(s) are reported only")
        return rows[_matches(rows, setting)], setting, None
    # within the declared setting, one machine configuration (device, threads)
    extra = [c for c in ("device", "threads") if c in chosen.columns]
    if extra and chosen[extra].drop_duplicates().shape[0] > 1:
        counts = chosen.groupby(extra, dropna=False).size().sort_values(ascending=False)
        first = counts.index[0] if isinstance(counts.index[0], tuple) else (counts.index[0],)
        for key, value in zip(extra, first):
            chosen = chosen[chosen[key] == value]
        warnings.append(f"latency.csv holds the claim setting on several machines/thread counts: speed claims use "
                        f"{dict(zip(extra, map(_plain, first)))}")
    for key in extra:
        setting[key] = _plain(chosen[key].iloc[0])
    return chosen, setting, None


def _matches(rows: pd.DataFrame, setting: dict) -> np.ndarray:
    """Rows whose columns equal ``setting`` (numbers compared as numbers, NaN matches NaN)."""
    mask = np.ones(len(rows), dtype=bool)
    for key, value in setting.items():
        if key not in rows.columns:
            continue
        column = rows[key]
        if value is None or (isinstance(value, float) and math.isnan(value)):
            mask &= column.isna().to_numpy()
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            mask &= (pd.to_numeric(column, errors="coerce") == float(value)).to_numpy()
        else:
            mask &= (column.astype(str) == str(value)).to_numpy()
    return mask


def _plain(value):
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _setting_text(setting: dict) -> str:
    return "{" + ", ".join(f"{k}={v}" for k, v in setting.items()) + "}"
