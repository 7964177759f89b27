"""Running a study file, the one way every process gets what the file registers.

A study file may define (or import from a module beside it) its own decoders, encoders or dataset
layouts, registered as a side effect of running it. Every process that builds models for a study
(the sweep and its ``--workers``, the latency launches, which are fresh processes, ``ablate train
--study``, ``ablate bench train|latency``) therefore runs the file first: ``run_study_file`` puts the
file's folder on ``sys.path`` (so ``import my_decoders`` beside it works) and runs it once per
process and content. ``import_study_plugins(paths)`` is that for the paths a study records
(``Study.plugin_paths()``, study.json's ``imports``). Torch-free.
"""

from __future__ import annotations

import hashlib
import runpy
import sys
from pathlib import Path

from ablate.errors import StudyError

__all__ = ["import_study_plugins", "run_study_file"]

# resolved path -> (content hash, namespace): a file runs once per process unless it changed
_RAN: dict[str, tuple[str, dict]] = {}


def run_study_file(path) -> dict:
    """Run the study file at ``path`` (its folder first on ``sys.path``) and return its namespace.

    Every problem is one StudyError line naming the file (and the line, where the file has one).
    """
    path = Path(path)
    if not path.is_file():
        raise StudyError(f"{path}: no such study file; pass a Python file that defines `study = Study(...)`")
    resolved = path.resolve()
    digest = hashlib.sha256(resolved.read_bytes()).hexdigest()
    cached = _RAN.get(str(resolved))
    if cached is not None and cached[0] == digest:
        return cached[1]
    folder = str(resolved.parent)
    if folder not in sys.path:  # modules beside the study file import as top-level modules
        sys.path.insert(0, folder)
    try:
        namespace = runpy.run_path(str(resolved), run_name="ablate_study")
    except SyntaxError as exc:
        raise StudyError(f"{path}:{exc.lineno}: syntax error: {exc.msg}") from None
    except StudyError as exc:  # e.g. a Claim whose band fails its check where the file makes it
        if str(path) in str(exc):
            raise
        raise StudyError(f"{path}:{_line_in(resolved, exc)}: {exc}") from None
    except Exception as exc:  # the file is user code: report, never trace back
        msg = str(exc).splitlines()[0] if str(exc) else ""
        raise StudyError(f"{path}: the study file raised {type(exc).__name__}: {msg}") from None
    _RAN[str(resolved)] = (digest, namespace)
    return namespace


def import_study_plugins(paths) -> None:
    """Run each study file in ``paths`` (what it registers becomes buildable in this process).

    A file that is gone or fails is one StudyError line naming it: a fresh process (a latency
    launch, a worker on another machine) must see the same file as the process that loaded the study.
    """
    for path in paths or ():
        if not Path(path).is_file():
            raise StudyError(f"{path}: the study file this run imports (for its own decoders or data layouts) is "
                             "not there; run from where the study was started, or restore the file")
        run_study_file(path)


def _line_in(path: Path, exc: BaseException) -> int | str:
    """The line of ``path`` that raised ``exc`` (the innermost frame in that file), else '?'."""
    import traceback

    lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename).resolve() == path]
    return lines[-1] if lines else "?"
