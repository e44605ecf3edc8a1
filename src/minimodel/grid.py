"""Many trainings, each a few commands of the lab's scripts: run side by side on this machine
(`--jobs`), or printed as plain commands for any scheduler (`--plan`). sweep.py and lessons.py
hand their grids to it.

A training's weights depend on its seed and the data-parallel shard count, never on the cores it
runs on, so N trainings at once give what they give one after the other. Each child is told its
share of the cores (MINIMODEL_CORES, read by parallel.cpu_count): its shard threads, one BLAS
thread each, then never outnumber them.
"""

import os
import shlex
import subprocess
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from minimodel.files import LabError, from_here, printable
from minimodel.parallel import cpu_count
from minimodel.start import IN_GRID

CORES_PER_TRAINING = 2  # the data-parallel step's two shards


def default_jobs():
    """As many trainings at once as the cores allow at two cores a training, at least one."""
    return max(1, cpu_count() // CORES_PER_TRAINING)


@dataclass
class Training:
    """One point of a grid: `steps`, each a script of the lab and its arguments, run in order
    from the lab's folder (train.py, then eval.py ...); `what` names it in progress lines."""

    what: str
    steps: list
    out: Path = None  # where its manifest lands

    def command(self, lab):
        """The steps as one line a shell runs from the lab's folder (`&&` between them: bash,
        zsh, cmd.exe and PowerShell 7 alike)."""
        def shown(arg):  # a path as typed from the lab's folder
            return os.path.relpath(arg, lab) if isinstance(arg, Path) else str(arg)

        return " && ".join("uv run python " + shlex.join(shown(a) for a in step)
                           for step in self.steps)


def plan(trainings, lab, before=()):
    """Print what is still to do as plain commands, one a line: `before` (data to generate,
    once), then one line a training."""
    print(f"# {len(trainings)} trainings to do; run each line from {from_here(lab)}/ (in any "
          f"order, on any machine sharing this folder), then the summary")
    for step in before:
        print(Training("", [step]).command(lab))
    for training in trainings:
        print(training.command(lab))


def child_env(cores=None):
    """The environment of a grid's child: told that its grid, not it, says "interrupted" (one
    line for a whole sweep), and given its share of the cores, if any."""
    return {**os.environ, IN_GRID: "1"} | ({"MINIMODEL_CORES": str(cores)} if cores else {})


def run_all(trainings, lab, jobs=1, on_done=None, logs=None):
    """Run the trainings, `jobs` at once, each limited to its share of the cores. One line a
    finished training, with an ETA over the whole grid; on_done(training) after each, in this
    thread. With jobs > 1 each training's output goes to a log file under `logs`. A failed
    step, or Ctrl-C, stops every child (a training cut short commits nothing: train.py and
    eval.py write at one point) and raises; Ctrl-C as a KeyboardInterrupt that says so."""
    if not trainings:
        return
    env = child_env(max(1, cpu_count() // jobs))
    live, stopping, lock = set(), threading.Event(), threading.Lock()

    def run(n, training):
        log = None if jobs == 1 else Path(logs) / f"{n:03d}.log"
        for step in training.steps:
            if stopping.is_set():
                return
            with open(log, "a") if log else nullcontext() as out:  # (None: this terminal)
                child = subprocess.Popen([sys.executable, *map(str, step)], cwd=lab, env=env,
                                         stdout=out, stderr=out and subprocess.STDOUT)
                with lock:
                    live.add(child)
                    if stopping.is_set():  # Ctrl-C came as it started
                        child.terminate()
                code = child.wait()
                with lock:
                    live.discard(child)
            if code and not stopping.is_set():
                where = f"; its output: {from_here(log)}" if log else ""
                raise LabError(f"`{printable(shlex.join(map(str, step)))}` failed (exit "
                               f"{code}){where}")

    if logs:
        Path(logs).mkdir(parents=True, exist_ok=True)
    t0, finished = time.time(), 0
    pool = ThreadPoolExecutor(jobs)
    try:
        pending = {pool.submit(run, n, t): t for n, t in enumerate(trainings)}
        if jobs == 1:
            print(f"[1/{len(trainings)}] {trainings[0].what}", flush=True)
        while pending:
            done, _ = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
            for future in done:
                training = pending.pop(future)
                future.result()  # a failed step raises here
                finished += 1
                if on_done:
                    on_done(training)
                left = (time.time() - t0) / finished * (len(trainings) - finished)
                eta = f", ~{left / 60:.0f} min left" if finished < len(trainings) else ""
                print(f"[{finished}/{len(trainings)} done{eta}] {training.what}", flush=True)
                if jobs == 1 and finished < len(trainings):
                    print(f"[{finished + 1}/{len(trainings)}] "
                          f"{trainings[finished].what}", flush=True)
    except BaseException as e:
        stopping.set()
        with lock:
            for child in live:
                child.terminate()  # SIGTERM: the scripts treat it as Ctrl-C
        if isinstance(e, KeyboardInterrupt):
            raise KeyboardInterrupt(f"{finished} of {len(trainings)} trainings finished and "
                                    f"saved; one cut short saved all of its files or none; the "
                                    f"same command resumes") from None
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
