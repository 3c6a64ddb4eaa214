"""The ``paddle_dx`` console command: every subcommand answers ``--help`` through the installed
console script and ``python -m paddle_dx``, tools/*.py share its parsers, the study configs ship
in the package and ``-c NAME`` finds them. (The wheel itself is built and installed on the other
supported Python versions by .ci/python_versions.sh: too slow for pytest.)"""

import os
import runpy
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest
from setuptools import find_packages

from paddle_dx.cli import MISSING_HINTS, config_parser, load_config_args, run
from paddle_dx.commands import COMMANDS, load
from paddle_dx.config.shipped import resolve_config
from paddle_dx.errors import ConfigError
from paddle_dx.studies.catalog import STUDIES

ROOT = Path(__file__).resolve().parents[1]
# tools/<file> -> the paddle_dx command it wraps
TOOLS = {
    "train.py": "train",
    "eval.py": "eval",
    "export_model.py": "export",
    "infer.py": "infer",
    "gradcam.py": "gradcam",
    "serve.py": "serve",
    "split_dataset.py": "split",
    "make_demo_data.py": "make-demo-data",
    "prepare_lidc.py": "prepare-lidc",
    "reproduce.py": "reproduce",
    "cross_validate.py": "cross-validate",
    "compare_runs.py": "compare-runs",
    "verify_run.py": "verify",
}
REPO_ONLY_TOOLS = {"config_reference.py", "results_table.py"}  # rewrite pages of the repository: no use once installed


def console_script():
    script = Path(sysconfig.get_path("scripts")) / "paddle_dx"
    if not script.is_file():
        pytest.fail(f"{script} is missing: install the package first (make install)")
    return script


def call(args, cwd):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def flat(text):
    return " ".join(text.split())


@pytest.mark.parametrize("launcher", ["console script", "python -m"])
def test_every_command_answers_help(launcher, tmp_path):
    prefix = [console_script()] if launcher == "console script" else [sys.executable, "-m", "paddle_dx"]
    top = call(prefix + ["--help"], tmp_path)
    assert top.returncode == 0, top.stderr
    for name in COMMANDS:
        assert f"  {name} " in top.stdout
        done = call(prefix + [name, "--help"], tmp_path)
        assert done.returncode == 0, f"{name}: {done.stderr}"
        assert done.stdout.startswith(f"usage: paddle_dx {name} ")
    wrong = call(prefix + ["trian"], tmp_path)
    assert wrong.returncode == 2 and "invalid choice: 'trian'" in wrong.stderr


def test_every_tool_wraps_its_command_with_the_same_parser(tmp_path):
    assert sorted(p.name for p in (ROOT / "tools").glob("*.py")) == sorted(set(TOOLS) | REPO_ONLY_TOOLS)
    for tool, name in TOOLS.items():
        namespace = runpy.run_path(str(ROOT / "tools" / tool), run_name="not_main")
        assert namespace["command"] is load(name), tool
        tool_help = call([sys.executable, ROOT / "tools" / tool, "--help"], tmp_path)
        command_help = call([sys.executable, "-m", "paddle_dx", name, "--help"], tmp_path)
        assert tool_help.returncode == 0 and command_help.returncode == 0, tool
        options = {o for a in load(name).build_parser()._actions for o in a.option_strings}
        assert options and all(o in tool_help.stdout for o in options), tool
        # identical help but for the program name (argparse wraps the usage line by its length)
        assert flat(tool_help.stdout).replace(f"usage: {tool} ", "usage: PROG ") == flat(command_help.stdout).replace(
            f"usage: paddle_dx {name} ", "usage: PROG "
        ), tool


def test_configs_lists_every_shipped_config_with_its_first_comment(tmp_path):
    done = call([console_script(), "configs"], tmp_path)
    assert done.returncode == 0, done.stderr
    listed = {line.split()[0]: line.split(None, 1)[1] for line in done.stdout.splitlines()}
    files = sorted((ROOT / "configs").glob("*.yaml"))
    assert sorted(listed) == [p.stem for p in files] and "esophagus_resnet50" in listed
    for path in files:
        assert listed[path.stem] == path.read_text(encoding="utf-8").splitlines()[0].lstrip("# ")
    shown = call([sys.executable, "-m", "paddle_dx", "configs", "demo"], tmp_path)
    assert shown.stdout == (ROOT / "configs" / "demo.yaml").read_text(encoding="utf-8")
    unknown = call([sys.executable, "-m", "paddle_dx", "configs", "demoo"], tmp_path)
    assert unknown.returncode == 2 and unknown.stderr.startswith(
        "error: no shipped config 'demoo' (did you mean 'demo'?)"
    )


def test_a_bare_name_is_the_shipped_config_and_a_real_file_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shipped = ROOT / "configs" / "esophagus_resnet50.yaml"
    assert Path(resolve_config("esophagus_resnet50")).resolve() == shipped
    args = config_parser("test").parse_args(["-c", "esophagus_resnet50", "-o", "Global.epochs=3"])
    config = load_config_args(args)
    assert config["Arch"]["name"] == "ResNet50" and config["Global"]["epochs"] == 3
    (tmp_path / "esophagus_resnet50").write_text("Global: {epochs: 1}\n")
    assert resolve_config("esophagus_resnet50") == "esophagus_resnet50"  # the file in the working folder
    assert resolve_config("configs/missing.yaml") == "configs/missing.yaml"  # left for the loader to report
    with pytest.raises(
        ConfigError,
        match="-c esophagus_resnet5: no such file and no shipped config of that "
        "name [(]did you mean 'esophagus_resnet50'[?][)]",
    ):
        resolve_config("esophagus_resnet5")


def test_every_study_run_uses_a_shipped_config():
    for name in STUDIES.names():
        study = STUDIES.get(name)
        for run_name, path in study.runs.items():
            assert study.config_path(run_name) == ROOT / "configs" / Path(path).name
            assert study.config_path(run_name).is_file()


def test_pyproject_lists_every_package_and_maps_the_configs():
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    on_disk = find_packages(str(ROOT), include=["paddle_dx", "paddle_dx.*"])
    assert sorted(tool["packages"]) == sorted(on_disk + ["paddle_dx.configs"])
    assert tool["package-dir"] == {"paddle_dx.configs": "configs"}
    assert tool["package-data"]["paddle_dx.configs"] == ["*.yaml"]


@pytest.mark.parametrize("module", sorted(MISSING_HINTS))
def test_a_missing_paddle_or_paddleclas_is_one_line_with_the_install_command(module, capsys):
    def main():
        raise ModuleNotFoundError(f"No module named '{module}'", name=module)

    with pytest.raises(SystemExit) as stop:
        run(main)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "pip install" in err
    with pytest.raises(ModuleNotFoundError):  # any other missing module stays a traceback (a bug)
        run(lambda: __import__("no_such_module_xyz"))
