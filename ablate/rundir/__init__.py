"""The run directory: its layout, its tables' schema, the one atomic writer and JSON sanitiser.

This module is the run directory's single owner and is torch-free: the writer
(engine, sweep) and the reader (``analysis``) both import it.

Concurrency choice: every finished run writes ONE JSON record under
``records/`` (temp file + fsync + atomic rename), named by the logical run
(``<variant>-seed-<seed>``, ``<variant>-tune-<trial>``). The CSV tables are
then rebuilt from all records and atomically replaced. Why not append lines:
a run killed after its row was written but before Optuna heard of it is
retried, and an append would duplicate the row; a record named by the
logical run is simply overwritten. Rebuilding also never leaves a torn
table. Lost updates between two rebuilding processes are ruled out by
re-listing the records after each replace and rebuilding again until the
listing is unchanged (the last writer has always seen every record).
"""

from __future__ import annotations

import base64
import contextlib
import csv
import errno
import io
import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np

from ablate.errors import DiskFullError, OutputError

RESULTS_HEAD = ["study", "variant", "decoder", "encoder", "phase", "run_id", "trial", "seed", "split",
                "miou", "pixel_acc", "mean_acc", "fwiou"]
RESULTS_TAIL = ["params_m", "gflops", "train_seconds", "epochs", "pretrained", "image_size", "config",
                "status", "torch", "device", "started_at", "finished_at", "error"]
EPOCH_COLUMNS = ["study", "variant", "phase", "run_id", "trial", "seed", "epoch", "train_loss", "val_miou",
                 "seconds"]
LATENCY_COLUMNS = ["variant", "launch", "round", "mode", "batch", "height", "width", "dtype", "threads", "device", "ms_per_image", "launch_kind"]
PHASE_ORDER = {"tune": 0, "seed": 1}


def class_column(class_name: str) -> str:
    """results.csv's per-class IoU column of a dataset class: ``iou_<name>``, runs of characters other than
    letters, digits and _ made one _ ("traffic light" -> iou_traffic_light; CamVid's names stay as they are)."""
    import re

    from ablate.rundir.metrics import CLASS_PREFIX

    return CLASS_PREFIX + (re.sub(r"[^0-9A-Za-z_]+", "_", str(class_name).strip()).strip("_") or "class")


class RunDir:
    """``<out>/<study name>/``: study.json, study.db, tables, confusion/, checkpoints/, records/."""

    def __init__(self, root):
        self.root = Path(root)
        self.records = self.root / "records"
        for sub in (self.root, self.records, self.root / "confusion", self.root / "checkpoints"):
            sub.mkdir(parents=True, exist_ok=True)

    study_json = property(lambda self: self.root / "study.json")
    db = property(lambda self: self.root / "study.db")
    results_csv = property(lambda self: self.root / "results.csv")
    epochs_csv = property(lambda self: self.root / "epochs.csv")
    latency_csv = property(lambda self: self.root / "latency.csv")

    def storage_url(self) -> str:
        return sqlite_url(self.db)

    def write_study(self, resolved: dict) -> None:
        write_atomic(self.study_json, json.dumps(resolved, indent=2, default=str) + "\n")

    # --- runs -------------------------------------------------------------------------
    def record_path(self, key: str) -> Path:
        return self.records / f"{key}.json"

    def read_record(self, key: str) -> dict | None:
        try:
            return json.loads(self.record_path(key).read_text())
        except (OSError, ValueError):
            return None

    def save_run(self, key: str, row: dict, epochs: list[dict]) -> None:
        """Keep one finished run (ok, pruned or failed) and refresh the tables."""
        write_atomic(self.record_path(key), json.dumps({"row": row, "epochs": epochs}, default=_json_default))
        self.rebuild_tables()

    def confusion_payload(self, key: str) -> dict:
        """``{"confusion_npz_b64": ...}`` of the run's per-image confusions (empty when it has none)."""
        npz = confusion_path(self.root, key)
        return {"confusion_npz_b64": base64.b64encode(npz.read_bytes()).decode()} if npz.is_file() else {}

    def import_record(self, key: str, record: dict) -> None:
        """Write a record shared through the storage by another worker (and its confusions)."""
        record = dict(record)
        payload = record.pop("confusion_npz_b64", None)
        if payload:
            write_atomic_bytes(confusion_path(self.root, key), base64.b64decode(payload))
        write_atomic(self.record_path(key), json.dumps(record, default=_json_default))

    def save_latency(self, rows: list[dict]) -> None:
        write_atomic(self.record_path("latency"), json.dumps({"latency": rows}, default=_json_default))
        self.rebuild_tables()

    def save_phase_failure(self, phase: str, error: str) -> None:
        """A phase that failed as a whole (latency): its error, for ``analyze`` and ``--list`` to name;
        ``--retry-failed`` removes it with the phase's record."""
        write_atomic(self.record_path(phase), json.dumps({"failed_phase": phase, "error": error}))

    # --- tables -----------------------------------------------------------------------
    def rebuild_tables(self) -> None:
        """Rewrite results.csv, epochs.csv, latency.csv from the records, until none changed meanwhile."""
        for _ in range(20):
            before = self._signature()
            self._write_tables()
            if self._signature() == before:
                return

    def _signature(self):
        return sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in self.records.glob("*.json"))

    def _write_tables(self) -> None:
        for path, text in table_texts(self.root).items():
            write_atomic(path, text)


def table_texts(root) -> dict[Path, str]:
    """What results.csv, epochs.csv and latency.csv hold when rebuilt from ``records/`` (tables with no row are
    left alone): the one definition ``ablate run`` writes and ``analyze`` checks the tables against."""
    root = Path(root)
    rows, epochs, latency = [], [], []
    for path in sorted((root / "records").glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):  # vanished or being replaced: the next pass sees it
            continue
        if "row" in record:
            rows.append(record["row"])
            epochs.extend(record.get("epochs") or [])
        latency.extend(record.get("latency") or [])
    rows.sort(key=_run_order)
    epochs.sort(key=lambda e: (_run_order(e), e.get("epoch", 0)))
    texts = {}
    if rows:
        texts[root / "results.csv"] = to_csv(rows, results_columns(rows))
    if epochs:
        texts[root / "epochs.csv"] = to_csv(epochs, EPOCH_COLUMNS)
    if latency:
        texts[root / "latency.csv"] = to_csv(latency, LATENCY_COLUMNS)
    return texts


def tables_behind_records(root) -> list[str]:
    """Names of the tables that do not hold what ``records/`` says (cut short by a full disk or a partial copy,
    edited or deleted); ``rebuild_tables`` restores them."""
    out = []
    for path, text in table_texts(root).items():
        try:
            same = path.read_text() == text
        except (OSError, UnicodeDecodeError):
            same = False
        if not same:
            out.append(path.name)
    return out


def failed_phases(root) -> dict[str, str]:
    """``{phase: error}`` of the phases of a run directory that failed as a whole (``save_phase_failure``)."""
    out = {}
    for path in sorted((Path(root) / "records").glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and record.get("failed_phase"):
            out[str(record["failed_phase"])] = str(record.get("error") or "failed")
    return out


def confusion_path(root, key: str) -> Path:
    """``<root>/confusion/<key>.npz``: a run's per-image confusion matrices."""
    return Path(root) / "confusion" / f"{key}.npz"


def checkpoint_path(root, key: str) -> Path:
    """``<root>/checkpoints/<key>.pt``: a run's final weights."""
    return Path(root) / "checkpoints" / f"{key}.pt"


def save_confusion(root, key: str, *, per_image, names, class_names, split: str) -> Path:
    """Write a run's per-image confusions (npz: per_image [N,C,C], names, class_names, split) atomically."""
    buf = io.BytesIO()
    np.savez_compressed(buf, per_image=per_image, names=np.array(names), class_names=np.array(class_names),
                        split=np.array(split))
    path = confusion_path(root, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic_bytes(path, buf.getvalue())
    return path


def save_checkpoint(root, key: str, data: bytes) -> Path:
    """Write a run's serialised checkpoint (the caller's ``torch.save`` bytes) atomically."""
    path = checkpoint_path(root, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic_bytes(path, data)
    return path


def ensure_writable_dir(path, *, option: str = "--out", label: str | None = None) -> Path:
    """Create ``path`` (and parents) and prove it takes a file; OutputError naming the fix otherwise.

    Called before any work, so a finished run is never lost to an unusable output folder. ``label``: how the
    message names the folder when the user did not pass it with ``option`` (default ``"<option> <path>"``).
    """
    path = Path(path).expanduser()
    label = label or f"{option} {path}"
    if path.exists() and not path.is_dir():
        raise OutputError(f"{label} is a file, not a folder; pass {option} with a folder path")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        if is_disk_full(exc):
            raise DiskFullError(f"the disk holding {path} is full; free space, then run the same command again") \
                from None
        reason = exc.strerror or type(exc).__name__
        raise OutputError(f"{label} cannot be written ({reason}); pass {option} with a writable folder") from None
    return path


def is_disk_full(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or what caused it) is a full disk or quota: ENOSPC, EDQUOT or SQLite's 'disk is full'."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "database or disk is full" in str(exc) or "No space left on device" in str(exc):
            return True
        exc = exc.__cause__ if exc.__cause__ is not None or exc.__suppress_context__ else exc.__context__
    return False


def sqlite_url(path) -> str:
    """The Optuna storage URL of a SQLite file (the run directory's default storage)."""
    return f"sqlite:///{Path(path).resolve()}"


def results_columns(rows: list[dict]) -> list[str]:
    """The stable column order: head, iou_<class> in first-seen order, tail, then any extras."""
    seen = list(dict.fromkeys(k for r in rows for k in r))
    ious = [k for k in seen if k.startswith("iou_")]
    fixed = set(RESULTS_HEAD) | set(RESULTS_TAIL) | set(ious)
    return RESULTS_HEAD + ious + RESULTS_TAIL + [k for k in seen if k not in fixed]


def to_csv(rows: list[dict], columns: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(row.get(k)) for k in columns})
    return buf.getvalue()


@contextlib.contextmanager
def atomic_dir(path, *, what: str = "the report"):
    """Build a folder's contents in a temp folder beside ``path``, then swap it in: readers see the old folder
    or the new one, never a half-written one; on any error the temp folder is removed and ``path`` is
    unchanged (a full disk: DiskFullError naming the folder)."""
    import shutil

    path = Path(path)
    stage = old = None
    try:
        stage = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}-new-"))
        yield stage
        if path.exists():
            old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}-old-"))
            os.replace(path, old / path.name)
        os.replace(stage, path)
        stage = None
    except OSError as exc:
        if is_disk_full(exc):
            raise DiskFullError(f"disk full while writing {what} under {path.parent}; nothing there changed: free "
                                f"space (or write elsewhere, e.g. --report-dir) and run the same command again") \
                from None
        raise
    finally:
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)
        if old is not None:
            if not path.exists() and (old / path.name).exists():  # the swap failed half-way: put the old one back
                os.replace(old / path.name, path)
            shutil.rmtree(old, ignore_errors=True)


def write_atomic(path: Path, text: str) -> None:
    """Readers see the old file or the new one, never half of one; survives a crash (fsync)."""
    write_atomic_bytes(path, text.encode())


def write_atomic_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; run directories are shared with readers
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _run_order(r: dict):
    trial = r.get("trial")
    seed = r.get("seed")
    return (PHASE_ORDER.get(r.get("phase"), 9), str(r.get("variant")),
            -1 if trial is None else int(trial), -1 if seed is None else int(seed))


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        return "" if math.isnan(value) else value
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=_json_default)
    return value


def _json_default(obj):
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


def json_safe(obj):
    """Recursively convert numpy scalars/arrays and tuples to plain Python; NaN/inf -> None."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "to_dict") and not isinstance(obj, type):  # Claim (and other records)
        return json_safe(obj.to_dict())
    if isinstance(obj, np.ndarray):
        return [json_safe(v) for v in obj.tolist()]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        return x if math.isfinite(x) else None
    if obj is None or isinstance(obj, str):
        return obj
    if type(obj).__name__ in ("NAType", "NaTType"):  # pandas missing values
        return None
    if hasattr(obj, "item"):  # other numpy scalars
        return json_safe(obj.item())
    return str(obj)
