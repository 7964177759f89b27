"""`check_dataset`: layout, splits, counts, sizes and class pixel shares, and every problem found, one line each."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ablate.data.classes import IGNORE_INDEX
from ablate.data.decode import read_pair, worker_count
from ablate.data.layouts import detect_layout
from ablate.data.layouts.base import PairingError
from ablate.errors import DataError

MAX_PROBLEMS = 50  # lines listed; the count says how many more


def check_dataset(root, *, layout: str | None = None, grouped: bool = True, progress: bool = False) -> dict:
    """Decode every pair at its own size (validating it) and summarise each split.

    Returns {"root", "layout", "classes", "ignore_value", "splits": {split: {"count", "sizes": {"WxH": n},
    "class_shares": {class: fraction of all pixels, ..., "ignored": fraction}}}, "problems": [line, ...]}.
    A folder that has no known layout raises the DataError; every other problem (a missing split, an image
    without a mask, a mask value outside the class set, an unreadable file, image and mask sizes that
    differ) is one line in ``problems`` naming the file and the fix.
    """
    found = detect_layout(root, layout=layout, grouped=grouped)
    info = found.describe()
    report = {"root": info["root"], "layout": found.name, "classes": info["classes"],
              "ignore_value": info["ignore_value"], "splits": {}, "problems": []}
    splits = found.splits()
    if not splits:
        report["problems"].append(_message(lambda: found.pairs("train")))
    elif "train" not in splits:
        report["problems"].append(f"no train split in {found.root} (found: {', '.join(splits)}); "
                                  f"add one as {found.folder} describes")
    elif not {"val", "test"} & set(splits):
        report["problems"].append(f"no val or test split in {found.root} (found: train) to evaluate on; "
                                  f"add one as {found.folder} describes")
    for split in splits:
        try:
            pairs = found.pairs(split)
        except PairingError as exc:  # every unmatched file of the split; the matched pairs are still checked
            report["problems"] += exc.problems
            pairs = exc.pairs
        except DataError as exc:
            report["problems"].append(str(exc))
            continue

        def stats(pair):
            try:
                _, label = read_pair(pair, found, None)
            except DataError as exc:
                return None, None, str(exc)
            return f"{label.shape[1]}x{label.shape[0]}", np.bincount(label.ravel(), minlength=256), None

        with ThreadPoolExecutor(worker_count()) as pool:
            done = pool.map(stats, pairs)
            if progress:
                from tqdm.auto import tqdm

                done = tqdm(done, total=len(pairs), desc=f"check {split}", unit="img")
            results = list(done)
        report["problems"] += [problem for _, _, problem in results if problem]
        counts = [c for _, c, problem in results if not problem]
        total = np.sum(counts, axis=0) if counts else np.zeros(256, np.int64)
        pixels = max(1, int(total.sum()))
        shares = {name: float(total[i]) / pixels for i, name in enumerate(found.class_names)}
        shares["ignored"] = float(total[IGNORE_INDEX]) / pixels
        assert total[len(found.class_names):IGNORE_INDEX].sum() == 0  # layouts yield classes or ignore only
        report["splits"][split] = {"count": len(pairs),
                                   "sizes": dict(Counter(size for size, _, p in results if not p)),
                                   "class_shares": shares}
    return report


def _message(call) -> str:
    try:
        call()
    except DataError as exc:
        return str(exc)
    return "no splits found"


def format_report(report: dict) -> str:
    """A plain-text summary with one class-share column per split (problems are the caller's to print)."""
    splits = list(report["splits"])
    lines = [f"{report['root']}: {report['layout']} layout, {len(report['classes'])} classes, ignored: "
             f"{report['ignore_value']}"]
    for split, info in report["splits"].items():
        sizes = ", ".join(f"{size} ({n})" for size, n in sorted(info["sizes"].items(), key=lambda kv: -kv[1]))
        lines.append(f"  {split:<5} {info['count']:>5} images  sizes (WxH): {sizes}")
    if not splits:
        return "\n".join(lines)
    names = [*report["classes"], "ignored"]
    width = max(len(name) for name in names) + 2
    lines.append("")
    lines.append("class pixel shares".ljust(width + 2) + "".join(f"{s:>8}" for s in splits))
    for name in names:
        row = "".join(f"{report['splits'][s]['class_shares'][name]:>8.3f}" for s in splits)
        lines.append(f"  {name:<{width}}{row}")
    return "\n".join(lines)


def problem_lines(report: dict) -> list[str]:
    """The problems as "error: ..." lines, at most MAX_PROBLEMS and a count of the rest."""
    problems = report["problems"]
    lines = [f"error: {p}" for p in problems[:MAX_PROBLEMS]]
    if len(problems) > MAX_PROBLEMS:
        lines.append(f"error: ... and {len(problems) - MAX_PROBLEMS} more problems (ablate data check --json lists all)")
    return lines


def check_before_compute(layout, splits) -> None:
    """Before any training: every needed split exists and pairs up (cheap: file names only); the first
    problem as a DataError. Label values are validated where each split is decoded, before its first step."""
    for split in splits:
        layout.pairs(split)
