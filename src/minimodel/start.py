"""The first thing a script does: Ctrl-C or SIGTERM while it is still starting (importing NumPy,
matplotlib: a second or so) ends it in one line, as `files.run_cli` ends it later, never with a
traceback. It imports only modules built into the interpreter (`_signal`, the C half of
`signal`, which would take 17 ms to import enum), so it is in place within about a millisecond
of the script's first line. (Before that line, in Python's own start-up, nothing of ours runs.)
"""

import _signal as signal
import os
import sys

INTERRUPTED = "interrupted: files from before this run are as they were"
# set by a grid (sweep.py, lessons.py) for its trainings: the grid says "interrupted" once
IN_GRID = "MINIMODEL_IN_GRID"


def interrupted(message=INTERRUPTED):
    """Say that the script was interrupted, unless its grid will."""
    if not os.environ.get(IN_GRID):
        print(message, file=sys.stderr, flush=True)


def starting(_signum, _frame):
    """The handler while a script starts: nothing has been written yet, so end at once."""
    interrupted()
    os._exit(130)


def quiet_start(name):
    """Called by a script with its __name__: when it runs as a program, Ctrl-C and SIGTERM end it
    in one line until run_cli takes over. (Imported as a module, by a test or another script,
    it changes nothing; nor where SIGINT was ignored, as for a job started in the background.)"""
    if name != "__main__":
        return
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, starting)
    signal.signal(signal.SIGTERM, starting)
