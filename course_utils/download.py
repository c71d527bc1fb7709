"""Download the real data sets of the course ahead of time (checksums verified, resumable).

    python -m course_utils.download cifar10          # or stl10, shakespeare, all
    python -m course_utils.download all --root /shared/course_data

Files go to COURSE_DATA (default ~/.cache/ssl_course/data) or --root. A data set already
there is skipped; an interrupted download resumes where it stopped when run again. It
works wherever the package is installed (Colab included); ``python
data_scripts/download.py`` in a checkout runs the same.
"""
from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import shutil
import sys
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

from .datasets_io import DOWNLOAD_COMMAND, REMOTE, ChecksumError, data_root  # noqa: F401


# --- downloads -------------------------------------------------------------------------
def verify_checksum(path, md5: str | None = None, sha256: str | None = None) -> Path:
    """Return ``path`` if it has the given digest(s); raise ChecksumError naming both digests if not."""
    if not (md5 or sha256):
        raise ValueError("verify_checksum needs md5 or sha256")
    wanted = {algo: want for algo, want in (("md5", md5), ("sha256", sha256)) if want}
    hashes = {algo: hashlib.new(algo, usedforsecurity=False) for algo in wanted}  # integrity, not security
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            for h in hashes.values():
                h.update(block)
    for algo, want in wanted.items():
        if hashes[algo].hexdigest() != want.lower():
            raise ChecksumError(f"{path} has {algo} {hashes[algo].hexdigest()}, expected {want}: the file "
                                "is corrupt or incomplete. Delete it and run the download again.")
    return Path(path)


def _check(path: Path, md5=None, sha256=None, size=None) -> None:
    if size is not None and path.stat().st_size != size:
        raise ChecksumError(f"{path} has {path.stat().st_size:,} bytes, expected {size:,}: the file is "
                            "incomplete or not the expected one.")
    if md5 or sha256:
        verify_checksum(path, md5, sha256)


def _progress_bar(total, initial: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="B", unit_scale=True, disable=not enabled)


def download_file(url: str, dest, md5: str | None = None, sha256: str | None = None, size: int | None = None,
                  chunk_size: int = 1 << 20, progress: bool = True, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` and return ``dest``.

    Bytes go to ``dest.part`` first; an existing ``.part`` (an interrupted download, even by
    Ctrl-C) is resumed with an HTTP ``Range`` request. The checksum (or size) is checked before
    the file is renamed into place, so ``dest`` only ever exists complete. A ``dest`` that is
    already there and verifies is kept without a request. On a mismatch the ``.part`` is
    removed (so a rerun starts clean) and ChecksumError says so.
    """
    dest = Path(dest)
    if dest.exists():
        try:
            _check(dest, md5, sha256, size)
            return dest
        except ChecksumError:
            dest.unlink()  # a stale or damaged copy: fetch it again
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    _stream(url, part, chunk_size, progress, timeout)
    try:
        _check(part, md5, sha256, size)
    except ChecksumError as err:
        part.unlink(missing_ok=True)
        raise ChecksumError(f"{err}\nThe corrupt download {part} has been removed, so running the same "
                            f"command again downloads {url} from scratch. If it fails again, the file on "
                            "the server differs from the one this course expects.") from None
    os.replace(part, dest)  # atomic: dest appears whole or not at all
    return dest


def _stream(url: str, part: Path, chunk_size: int, progress: bool, timeout: float) -> None:
    """Append the rest of ``url`` to ``part`` (or start it over when the server ignores Range)."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "course_utils", **({"Range": f"bytes={have}-"} if have else {})}
    keep = f" The {have:,} bytes already in {part} are kept: run again to resume." if have else ""
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # nothing left to send: the .part is whole; the checksum decides
            return
        raise ConnectionError(f"{url} answered HTTP {err.code} ({err.reason}).{keep}") from None
    except (urllib.error.URLError, OSError) as err:
        raise ConnectionError(f"could not reach {url} ({getattr(err, 'reason', err)}). Offline? Fetch the "
                              "data on a machine with a network and copy the folder; set COURSE_DATA to "
                              f"it.{keep}") from None
    with response:
        start = have if response.status == 206 else 0  # 200: the server ignored Range, start over
        content_range = response.headers.get("Content-Range", "")
        if start and not content_range.startswith(f"bytes {have}-"):
            part.unlink()
            raise ConnectionError(f"{url} answered Range {content_range!r} for bytes={have}-; the partial "
                                  "download was removed: run again to start over.")
        total = start + response.length if response.length is not None else None
        got = start
        bar = _progress_bar(total, start, part.name, progress)
        with open(part, "ab" if start else "wb") as out, bar:
            try:
                while block := response.read(chunk_size):
                    out.write(block)
                    got += len(block)
                    bar.update(len(block))
            except (http.client.HTTPException, OSError) as err:   # a reset, a timeout, a cut-off body
                raise ConnectionError(f"the download of {url} broke off after {got:,} bytes "
                                      f"({type(err).__name__}: {err}). {part} is kept: run the same command "
                                      "again to resume.") from None
    if total is not None and got < total:  # the connection dropped early (urllib does not raise)
        raise ConnectionError(f"the download of {url} stopped after {got:,} of {total:,} bytes. "
                              f"{part} is kept: run the same command again to resume.")


def extract_archive(path, dest) -> Path:
    """Extract a .tar / .tar.gz into ``dest`` and return ``dest``.

    A downloaded archive is untrusted input: a member named ``../x`` or ``/etc/x`` would be
    written outside ``dest``, and a link would let a later member escape through it. The data
    sets of the course hold only folders and regular files, so anything else is refused
    before a single file is written.
    """
    dest = Path(dest)
    with tarfile.open(path) as tar:
        for m in tar.getmembers():
            name = m.name.replace("\\", "/")  # a Windows separator counts too
            if os.path.isabs(m.name) or name.startswith("/") or ".." in name.split("/"):
                raise ValueError(f"{path} contains {m.name!r}, which would be written outside {dest}; "
                                 "refusing to extract it")
            if not (m.isfile() or m.isdir()):
                raise ValueError(f"{path} contains {m.name!r}, a link or special file (which could point "
                                 f"outside {dest}); refusing to extract it")
        dest.mkdir(parents=True, exist_ok=True)
        # Python >= 3.12 (and 3.8.17+, 3.11.4+) also apply the 'data' filter as a second guard
        kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(dest, **kwargs)
    return dest


def missing_files(name: str, root=None) -> list[str]:
    """The files of data set ``name`` that are not (yet) under ``root`` (default data_root())."""
    spec = _spec(name)
    folder = Path(root or data_root()) / spec["folder"]
    return [f for f in spec["files"] if not (folder / f).exists()]


def _spec(name: str) -> dict:
    if name not in REMOTE:
        raise ValueError(f"unknown data set {name!r}; choose one of {sorted(REMOTE)}")
    return REMOTE[name]


def fetch(name: str, root=None, url: str | None = None, keep_archive: bool = False,
          progress: bool = True) -> Path:
    """Download, verify and unpack data set ``name`` into ``root`` (default data_root());
    return its folder. Does nothing when it is already there. ``url`` overrides the
    registry's address (a mirror); the checksum must still match."""
    spec, root = _spec(name), Path(root or data_root())
    folder, url = root / spec["folder"], url or spec["url"]
    say = print if progress else (lambda *a: None)
    if not spec.get("md5"):  # a single file: present means it verifies
        dest = folder / spec["files"][0]
        present = dest.exists() and _verifies(dest, spec)
        if not present:
            say(f"{name}: downloading {url}")
            download_file(url, dest, sha256=spec.get("sha256"), size=spec.get("size"), progress=progress)
        say(f"{name}: {'already in' if present else 'saved to'} {dest}")
        return folder
    if not missing_files(name, root):
        say(f"{name}: already in {folder} (all {len(spec['files'])} files present)")
        return folder
    archive = root / Path(url).name
    say(f"{name}: downloading {url}")
    download_file(url, archive, md5=spec["md5"], progress=progress)  # skips a complete, verified archive
    say(f"{name}: extracting {archive.name}")
    _unpack(archive, root, spec["folder"])
    if not keep_archive:
        archive.unlink()
    say(f"{name}: ready in {folder}")
    return folder


def _verifies(path: Path, spec: dict) -> bool:
    try:
        _check(path, spec.get("md5"), spec.get("sha256"), spec.get("size"))
        return True
    except ChecksumError:
        return False


def _unpack(archive: Path, root: Path, folder: str) -> None:
    """Extract to a scratch folder, then move ``folder`` into place in one rename, so an
    interrupted extraction never leaves a half-filled data folder that looks complete."""
    tmp = root / f".{folder}.extracting"
    shutil.rmtree(tmp, ignore_errors=True)
    extract_archive(archive, tmp)
    if not (tmp / folder).is_dir():
        shutil.rmtree(tmp, ignore_errors=True)
        raise ValueError(f"{archive} does not contain the folder {folder!r}")
    shutil.rmtree(root / folder, ignore_errors=True)  # a partial copy from earlier
    os.replace(tmp / folder, root / folder)
    shutil.rmtree(tmp, ignore_errors=True)


# --- the command -----------------------------------------------------------------------
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
