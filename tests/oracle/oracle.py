"""What every oracle script shares: a tally of checks that prints one line
per check ("ok" or "FAIL" and what was checked), and a quiet subprocess run."""
import os
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


IMAGE_EXT = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tga", ".ppm", ".pgm", ".JPG", ".PNG")


def held_out(folder, ncal):
    """The photos of folder that qcal holds out when it calibrates on ncal
    (datasets/image_dir.c: every other photo to calibrate until ncal, the
    rest held out; every photo here must decode)."""
    names = sorted(n for n in os.listdir(folder) if n.endswith(IMAGE_EXT))
    cal, held = [], []
    for k, n in enumerate(names):
        if len(cal) < ncal and (k % 2 == 0 or len(names) - k <= ncal - len(cal)):
            cal.append(n)
        else:
            held.append(n)
    return held
