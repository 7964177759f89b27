"""The run directory side of a sweep: preparing it, training one run and recording its row and epochs
(results.csv / epochs.csv), failed runs as rows, a full disk as one clear error, progress lines."""

from __future__ import annotations

import json
import os
import traceback
from pathlib import Path

from ablate.errors import AblateError, DiskFullError, StudyError
from ablate.rundir import RunDir, ensure_writable_dir, is_disk_full
from ablate.study.definition import Study, resolved_study, run_dir_name
from ablate.sweep.optimize import _one_line, _say


class RecordingMixin:
    """``Sweep``'s training and recording of single runs (the packed path records through ``_record`` too)."""

    def _disk_full(self, exc: BaseException) -> DiskFullError:
        where = getattr(exc, "filename", None)
        where = Path(where).parent if where else self.run_dir.root
        return DiskFullError(f"disk full: could not write under {where}; free space there and run the same "
                             f"command again (every run recorded so far is kept)")

    def _train(self, *, variant, phase, key, trial_no, seed, params, eval_split, on_epoch) -> dict:
        from ablate.engine.config import TrainConfig
        from ablate.engine.environment import utc_now

        settings = self.study.train_settings(variant, params, seed=seed)
        if self.device:
            settings["device"] = self.device
        started = utc_now()
        base = self._base_row(variant=variant, phase=phase, key=key, trial_no=trial_no, seed=seed,
                              settings=settings, eval_split=eval_split, started=started)
        if self.verbose and self.lines:
            on_epoch = self._epoch_lines(key, on_epoch)
        failure = None
        try:
            row = self.train_run(TrainConfig.from_dict(settings), data_root=self._data_root, out_dir=self.run_dir.root,
                                 run_id=key, eval_split=eval_split, on_epoch=on_epoch, progress=self.progress,
                                 study=self.study.name, variant=variant, phase=phase, trial=trial_no,
                                 save_checkpoint=self._keeps_checkpoint(phase))
        except AblateError:
            raise
        except Exception as exc:  # recorded as a failed run (below); the study goes on
            row, failure = self._failed_row(exc, started)
        return self._record(row, base, failure)

    def record_dataset(self, dataset: dict) -> None:
        """study.json's ``dataset``: the layout, root, class names, colours and ignore value the runs read."""
        from ablate.rundir import write_atomic

        resolved = json.loads(self.run_dir.study_json.read_text())
        if resolved.get("dataset") != dataset:
            resolved["dataset"] = dataset
            write_atomic(self.run_dir.study_json, json.dumps(resolved, indent=2, default=str) + "\n")

    def _keeps_checkpoint(self, phase: str) -> bool:
        return self.keep_checkpoints == "all" or (self.keep_checkpoints == "seeds" and phase == "seed")

    def _failed_row(self, exc: Exception, started: str) -> tuple[dict, str]:
        from ablate.engine.environment import utc_now

        if is_disk_full(exc):
            raise self._disk_full(exc) from None
        row = {"status": "failed", "error": _one_line(exc), "miou": float("nan"), "started_at": started,
               "finished_at": utc_now()}
        return row, _one_line(exc) + (f"\n{traceback.format_exc(limit=-3)}" if self.verbose else "")

    def _record(self, row: dict, base: dict, failure: str | None) -> dict:
        """Save one run's row and epochs (results.csv / epochs.csv), the same for single and packed runs."""
        from ablate.engine.environment import utc_now

        study, variant, phase, key, trial_no, seed = (base[k] for k in ("study", "variant", "phase", "run_id",
                                                                        "trial", "seed"))
        started = base["started_at"]
        history = row.pop("epochs_history", None) or row.pop("history", None) or []
        row.pop("history", None)
        base = {k: v for k, v in base.items() if k != "started_at"}
        row = {**base, **{k: v for k, v in row.items() if v is not None or k not in base}}
        row.update(study=study, variant=variant, phase=phase, run_id=key, trial=trial_no)
        row.setdefault("started_at", started)
        row.setdefault("finished_at", utc_now())
        epochs = [{"study": study, "variant": variant, "phase": phase, "run_id": key, "trial": trial_no,
                   "seed": seed, **h} for h in history]
        try:
            self.run_dir.save_run(key, row, epochs)
        except OSError as exc:
            if is_disk_full(exc):
                raise self._disk_full(exc) from None
            raise
        if failure and not self.lines:  # said only now that it is recorded (off a terminal: the run's line says it)
            _say(f"run {key} failed (recorded; the study goes on; -v shows where): {failure}")
        return row

    def _base_row(self, *, variant, phase, key, trial_no, seed, settings, eval_split, started) -> dict:
        return {"study": self.study.name, "variant": variant, "decoder": settings["decoder"],
                "encoder": settings.get("encoder"), "phase": phase,
                "run_id": key, "trial": trial_no, "seed": seed, "split": eval_split,
                "config": json.dumps(settings, sort_keys=True, default=str), "started_at": started}

    def _line(self, message: str) -> None:
        """One progress line off a terminal (on a terminal the bar says it)."""
        if self.lines:
            worker = os.environ.get("ABLATE_WORKER")
            _say(f"[{worker}] {message}" if worker else message)

    def _epoch_lines(self, key: str, on_epoch):
        def logged(epoch, metrics):
            loss, miou = metrics.get("train_loss", float("nan")), metrics.get("miou", float("nan"))
            self._line(f"{key} epoch {epoch}: train loss {loss:.4f}, val mIoU {miou:.4f}")
            if on_epoch is not None:
                on_epoch(epoch, metrics)

        return logged


def prepare_run_dir(study: Study, out: str, *, fork: bool = False) -> RunDir:
    """The run directory, checked before any work: an --out that cannot be written is refused; one that holds
    the study with seeds, variants or claims added takes the new study (the sweep runs what is new); one that
    holds a changed study is refused naming each change, or with ``fork`` a new directory beside it re-uses
    every finished run that still applies (``ablate.sweep.growth``)."""
    from ablate.sweep.growth import compare_studies, fork_run_dir

    run_dir = RunDir(ensure_writable_dir(Path(out) / run_dir_name(study)))
    resolved = resolved_study(study)
    if not run_dir.study_json.exists():
        run_dir.write_study(resolved)
        return run_dir
    old = json.loads(run_dir.study_json.read_text())
    if old.get("fingerprint") == resolved["fingerprint"]:
        return run_dir
    growth, changes = compare_studies(old, resolved)
    if changes and fork:
        forked, reused = fork_run_dir(study, run_dir.root, resolved)
        _say(f"forked {run_dir.root} into {forked.root}: {len(reused)} finished run(s) re-used (settings "
             f"unchanged), the others will run")
        return forked
    if changes:
        raise StudyError(f"{run_dir.root} holds a different study: {'; '.join(changes)}. Run the changed study in "
                         f"a new directory (--out DIR), or with --fork (a new directory beside this one that re-uses "
                         f"every finished run whose settings are unchanged)")
    kept = {k: old[k] for k in ("dataset", "pack_seeds") if k in old}  # re-recorded by the next run anyway
    run_dir.write_study({**resolved, **kept})
    _say(f"{run_dir.root}: the study grew ({'; '.join(growth)}); finished runs are kept, the new ones will run")
    return run_dir
