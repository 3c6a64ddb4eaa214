"""Every public function of ``paddle_dx`` declares its parameter and return types (read with ``ast``).

Public: a module-level function, or a method of a module-level class (also under ``if``), whose
name and class name do not start with ``_``. ``self`` / ``cls`` and ``*args`` / ``**kwargs`` need
no annotation. ruff checks the return types too (ANN201/ANN205/ANN206 in pyproject.toml); ruff's
ANN001 would also require hints on every private helper's parameters, so they are checked here.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "paddle_dx"

# hints pending (parallel work): these files are being changed elsewhere; remove each entry
# (and its per-file-ignore in pyproject.toml) once it is annotated
PENDING = ()


def public_functions(tree):
    """(function node, is a method) for each public function or method of a module."""

    def walk(body, in_class):
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
                yield node, in_class
            elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                yield from walk(node.body, True)
            elif isinstance(node, ast.If):  # `if TYPE_CHECKING:`, platform branches
                yield from walk(node.body, in_class)
                yield from walk(node.orelse, in_class)

    yield from walk(tree.body, False)


def missing_hints(node, is_method):
    """Names of the unannotated parameters of ``node``, plus "return" when it has no return type."""
    args = node.args
    params = args.posonlyargs + args.args + args.kwonlyargs
    static = any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in node.decorator_list)
    if is_method and params and not static:
        params = params[1:]  # self / cls
    missing = [p.arg for p in params if p.annotation is None]
    return missing + (["return"] if node.returns is None else [])


def offenders(root=PACKAGE, pending=PENDING):
    out = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(pending):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node, is_method in public_functions(tree):
            missing = missing_hints(node, is_method)
            if missing:
                out.append(f"paddle_dx/{rel}:{node.lineno}: {node.name}() lacks hints for {', '.join(missing)}")
    return out


def test_every_public_function_is_fully_annotated():
    found = offenders()
    assert not found, f"{len(found)} public function(s) without complete type hints:\n" + "\n".join(found)


def test_pending_entries_still_name_files():
    """A PENDING entry whose file is gone (renamed, moved) would exempt nothing: drop it."""
    for entry in PENDING:
        assert (PACKAGE / entry).exists(), f"PENDING names {entry}, which is not under paddle_dx/"


@pytest.fixture
def toy(tmp_path):
    root = tmp_path / "paddle_dx"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "mod.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "def good(a: int, *args, b: str = '', **kw) -> None: ...\n"
        "def no_return(a: int): ...\n"
        "def bare(a, b: int) -> int: ...\n"
        "def _private(a): ...\n"
        "class Public:\n"
        "    def method(self, x) -> None: ...\n"
        "    @staticmethod\n"
        "    def static(x: int): ...\n"
        "    def _helper(self, y): ...\n"
        "class _Private:\n"
        "    def method(self, x): ...\n"
        "def outer() -> None:\n"
        "    def inner(x): ...\n",
        encoding="utf-8",
    )
    (root / "skipped.py").write_text("def f(x): ...\n", encoding="utf-8")
    return root


def test_the_checker_finds_public_functions_without_hints(toy):
    assert offenders(toy, pending=("skipped.py",)) == [
        "paddle_dx/sub/mod.py:3: no_return() lacks hints for return",
        "paddle_dx/sub/mod.py:4: bare() lacks hints for a",
        "paddle_dx/sub/mod.py:7: method() lacks hints for x",
        "paddle_dx/sub/mod.py:9: static() lacks hints for return",
    ]
