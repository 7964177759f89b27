"""`python tests/analyze_timing.py CODE RUN_DIR 0|1`: seconds of one ``analyze`` (after a warm-up call) of a copy of
RUN_DIR with the ``analysis`` package found under CODE (a checkout, e.g. an older commit's worktree); 1 also writes
the report. Interleave calls for two CODEs to compare them on a busy machine. Not a test."""

import shutil
import sys
import tempfile
import time

code, run, write = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
sys.path.insert(0, code)
import analysis  # noqa: E402

tmp = tempfile.mkdtemp()
shutil.copytree(run, tmp + "/r", ignore=shutil.ignore_patterns("report"))
analysis.analyze(tmp + "/r", write=False, n_boot=10000)  # imports and caches warm
start = time.perf_counter()
analysis.analyze(tmp + "/r", write=write, n_boot=10000)
print(f"{time.perf_counter() - start:.2f}")
shutil.rmtree(tmp)
