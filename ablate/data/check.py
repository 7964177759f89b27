"""`check_dataset`: layout, splits, counts, sizes and class pixel shares, or the first problem named."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ablate.data.classes import IGNORE_INDEX
from ablate.data.decode import read_pair, worker_count
from ablate.data.layouts import detect_layout


def check_dataset(root, *, grouped: bool = True, progress: bool = False) -> dict:
    """Decode every pair at its own size (validating it) and summarise each split.

    Returns {"root", "layout", "classes", "splits": {split: {"count", "sizes": {"WxH": n},
    "class_shares": {class: fraction of all pixels, ..., "void": fraction}}}}.
    """
    layout = detect_layout(root, grouped=grouped)
    splits = layout.splits()
    if not splits:
        layout.pairs("train")  # raises the "split not found" error naming what was expected
    n_classes = len(layout.class_names)
    report = {
        "root": str(layout.root),
        "layout": layout.kind,
        "classes": list(layout.class_names),
        "splits": {},
    }
    for split in splits:
        pairs = layout.pairs(split)

        def stats(pair):
            _, label = read_pair(pair, layout, None)
            counts = np.bincount(label.ravel(), minlength=256)
            return f"{label.shape[1]}x{label.shape[0]}", counts

        with ThreadPoolExecutor(worker_count()) as pool:
            done = pool.map(stats, pairs)
            if progress:
                from tqdm.auto import tqdm

                done = tqdm(done, total=len(pairs), desc=f"check {split}", unit="img")
            results = list(done)
        total = sum(counts for _, counts in results)
        pixels = max(1, int(total.sum()))
        shares = {name: float(total[i]) / pixels for i, name in enumerate(layout.class_names)}
        shares["void"] = float(total[IGNORE_INDEX]) / pixels
        assert total[n_classes:IGNORE_INDEX].sum() == 0  # label_indices only yields classes or ignore
        report["splits"][split] = {
            "count": len(pairs),
            "sizes": dict(Counter(size for size, _ in results)),
            "class_shares": shares,
        }
    return report


def format_report(report: dict) -> str:
    """A plain-text summary with one class-share column per split."""
    splits = list(report["splits"])
    lines = [f"{report['root']}: {report['layout']} layout, {len(report['classes'])} classes"]
    for split, info in report["splits"].items():
        sizes = ", ".join(f"{size} ({n})" for size, n in info["sizes"].items())
        lines.append(f"  {split:<5} {info['count']:>5} images  sizes (WxH): {sizes}")
    width = max(len(name) for name in [*report["classes"], "void"]) + 2
    lines.append("")
    lines.append("class pixel shares".ljust(width + 2) + "".join(f"{s:>8}" for s in splits))
    for name in [*report["classes"], "void"]:
        row = "".join(f"{report['splits'][s]['class_shares'][name]:>8.3f}" for s in splits)
        lines.append(f"  {name:<{width}}{row}")
    return "\n".join(lines)
