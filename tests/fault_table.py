"""The newcomer's fault table: every bad input and fault through the real CLI, one row each.

``python tests/fault_table.py [--only NAME ...]`` prints a Markdown table: case, command, exit code, the
last line of stderr, whether a traceback was printed, and whether anything already computed was lost
(checked where a case has something to lose). Sweep cases use the fast fake trainer
(tests/fake_trainer.py); data, train and analyze cases the real code. Full disk is a real 2 MiB tmpfs and a
read-only folder a read-only bind mount when this runs as root on Linux (else those rows say "skipped").
Not a test (slow, needs mounts): a measurement for the issue's closing note.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))
from test_sweep import TINY, fake_env  # noqa: E402

ROOT = TESTS.parent
PY = sys.executable
ROWS: list[dict] = []


def ablate(*args: str, env=None, cwd=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", "ablate", *args], capture_output=True, text=True, env=env or fake_env(),
                          cwd=cwd, timeout=timeout)


def record(case: str, command: str, proc, lost: str = "n/a", expect: int | None = 2) -> None:
    err = (proc.stderr or "").strip().splitlines()
    last = err[-1] if err else (proc.stdout or "").strip().splitlines()[-1:] or [""]
    last = last if isinstance(last, str) else last[0]
    traceback = "Traceback (most recent call last)" in (proc.stderr or "")
    ok = (expect is None or proc.returncode == expect) and not traceback and lost in ("no", "n/a")
    ROWS.append({"case": case, "command": command, "exit": proc.returncode, "message": last[:160],
                 "traceback": "yes" if traceback else "no", "lost": lost, "as expected": "yes" if ok else "NO"})
    print(f"{'ok ' if ok else 'BAD'} {case}: exit {proc.returncode}: {last[:120]}", file=sys.stderr, flush=True)


def study_file(tmp: Path, name="tiny", *, seeds=(0, 1), trials=0, replace=()) -> Path:
    text = TINY.format(name=name, trials=trials, seeds=list(seeds))
    for old, new in replace:
        assert old in text, old
        text = text.replace(old, new)
    path = tmp / f"{name}.py"
    path.write_text(text)
    return path


def rows(run: Path) -> list[dict]:
    path = run / "results.csv"
    return list(csv.DictReader(open(path))) if path.exists() else []


def synthetic_data(tmp: Path) -> Path:
    from ablate.data.synthetic import make_synthetic

    return make_synthetic(tmp / "synthetic", n_train=3, n_val=2, n_test=2, size=(32, 32), seed=0)


def mount(kind: str, path: Path) -> bool:
    """A 2 MiB tmpfs (kind 'full') or a read-only bind of itself (kind 'ro') at ``path``; False if not possible."""
    if os.geteuid() != 0 or not sys.platform.startswith("linux"):
        return False
    path.mkdir(parents=True, exist_ok=True)
    if kind == "full":
        return subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2M", "tmpfs", str(path)]).returncode == 0
    return (subprocess.run(["mount", "--bind", str(path), str(path)]).returncode == 0
            and subprocess.run(["mount", "-o", "remount,ro,bind", str(path)]).returncode == 0)


def umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


def cases(tmp: Path):
    data = synthetic_data(tmp)
    yield "data folder missing", lambda: record("data folder missing", "ablate data check /nonexistent",
                                                 ablate("data", "check", "/nonexistent"))

    def empty():
        (tmp / "empty").mkdir()
        record("data folder empty", "ablate data check EMPTY", ablate("data", "check", str(tmp / "empty")))
    yield "data folder empty", empty

    def corrupt():
        bad = tmp / "corrupt"
        shutil.copytree(data, bad)
        victim = sorted((bad / "train").iterdir())[0]
        victim.write_bytes(b"not a png")
        record("corrupt image", "ablate data check CORRUPT", ablate("data", "check", str(bad)))
    yield "corrupt image", corrupt

    def out_of_range():
        import numpy as np
        from PIL import Image

        bad = tmp / "labels"
        shutil.copytree(data, bad)
        victim = sorted((bad / "trainannot").iterdir())[0]
        Image.fromarray(np.full((32, 32), 200, np.uint8)).save(victim)
        record("label values out of range", "ablate data check LABELS", ablate("data", "check", str(bad)))
    yield "label values out of range", out_of_range

    yield "study file missing", lambda: record("study file missing", "ablate run nope.py",
                                               ablate("run", str(tmp / "nope.py"), "--out", str(tmp / "r")))

    def syntax():
        p = tmp / "syntax.py"
        p.write_text("study = Study(\n")
        record("study syntax error", "ablate run syntax.py", ablate("run", str(p), "--out", str(tmp / "r")))
    yield "study syntax error", syntax

    def no_study():
        p = tmp / "nostudy.py"
        p.write_text("x = 1\n")
        record("study file without `study`", "ablate run nostudy.py", ablate("run", str(p), "--out", str(tmp / "r")))
    yield "study file without study", no_study

    def edit(case, old, new):
        p = study_file(tmp, name="edit", replace=[(old, new)])
        record(case, f"ablate run (study with {new.strip()[:40]})", ablate("run", str(p), "--out", str(tmp / "r")))

    yield "negative seeds", lambda: edit("negative seeds", "seeds=[0, 1]", "seeds=[-1, -2]")
    yield "claim metric typo", lambda: edit("claim metric typo", '"miou", band', '"mioux", band')
    yield "claim variant typo", lambda: edit("claim variant typo", 'Claim("skip_fused"', 'Claim("skip_fusd"')
    yield "band lo > hi", lambda: edit("band lo > hi", "band=(0.02, 0.03)", "band=(0.03, 0.02)")
    yield "band lo == hi", lambda: edit("band lo == hi", "band=(0.02, 0.03)", "band=(0.02, 0.02)")
    yield "band infinite", lambda: edit("band infinite", "band=(0.02, 0.03)", "band=(0.02, float('inf'))")
    yield "decoder setting typo", lambda: edit("decoder setting typo", 'Variant("skip_fused")',
                                               'Variant("skip_fused", settings={"embed_dimm": 64})')
    yield "unknown decoder", lambda: edit("unknown decoder", 'Variant("skip_fused")', 'Variant("skip_fusedd")')

    def flag(case, *extra):
        p = study_file(tmp, name="flags")
        record(case, "ablate run tiny.py " + " ".join(extra), ablate("run", str(p), "--out", str(tmp / "r"), *extra))
    yield "unknown preset", lambda: flag("unknown preset", "--preset", "fast")
    yield "--workers 0", lambda: flag("--workers 0", "--workers", "0")
    yield "--pack-seeds 0", lambda: flag("--pack-seeds 0", "--pack-seeds", "0")

    def bad_out():
        (tmp / "afile").write_text("x")
        p = study_file(tmp, name="badout")
        record("--out is a file", "ablate run tiny.py --out FILE", ablate("run", str(p), "--out", str(tmp / "afile")))
    yield "--out is a file", bad_out

    for size in ("7", "16"):
        yield f"train --image-size {size}", lambda s=size: record(
            f"train --image-size {s}", f"ablate train --image-size {s}",
            ablate("train", "--data", str(data), "--image-size", s, "--epochs", "1", "--pretrained", "none",
                   "--out", str(tmp / f"train{s}"), env=dict(os.environ)))

    yield "unknown layout", lambda: record("unknown layout", "ablate data check DIR --layout nope",
                                           ablate("data", "check", str(data), "--layout", "nope"))

    def kill_resume():
        p = study_file(tmp, name="killed", seeds=(0, 1, 2, 3))
        out = tmp / "kill"
        env = fake_env(epoch_seconds=0.6)
        proc = subprocess.Popen([PY, "-m", "ablate", "run", str(p), "--out", str(out), "--no-progress",
                                 "--heartbeat", "1"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
        deadline = time.time() + 120
        while time.time() < deadline and len(rows(out / "killed")) < 2:
            time.sleep(0.2)
        before = rows(out / "killed")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        again = ablate("run", str(p), "--out", str(out), "--no-progress", "--heartbeat", "1", env=fake_env())
        after = rows(out / "killed")
        keys = [(r["variant"], r["phase"], r["seed"]) for r in after]
        kept = all(any(a["run_id"] == b["run_id"] for a in after) for b in before)
        lost = "no" if kept and len(keys) == len(set(keys)) == 8 else f"yes ({len(keys)} rows, kept={kept})"
        record("kill -9 and resume", "kill -9 mid-study, then the same ablate run", again, lost, expect=0)
    yield "kill -9 and resume", kill_resume

    def two_workers():
        p = study_file(tmp, name="two", seeds=(0, 1, 2, 3))
        out = tmp / "two"
        env = fake_env(epoch_seconds=0.1)
        procs = [subprocess.Popen([PY, "-m", "ablate", "run", str(p), "--out", str(out), "--no-progress",
                                   "--heartbeat", "1"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(2)]
        outs = [pr.communicate(timeout=300) for pr in procs]
        keys = [(r["variant"], r["phase"], r["seed"]) for r in rows(out / "two")]
        lost = "no" if len(keys) == len(set(keys)) == 8 else f"yes ({len(keys)} rows)"
        last = subprocess.CompletedProcess([], max(pr.returncode for pr in procs), outs[1][0], outs[1][1])
        record("two processes on one study", "ablate run tiny.py (twice at once)", last, lost, expect=0)
    yield "two workers", two_workers

    def failed_latency():
        p = study_file(tmp, name="lat")
        proc = ablate("run", str(p), "--out", str(tmp / "lat"), env=fake_env(ABLATE_FAKE_LATENCY_ERROR="boom"))
        record("latency phase fails", "ablate run (latency raises)", proc, expect=1)
    yield "failed latency phase", failed_latency

    def grow():
        p = study_file(tmp, name="grow", seeds=(0, 1))
        out = tmp / "grow"
        ablate("run", str(p), "--out", str(out))
        before = rows(out / "grow")
        p.write_text(p.read_text().replace("seeds=[0, 1]", "seeds=[0, 1, 2]"))
        proc = ablate("run", str(p), "--out", str(out))
        after = rows(out / "grow")
        kept = all(any(a["run_id"] == b["run_id"] and a["miou"] == b["miou"] for a in after) for b in before)
        lost = "no" if kept and len(after) == len(before) + 2 else f"yes ({len(before)} -> {len(after)} rows)"
        record("add a seed to a finished study", "ablate run (seeds [0,1] -> [0,1,2])", proc, lost, expect=0)
        p.write_text(p.read_text().replace('"epochs": 2', '"epochs": 3'))
        record("change a setting of a finished study", "ablate run (epochs 2 -> 3)", ablate("run", str(p), "--out", str(out)))
    yield "grow", grow

    def run_full_disk():
        mnt = tmp / "fullrun"
        if not mount("full", mnt):
            return ROWS.append({"case": "full disk during a run", "command": "", "exit": "", "message": "skipped: no mount",
                                "traceback": "", "lost": "", "as expected": ""})
        try:
            (mnt / "filler").write_bytes(b"\0" * (2 * 1024 * 1024 - 96 * 1024))
            p = study_file(tmp, name="full")
            proc = ablate("run", str(p), "--out", str(mnt / "runs"))
            record("full disk during a run", "ablate run --out FULL", proc, expect=None if proc.returncode else -1)
        finally:
            umount(mnt)
    yield "full disk during run", run_full_disk

    def analyze_cases():
        p = study_file(tmp, name="done")
        out = tmp / "done"
        ablate("run", str(p), "--out", str(out))
        run = out / "done"
        record("analyze a missing folder", "ablate analyze /nonexistent", ablate("analyze", "/nonexistent"))
        cut = tmp / "cut"
        shutil.copytree(run, cut)
        text = (cut / "results.csv").read_text()
        (cut / "results.csv").write_text(text[: len(text) * 2 // 3] + '"unterminated')
        proc = ablate("analyze", str(cut))
        record("analyze a cut-short results.csv", "ablate analyze CUT", proc, expect=None)
        ro = tmp / "ro"
        shutil.copytree(run, ro)
        if mount("ro", ro):
            try:
                record("analyze a read-only run dir", "ablate analyze RO", ablate("analyze", str(ro)),
                       "no" if (ro / "results.csv").exists() else "yes")
                proc = ablate("run", str(p), "--out", str(ro.parent / "ro_parent_is_fine"))
            finally:
                umount(ro)
        full = tmp / "fullanalyze"
        if mount("full", full):
            try:
                shutil.copytree(run, full / "run", ignore=shutil.ignore_patterns("checkpoints"))
                free = shutil.disk_usage(full).free
                (full / "filler").write_bytes(b"\0" * max(0, free - 64 * 1024))
                proc = ablate("analyze", str(full / "run"))
                lost = "no" if (full / "run" / "results.csv").stat().st_size > 0 else "yes"
                record("analyze on a full disk", "ablate analyze FULL", proc, lost, expect=None if proc.returncode else -1)
            finally:
                umount(full)
        pilot = ablate("plan", str(p), "--pilot", str(run))  # synthetic 16x16 data, random init, test split
        record("plan --pilot on a non-pilot run", "ablate plan tiny.py --pilot TINY_RUN", pilot, expect=None)
    yield "analyze", analyze_cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="case names to run (substring match)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ablate-faults-") as tmp:
        for name, run in cases(Path(tmp)):
            if args.only and not any(o in name for o in args.only):
                continue
            try:
                run()
            except Exception as exc:  # noqa: BLE001 - a broken case is a row, not the end of the table
                ROWS.append({"case": name, "command": "", "exit": "", "message": f"CASE BROKE: {exc!r}"[:160],
                             "traceback": "", "lost": "", "as expected": "NO"})
    headers = ["case", "command", "exit", "message", "traceback", "lost", "as expected"]
    print("| " + " | ".join(headers) + " |\n|" + "---|" * len(headers))
    for row in ROWS:
        print("| " + " | ".join(str(row[h]).replace("|", "\\|") for h in headers) + " |")


if __name__ == "__main__":
    main()
