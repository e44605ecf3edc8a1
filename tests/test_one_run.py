"""An interrupt is one line at any moment (issue 40): while a script still imports NumPy, and
for a whole sweep whose trainings Ctrl-C reached too."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from minimodel import grid

LAB = Path(__file__).parents[1]


# ---------------------------------------------------------------- one line per interrupt


# a Python that starts a script as the shell would, SIGINT at Python's own handler (a job
# started in the background inherits it ignored)
AS_A_PROGRAM = ("import runpy, signal, sys\n"
                "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
                "sys.argv = sys.argv[1:]\n"
                "runpy.run_path(sys.argv[0], run_name='__main__')\n")


@pytest.mark.parametrize("script", ["train.py", "eval.py", "generate_icons.py", "sweep.py"])
def test_ctrl_c_while_numpy_loads_is_one_line(tmp_path, script):
    """A NumPy that interrupts its own import stands for Ctrl-C pressed while it loads."""
    (tmp_path / "numpy").mkdir()
    (tmp_path / "numpy" / "__init__.py").write_text(
        "import signal\nsignal.raise_signal(signal.SIGINT)\nraise ImportError('went on')\n")
    env = {k: v for k, v in os.environ.items() if k != "MINIMODEL_IN_GRID"}
    done = subprocess.run([sys.executable, "-c", AS_A_PROGRAM, str(LAB / script)], cwd=tmp_path,
                          env={**env, "PYTHONPATH": str(tmp_path)}, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 130, done.stderr
    assert done.stderr == "interrupted: files from before this run are as they were\n"


@pytest.mark.skipif(not hasattr(os, "killpg"), reason="a terminal's Ctrl-C: a process group")
def test_an_interrupted_sweep_says_so_once(tmp_path):
    """Ctrl-C reaches a sweep and its training at once (the terminal's process group): one line,
    the sweep's, however many of its children it stopped."""
    child = tmp_path / "child.py"
    child.write_text("import os, signal, time\nfrom minimodel.start import quiet_start\n"
                     "quiet_start(__name__)\nfrom minimodel.files import run_cli\n"
                     "def main(argv):\n"
                     "    os.killpg(0, signal.SIGINT)  # Ctrl-C, to the whole group\n"
                     "    time.sleep(60)\n"
                     "run_cli(main)\n")
    parent = ("import signal, sys\nfrom pathlib import Path\n"
              "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
              "from minimodel.start import quiet_start\nquiet_start('__main__')\n"
              "from minimodel import grid\nfrom minimodel.files import run_cli\n"
              "run_cli(lambda argv: grid.run_all([grid.Training('x', [[sys.argv[1]]]), "
              "grid.Training('y', [[sys.argv[1]]])], Path(sys.argv[2])))\n")
    done = subprocess.run([sys.executable, "-c", parent, str(child), str(tmp_path)],
                          capture_output=True, text=True, timeout=60, start_new_session=True,
                          check=False)
    assert done.returncode == 130
    assert done.stderr == ("interrupted: 0 of 2 trainings finished and saved; one cut short "
                           "saved all of its files or none; the same command resumes\n")


def test_a_grids_children_leave_the_line_to_it():
    assert grid.child_env(3)["MINIMODEL_CORES"] == "3"
    assert grid.child_env()["MINIMODEL_IN_GRID"] == "1"
    assert grid.child_env().get("MINIMODEL_CORES") == os.environ.get("MINIMODEL_CORES")
