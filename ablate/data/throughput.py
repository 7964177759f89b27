"""Decode-once throughput: images/s of ``load_split`` without the cache (``ablate data bench``)."""

from __future__ import annotations

import time


def decode_throughput(root, *, split: str = "train", size=(256, 256), repeats: int = 3, layout: str | None = None,
                      ) -> dict:
    """Decode and resize ``split`` ``repeats`` times; the best rate is the one least disturbed by other load."""
    from ablate.data.dataset import load_split

    rates, n, name = [], 0, layout
    for _ in range(int(repeats)):
        start = time.perf_counter()
        data = load_split(root, split, size=size, cache=False, layout=layout)
        rates.append(len(data) / (time.perf_counter() - start))
        n = len(data)
    if name is None:
        from ablate.data.layouts import detect_layout

        name = detect_layout(root).name
    return {"layout": name, "images": n, "images_per_s": max(rates), "all": rates}
