"""What a command prints where: results on stdout, every diagnostic on stderr, and an output
path checked before any work."""

import subprocess
import sys

import pytest
from conftest import ROOT

from paddle_dx.errors import ConfigError


def test_log_lines_and_warnings_go_to_stderr_not_into_the_results():
    code = (
        "import logging, warnings\n"
        "from paddle_dx.cli import run\n"
        "def main():\n"
        "    logging.getLogger('paddle_dx.x').warning('a warning line')\n"
        "    logging.getLogger('paddle_dx.x').info('an info line')\n"
        "    warnings.warn('a python warning')\n"
        "    print('path,predicted_class')\n"
        "run(main)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "path,predicted_class\n"
    assert "a warning line" in done.stderr and "an info line" in done.stderr and "a python warning" in done.stderr


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_infer_checks_output_before_loading_the_model_or_any_image(tmp_path, kind):
    from paddle_dx.commands.infer import main

    output = tmp_path / "preds"
    if kind == "folder":
        output.mkdir()
    else:
        import os

        os.mkfifo(output)
    image = tmp_path / "x.png"  # never read: the check comes first
    with pytest.raises(ConfigError, match=r"--output .*preds (is a folder|exists and is not a regular file)"):
        main(["--model-dir", str(tmp_path / "no_model"), "--input", str(image), "--output", str(output)])


def test_infer_output_under_a_file_is_refused_at_once(tmp_path):
    from paddle_dx.commands.infer import main

    (tmp_path / "afile").write_text("x")
    with pytest.raises(ConfigError, match=r"--output .*cannot write in"):
        main(
            [
                "--model-dir",
                str(tmp_path),
                "--input",
                str(tmp_path / "x.png"),
                "--output",
                str(tmp_path / "afile/p.csv"),
            ]
        )
