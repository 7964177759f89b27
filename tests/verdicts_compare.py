"""`python tests/verdicts_compare.py BEFORE AFTER [added,keys]`: every number, bool, null and key of two verdicts.json
snapshot folders identical (keys listed as added are allowed); lists the text fields that differ. Not a test."""

import json
import re
import sys
from pathlib import Path

ALLOW = set(sys.argv[3].split(",")) if len(sys.argv) > 3 else set()
added: set = set()


def walk(a, b, path, texts, errors):
    if isinstance(a, dict) and isinstance(b, dict):
        extra = set(b) - set(a) - ALLOW
        if set(a) - set(b) or extra:
            errors.append(f"{path}: keys {sorted((set(a) - set(b)) | extra)}")
        added.update(set(b) - set(a))
        for k in set(a) & set(b):
            walk(a[k], b[k], f"{path}.{k}", texts, errors)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            errors.append(f"{path}: length {len(a)} vs {len(b)}")
        for i, (x, y) in enumerate(zip(a, b)):
            walk(x, y, f"{path}[{i}]", texts, errors)
    elif isinstance(a, str) and isinstance(b, str):
        if a != b:
            texts.append(path)
    elif a != b or type(a) is not type(b):
        errors.append(f"{path}: {a!r} vs {b!r}")


ok = True
for f in sorted(Path(sys.argv[1]).glob("*.json")):
    texts, errors = [], []
    walk(json.loads(f.read_text()), json.loads((Path(sys.argv[2]) / f.name).read_text()), "", texts, errors)
    kinds = sorted({re.sub(r"\[\d+\]", "[]", t) for t in texts})
    print(f"{f.name}: {'numbers/structure identical' if not errors else 'DIFFERENT: ' + '; '.join(errors[:5])}; "
          f"{len(texts)} text fields differ {kinds}; keys added: {sorted(added)}")
    ok &= not errors
sys.exit(0 if ok else 1)
