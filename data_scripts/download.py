"""Download the real data sets of the course ahead of time (checksums verified, resumable).

    python data_scripts/download.py cifar10          # or stl10, shakespeare, all
    python data_scripts/download.py all --root /shared/course_data

Files go to COURSE_DATA (default ~/.cache/ssl_course/data) or --root. A data set already
there is skipped; an interrupted download resumes where it stopped when run again.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runs from a checkout without pip install

from course_utils.datasets_io import REMOTE, ChecksumError, data_root, fetch

SIZES = {"cifar10": "163 MB", "stl10": "2.6 GB (5.8 GB free while unpacking)", "shakespeare": "1.1 MB"}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="+", choices=sorted(REMOTE) + ["all"], metavar="NAME",
                   help="; ".join(f"{n}: {s}" for n, s in SIZES.items()) + "; or all")
    p.add_argument("--root", type=Path, default=None, help=f"folder for the data (default: {data_root()})")
    p.add_argument("--url", default=None, help="fetch from this mirror instead (one data set; same checksum)")
    p.add_argument("--keep-archive", action="store_true", help="keep the .tar.gz after unpacking it")
    args = p.parse_args(argv)
    names = sorted(REMOTE) if "all" in args.names else list(dict.fromkeys(args.names))
    if args.url and len(names) > 1:
        p.error("--url names one file: give one data set with it")
    for name in names:
        try:
            fetch(name, args.root, url=args.url, keep_archive=args.keep_archive)
        except (ChecksumError, ConnectionError) as err:
            print(f"{name}: FAILED\n{err}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print(f"\n{name}: interrupted. The partial download is kept: run the same command again "
                  "to resume it.", file=sys.stderr)
            return 130
    root = (args.root or data_root()).resolve()
    if root != data_root().resolve():
        print(f"The notebooks look in {data_root()}: set COURSE_DATA={root} so that they find these files.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
