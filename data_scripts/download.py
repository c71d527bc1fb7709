"""Download the real data sets of the course ahead of time (checksums verified, resumable).

    python data_scripts/download.py cifar10          # or stl10, shakespeare, all
    python data_scripts/download.py all --root /shared/course_data

Files go to COURSE_DATA (default ~/.cache/ssl_course/data) or --root. An interrupted
download resumes where it stopped when run again.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from course_utils.datasets_io import REMOTE, data_root, fetch  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", choices=sorted(REMOTE) + ["all"])
    p.add_argument("--root", type=Path, default=None, help="folder for the data (default: COURSE_DATA)")
    args = p.parse_args(argv)
    names = sorted(REMOTE) if args.name == "all" else [args.name]
    for name in names:
        path = fetch(name, args.root)
        print(f"{name}: ready in {path}")
    if args.root is not None and args.root.resolve() != data_root().resolve():
        print(f"Set COURSE_DATA={args.root} so that the notebooks find it.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
