"""The layout's rules, read from the source: no import circles in ablate/, ablate never imports analysis,
and the torch-free parts stay torch-free (every import counts, also those inside functions)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def module_imports() -> dict[str, set[str]]:
    """ablate module -> every module it imports (absolute names, relative imports resolved)."""
    files = {}
    for path in (ROOT / "ablate").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([node.module] if node.module else []))
                found |= {base} | {f"{base}.{a.name}" for a in node.names}
        graph[name] = found
    return graph


def test_no_import_circles_in_ablate():
    graph = module_imports()
    # edges inside ablate; a module importing its own parent package (the usual idiom) is not a circle
    edges = {m: {t for t in ts if t in graph and t != m and not m.startswith(t + ".")} for m, ts in graph.items()}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(m):
        state[m] = 1
        path.append(m)
        for t in edges[m]:
            if state.get(t) == 1:
                raise AssertionError("import circle: " + " -> ".join(path[path.index(t):] + [t]))
            if t not in state:
                visit(t)
        path.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m)


def test_ablate_never_imports_analysis():
    # ablate/cli is the composition root: its commands wire analysis in (analyze, plan, the --until-settled
    # gate) lazily; the library below it (spec, rundir, sweep, engine, models, data, bench) never does.
    offenders = {m for m, ts in module_imports().items()
                 if not (m == "ablate.cli" or m.startswith("ablate.cli."))
                 and any(t == "analysis" or t.startswith("analysis.") for t in ts)}
    assert not offenders, offenders


def test_torch_free_parts_stay_torch_free():
    graph = module_imports()
    for m in ("ablate.errors", "ablate.rundir", "ablate.study.claim", "ablate.study.definition", "ablate.cli", "ablate.bench"):
        assert not any(t == "torch" or t.startswith("torch.") for t in graph[m]), m
