"""What every oracle script shares: a tally of checks that prints one line
per check ("ok" or "FAIL" and what was checked), and a quiet subprocess run."""
import subprocess
import sys


class Checks:
    """check(ok, what): print and count; check.finish(label) prints the tally
    and exits 1 when any check failed."""

    def __init__(self):
        self.fails = 0

    def __call__(self, ok, what):
        print(("ok   " if ok else "FAIL ") + what, flush=True)
        self.fails += not ok

    def finish(self, label=""):
        print(f"{label}{'all passed' if not self.fails else f'{self.fails} failed'}")
        sys.exit(1 if self.fails else 0)


def run(*args, **kw):
    """args as strings, output captured as text; kw passed on (env=...)."""
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, **kw)
