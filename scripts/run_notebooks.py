"""Run notebooks' code cells in plain Python processes, without Jupyter (e.g. on a GPU
server that has PyTorch but no notebook server), printing the time of each slow cell.

    python scripts/run_notebooks.py 03 05            # notebooks/03_*.ipynb, then 05_*
    COURSE_PROFILE=gpu python scripts/run_notebooks.py all

Each notebook runs in a fresh process, as in a fresh kernel, with matplotlib drawing
off screen and the sliders in their static view. The exit status is the number of
notebooks that failed. (The course's tests run notebooks with nbval and nbclient.)
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"

RUNNER = r'''
import json, sys, time, traceback
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
ns = {"__name__": "__main__"}
for i, cell in enumerate(json.load(open(sys.argv[1]))["cells"]):
    if cell["cell_type"] != "code":
        continue
    start = time.perf_counter()
    try:
        exec(compile("".join(cell["source"]), f"{sys.argv[1]} cell {i}", "exec"), ns)
    except Exception:
        traceback.print_exc()
        sys.exit(f"FAILED in cell {i}")
    plt.close("all")
    if time.perf_counter() - start > 3:
        print(f"[cell {i}: {time.perf_counter() - start:.1f} s]", flush=True)
'''


def main(argv=None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or ["all"]
    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if names != ["all"]:
        paths = [p for p in paths if any(p.name.startswith(n) for n in names)]
    env = {**os.environ, "MPLBACKEND": "Agg", "COURSE_NO_WIDGETS": "1"}
    failed = 0
    for path in paths:
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", RUNNER, str(path)], cwd=NOTEBOOKS, env=env)
        failed += done.returncode != 0
        print(f"==== {path.name}: {'ok' if done.returncode == 0 else 'FAILED'} in "
              f"{time.perf_counter() - start:.0f} s", flush=True)
    return failed


if __name__ == "__main__":
    sys.exit(main())
