"""The layout's rules, read from the source: no import circles in ablate/ or analysis/, ablate never imports
analysis, the torch-free parts stay torch-free, and analysis/ is layered: each module imports only its own
layer and those below it, and nothing below the orchestrator calls back into ``analyze`` (every import
counts, also those inside functions).

``python tests/test_layout.py`` prints analysis/'s layers with line counts and the import graph between them.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# analysis/'s layers, bottom first: a module belongs to the layer of its longest matching prefix; every
# module must match one (a new module is placed here on purpose).
ANALYSIS_LAYERS = (
    ("reading the run directory", ("analysis.run_reader",)),
    ("estimators and tests", ("analysis.estimators", "analysis.sequential")),
    ("verdict rules", ("analysis.verdicts",)),
    ("sections and planning", ("analysis.sections", "analysis.planning", "analysis.sequential.gate")),
    # below the orchestrator: analyze(write=True) writes the report it renders, so the renderer never calls back
    ("rendering", ("analysis.report", "analysis.plots")),
    ("orchestrator", ("analysis.orchestrator", "analysis")),  # analysis/__init__ re-exports the orchestrator's names
    ("cli", ("analysis.cli",)),
)
ORCHESTRATOR = ANALYSIS_LAYERS.index(next(layer for layer in ANALYSIS_LAYERS if layer[0] == "orchestrator"))


def module_files(package: str = "ablate", root: Path = ROOT) -> dict[str, Path]:
    files = {}
    for path in (root / package).rglob("*.py"):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__main__":
            continue
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return files


def _run_time_nodes(tree: ast.AST):
    """Every node of ``tree`` but the bodies of ``if TYPE_CHECKING:`` (annotations only: never imported)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
        else:
            stack.extend(ast.iter_child_nodes(node))


def module_imports(package: str = "ablate", root: Path = ROOT) -> dict[str, set[str]]:
    """module of ``package`` -> every module it imports (absolute names, relative imports resolved).

    ``from a.b import c`` counts as ``a.b.c`` when that is a module of ``package``, else as ``a.b`` (the
    names of its ``__init__``); both are listed for modules outside ``package``.
    """
    files = module_files(package, root)
    graph = {}
    for name, path in files.items():
        pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in _run_time_nodes(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                    base = ".".join(up + ([node.module] if node.module else []))
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    if sub in files:
                        found.add(sub)
                    elif base in files:
                        found.add(base)
                    else:
                        found |= {base, sub}
        graph[name] = found
    return graph


def import_circle(edges: dict[str, set[str]]) -> list[str] | None:
    """The first import circle found in ``edges`` (module -> modules), or None."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(m):
        state[m] = 1
        path.append(m)
        for t in sorted(edges[m]):
            if state.get(t) == 1:
                return path[path.index(t):] + [t]
            if t not in state and (found := visit(t)):
                return found
        path.pop()
        state[m] = 2
        return None

    for m in sorted(edges):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_no_import_circles_in_ablate():
    graph = module_imports()
    # edges inside ablate; a module importing its own parent package (the usual idiom) is not a circle
    edges = {m: {t for t in ts if t in graph and t != m and not m.startswith(t + ".")} for m, ts in graph.items()}
    circle = import_circle(edges)
    assert circle is None, "import circle: " + " -> ".join(circle)


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


# --- analysis/ ---------------------------------------------------------------------------------------


def layer_of(module: str) -> int:
    best = max(((len(p), i) for i, (_, prefixes) in enumerate(ANALYSIS_LAYERS) for p in prefixes
                if module == p or module.startswith(p + ".")), default=None)
    if best is None:
        raise AssertionError(f"{module} is in no layer: place it in tests/test_layout.py's ANALYSIS_LAYERS")
    return best[1]


def analysis_edges(root: Path = ROOT) -> dict[str, set[str]]:
    """analysis module -> the analysis modules it imports. A package's own ``__init__`` counts only when its
    names are imported (``from analysis import analyze``): importing a submodule is not a call into it."""
    graph = module_imports("analysis", root)
    return {m: {t for t in ts if t in graph and t != m} for m, ts in graph.items()}


def layer_violations(edges: dict[str, set[str]]) -> list[str]:
    return [f"{m} ({ANALYSIS_LAYERS[layer_of(m)][0]}) imports {t} ({ANALYSIS_LAYERS[layer_of(t)][0]})"
            for m, ts in sorted(edges.items()) for t in sorted(ts) if layer_of(t) > layer_of(m)]


def orchestrator_callbacks(edges: dict[str, set[str]]) -> list[str]:
    """Modules below the orchestrator that import it (``analysis.orchestrator`` or the names ``analysis``
    re-exports, e.g. ``from analysis import analyze`` inside a function)."""
    return [f"{m} imports {t}" for m, ts in sorted(edges.items()) for t in sorted(ts)
            if layer_of(m) < ORCHESTRATOR and layer_of(t) == ORCHESTRATOR]


def test_no_import_circles_in_analysis():
    circle = import_circle(analysis_edges())
    assert circle is None, "import circle: " + " -> ".join(circle)


def test_every_analysis_module_has_a_layer():
    for module in analysis_edges():
        layer_of(module)


def test_analysis_layers_import_only_downwards():
    assert not layer_violations(analysis_edges())


def test_no_callback_into_the_orchestrator():
    assert not orchestrator_callbacks(analysis_edges())


def test_the_layer_checks_catch_a_callback(tmp_path):
    # the defect the checks exist for: a section that runs analyze from inside a function (budgets.py did)
    for rel, text in {"analysis/__init__.py": "from analysis.orchestrator import analyze\n",
                      "analysis/orchestrator.py": "def analyze():\n    from analysis.sections import budgets\n",
                      "analysis/sections/__init__.py": "",
                      "analysis/sections/budgets.py": "def section():\n    from analysis import analyze\n"}.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    edges = analysis_edges(tmp_path)
    assert orchestrator_callbacks(edges) == ["analysis.sections.budgets imports analysis"]
    assert layer_violations(edges) == ["analysis.sections.budgets (sections and planning) imports analysis (orchestrator)"]
    assert import_circle(edges) == ["analysis", "analysis.orchestrator", "analysis.sections.budgets", "analysis"]


def layer_report(root: Path = ROOT) -> str:
    """analysis/'s layers, bottom first, with each module's line count, and the imports between layers."""
    edges, files = analysis_edges(root), module_files("analysis", root)
    lines = []
    for i, (name, _) in enumerate(ANALYSIS_LAYERS):
        mods = sorted(m for m in files if layer_of(m) == i)
        total = sum(len(files[m].read_text().splitlines()) for m in mods)
        lines.append(f"{i}. {name} ({total} lines)")
        for m in mods:
            lines.append(f"     {len(files[m].read_text().splitlines()):5d}  {m}")
    lines.append("imports between layers (layer -> layers it imports):")
    for i, (name, _) in enumerate(ANALYSIS_LAYERS):
        below = sorted({layer_of(t) for m, ts in edges.items() if layer_of(m) == i for t in ts} - {i})
        lines.append(f"  {name} -> " + (", ".join(ANALYSIS_LAYERS[j][0] for j in below) or "-"))
    return "\n".join(lines)


if __name__ == "__main__":
    print(layer_report())
