"""`python tests/verdicts_snapshot.py OUT`: verdicts.json of fixture run dirs (fixed seeds) written to OUT/<name>.json, for
before/after diffs with tests/verdicts_compare.py (run it with PYTHONPATH at the code to snapshot). Not a test."""
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, "tests")
from analysis_runs import make_run_dir

from analysis import analyze

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
ABS = [{"variant": "skip_fused", "metric": "miou", "band": [0.01, 0.05], "relative": False, "baseline": None},
       {"variant": "skip_fused", "metric": "pixel_acc", "band": [0.0, 0.02], "relative": False, "baseline": None},
       {"variant": "unet_r34", "metric": "fps", "band": [-60, -40], "relative": False, "baseline": None}]
cases = {"default": {}, "bench_4x10x233": {"n_images": 233}, "seeds3_images": {"n_seeds": 3, "image_sd": 0.02},
         "absolute_claims": {"claims": ABS}}
with tempfile.TemporaryDirectory() as tmp:
    for name, kw in cases.items():
        run = make_run_dir(Path(tmp) / name, **kw)
        t = time.perf_counter()
        v = analyze(run, write=False)
        dt = time.perf_counter() - t
        v.pop("run_dir", None)
        v.get("environment", {}).pop("analysis_versions", None)
        (out / f"{name}.json").write_text(json.dumps(v, indent=2, sort_keys=True))
        print(name, f"{dt:.2f}s")
