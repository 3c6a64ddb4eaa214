"""The install files agree: requirements.txt lists pyproject.toml's runtime dependencies with the
same ranges, constraints.txt pins every one of them (and the optional extras) inside its range,
and setup.py is only a shim over pyproject.toml."""

import ast
import tomllib

from conftest import ROOT
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name


def requirement_lines(path):
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [Requirement(line) for line in lines if line]


def by_name(requirements):
    out = {}
    for req in requirements:
        name = canonicalize_name(req.name)
        assert name not in out, f"{name} listed twice"
        out[name] = req
    return out


PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
RUNTIME = by_name(Requirement(r) for r in [*PROJECT["dependencies"], *PROJECT["optional-dependencies"]["cpu"]])
EXTRAS = by_name(
    Requirement(r) for name, reqs in PROJECT["optional-dependencies"].items() if name != "cpu" for r in reqs
)


def test_requirements_txt_is_pyprojects_runtime_dependencies():
    listed = by_name(requirement_lines(ROOT / "requirements.txt"))
    assert sorted(listed) == sorted(RUNTIME)
    for name, req in RUNTIME.items():
        assert listed[name].specifier == req.specifier, f"requirements.txt {name}: {listed[name]} vs pyproject {req}"


def test_constraints_pin_every_dependency_inside_its_range():
    pins = by_name(requirement_lines(ROOT / "constraints.txt"))
    for name, req in {**RUNTIME, **EXTRAS}.items():
        assert name in pins, f"constraints.txt has no pin for {name}"
        (spec,) = pins[name].specifier
        assert spec.operator == "==", f"constraints.txt {name}: {spec} is not an exact pin"
        assert req.specifier.contains(spec.version, prereleases=True), f"{name}=={spec.version} outside {req}"


def test_setup_py_is_a_shim_over_pyproject():
    tree = ast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    assert [(c.func.id, c.args, c.keywords) for c in calls] == [("setup", [], [])]  # metadata lives in pyproject.toml
