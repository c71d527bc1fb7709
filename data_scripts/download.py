"""Download the real data sets of the course: the same as ``python -m course_utils.download``.

    python data_scripts/download.py cifar10          # or stl10, shakespeare, all
    python data_scripts/download.py all --root /shared/course_data
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runs from a checkout without pip install

from course_utils.download import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
