"""Imports follow the package layout, read from the source with ``ast`` (nothing is imported).

Rank of each package (a module may import its own rank and lower ranks, never a higher one):

====  ==========================================  ==============================================
rank  packages                                    why there
====  ==========================================  ==============================================
0     ``paddle_dx`` (root: ``__version__``),      shared by everything, import nothing above
      ``errors``, ``utils``                       them
1     ``metrics``                                 pure functions of predictions (scikit-learn);
                                                  the config schema takes Metric choices from
                                                  its registry, so it sits below ``config``
2     ``config``                                  YAML + the schema; the choices backed by
                                                  data/models/engine registries are handed
                                                  down to it (``config/choices.py``, offered
                                                  by ``engine/components.py``)
3     ``data``                                    read, preprocess, split, sample images
4     ``models``                                  backbones, transfer head, weight files
5     ``accel``                                   compiled training steps that prove themselves
                                                  against dygraph; the engine hands them the
                                                  model, loss and optimizer, imports them lazily
6     ``engine``                                  training, evaluation, checkpoints
7     ``inference``                               export, predict, rebuild an exported model
8     ``explain``, ``studies``, ``prepare``       applications built on the layers below
9     ``ui``, ``cli``, ``commands``,              the outermost shells
      ``__main__``, ``api``
====  ==========================================  ==============================================

``SKIPS`` refuses edges that the ranks allow but the design does not: ``inference`` serves a
trained model without the training engine (weight files are ``models.weights``), ``explain``
rebuilds the network of an exported model through ``inference`` (which checks the export's
hashes), and the UI serves exported models only.

Any import counts, also one inside a function: a lazy import is still a dependency, and two
modules importing each other (even lazily) is a cycle.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "paddle_dx"
RANKS = {
    "paddle_dx": 0,
    "errors": 0,
    "utils": 0,
    "metrics": 1,
    "config": 2,
    "data": 3,
    "models": 4,
    "accel": 5,
    "engine": 6,
    "inference": 7,
    "explain": 8,
    "studies": 8,
    "prepare": 8,
    "ui": 9,
    "cli": 9,
    "commands": 9,
    "__main__": 9,
    "api": 9,
}
SKIPS = {
    "inference": {"engine", "accel"},
    "explain": {"models", "engine", "accel"},
    "ui": {"models", "engine", "accel"},
}


def module_name(path, root):
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root=PACKAGE):
    """{module: {imported module: first line}} over every ``.py`` file under ``root``.

    ``from pkg import name`` points at ``pkg.name`` when that is a module, else at ``pkg``."""
    files = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    top = root.name
    graph = {}
    for mod, path in files.items():
        edges = {}
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = mod.split(".")[: len(mod.split(".")) - node.level + (1 if is_pkg else 0)]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            for target in targets:
                while target not in files and "." in target:  # `import pkg.mod.attr` -> pkg.mod
                    target = target.rsplit(".", 1)[0]
                if target.split(".")[0] == top and target in files and target != mod:
                    edges.setdefault(target, node.lineno)
        graph[mod] = edges
    return graph, files


def layer(mod):
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def layer_violations(graph, files, ranks=RANKS, skips=SKIPS):
    out = []
    for mod, edges in graph.items():
        for target, line in edges.items():
            src, dst = layer(mod), layer(target)
            if src == dst:
                continue
            if ranks[dst] > ranks[src] or dst in skips.get(src, ()):
                out.append(
                    f"{files[mod]}:{line}: {src} (rank {ranks[src]}) imports {target} ({dst}, rank {ranks[dst]})"
                )
    return out


def cycles(graph):
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_every_package_has_a_rank():
    graph, _ = import_graph()
    assert sorted({layer(m) for m in graph} - set(RANKS)) == []


def test_no_lower_layer_imports_a_higher_one():
    graph, files = import_graph()
    violations = layer_violations(graph, files)
    assert not violations, "\n".join(violations)


def test_no_import_cycles():
    graph, _ = import_graph()
    found = cycles(graph)
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


@pytest.fixture
def toy(tmp_path):
    """A package with one upward import (data -> engine) and one lazy cycle (a <-> b)."""
    root = tmp_path / "paddle_dx"
    for rel, text in {
        "__init__.py": "",
        "data/__init__.py": "",
        "data/a.py": "from paddle_dx.data import b\n",
        "data/b.py": "def f():\n    from paddle_dx.data.a import x\n",
        "data/c.py": "from ..engine.run import go\n",
        "engine/__init__.py": "",
        "engine/run.py": "import paddle_dx.data.c\n",
        "explain/__init__.py": "",
        "explain/x.py": "from paddle_dx.engine import run\n",
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    return root


def test_the_checker_finds_upward_imports_and_cycles(toy):
    graph, files = import_graph(toy)
    assert graph["paddle_dx.data.c"] == {"paddle_dx.engine.run": 1}  # relative import resolved
    assert graph["paddle_dx.data.a"] == {"paddle_dx.data.b": 1}  # `from pkg import module`
    violations = layer_violations(graph, files)
    assert len(violations) == 2
    assert "data/c.py:1: data (rank 3) imports paddle_dx.engine.run (engine, rank 6)" in violations[0]
    assert "explain/x.py:1: explain" in violations[1]  # allowed by rank, refused by SKIPS
    assert cycles(graph) == [["paddle_dx.data.a", "paddle_dx.data.b"], ["paddle_dx.data.c", "paddle_dx.engine.run"]]


def test_no_module_changes_the_matplotlib_backend_or_uses_pyplot():
    """Figures are drawn on matplotlib.figure.Figure: a training inside Jupyter keeps its inline plots."""
    import ast

    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
                if any(n and "pyplot" in n for n in names):
                    offenders.append(f"{path.name}:{node.lineno} imports pyplot")
            if isinstance(node, ast.Attribute) and node.attr == "use" and getattr(node.value, "id", "") == "matplotlib":
                offenders.append(f"{path.name}:{node.lineno} calls matplotlib.use")
    assert offenders == []


PRIVATE_PADDLE = ("paddle.base.framework", "paddle.pir_utils", "paddle.base.core")


def test_private_paddle_apis_live_in_accel_and_accel_is_imported_lazily():
    """Only the acceleration layer touches Paddle internals, and the engine imports it inside the
    function that needs it, so a Paddle without those internals still trains in dygraph."""
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        in_accel = path.relative_to(PACKAGE).parts[0] == "accel"
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PRIVATE_PADDLE):
                assert in_accel, f"{path.relative_to(PACKAGE)}:{node.lineno} imports {node.module}"
            if isinstance(node, ast.Attribute) and node.attr in ("_insert_op", "_set_attr", "_rename_input"):
                assert in_accel, f"{path.relative_to(PACKAGE)}:{node.lineno} uses Program internals ({node.attr})"
        if not in_accel:
            for node in tree.body:  # module level: no eager import of the acceleration layer
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                module = node.module if isinstance(node, ast.ImportFrom) else None
                assert not any(n.startswith("paddle_dx.accel") for n in [*names, module or ""]), (
                    f"{path.relative_to(PACKAGE)}:{node.lineno} imports paddle_dx.accel at module level"
                )
