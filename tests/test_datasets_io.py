"""Real-data loaders and downloads, on tiny files written in the real on-disk formats.

Downloads are served by a small HTTP server on 127.0.0.1 that the test starts (and that
stops itself after a minute at most); any other network connection fails the test.
"""
import hashlib
import http.client
import io
import pickle
import socket
import subprocess
import sys
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch

from course_utils import data
from course_utils import datasets_io as io_
from course_utils import download as dl

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def no_internet(monkeypatch):
    real = socket.create_connection

    def local_only(address, *args, **kwargs):
        assert address[0] in ("127.0.0.1", "localhost"), f"a test tried to reach {address}"
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", local_only)


# --- CIFAR-10 ------------------------------------------------------------------------------

def write_cifar(root: Path, n_per_batch=3):
    """The python-pickle format: 5 train batches + test_batch + batches.meta, bytes keys."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        x = rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8)
        x[0, 0] = 7                      # red plane, row 0, col 0
        x[0, 1024 + 1 * 32 + 1] = 99     # green plane, row 1, col 1
        x[1, 2048 + 2 * 32 + 5] = 201    # blue plane, row 2, col 5 (second image)
        labels = [(i * 7) % 10 for i in range(n_per_batch)]
        batch = {b"data": x, b"labels": labels, b"batch_label": name.encode()}
        (folder / name).write_bytes(pickle.dumps(batch))
    meta = {b"label_names": [c.encode() for c in io_.CIFAR10_CLASSES]}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))
    return folder


def test_cifar10_real_format(tmp_path):
    write_cifar(tmp_path)
    train = io_.load_cifar10(tmp_path, train=True)
    test = data.load_images("cifar10", "test", root=tmp_path)
    assert len(train) == 15 and len(test) == 3 and train.images.shape == (15, 3, 32, 32)
    assert train.images.dtype == torch.uint8 and train.labels.dtype == torch.int64
    assert train.labels.tolist()[:3] == [0, 7, 4]
    x = train.images  # (N, C, H, W)
    assert x[0, 0, 0, 0] == 7 and x[0, 1, 1, 1] == 99 and x[1, 2, 2, 5] == 201
    assert train.classes[0] == "airplane" and train.name == "cifar10"
    assert "cifar10" in repr(train) and "15 images" in repr(train)


def test_cifar10_corrupt_or_partial(tmp_path):
    folder = write_cifar(tmp_path)
    bad = {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}
    (folder / "test_batch").write_bytes(pickle.dumps(bad))
    with pytest.raises(ValueError, match="corrupt"):
        io_.load_cifar10(tmp_path, train=False)
    (folder / "data_batch_3").unlink()
    with pytest.raises(io_.DatasetNotFound, match="data_batch_3"):
        io_.load_cifar10(tmp_path, train=True)


@pytest.mark.parametrize("content, problem", [
    (b"", "EOFError"), (b"not a pickle at all", "UnpicklingError"), (pickle.dumps([1, 2]), "holds a list"),
    (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 12]}), "labels outside 0..9"),
])
def test_a_damaged_cifar_file_names_the_file_and_the_fix(tmp_path, content, problem):
    folder = write_cifar(tmp_path)
    (folder / "test_batch").write_bytes(content)
    with pytest.raises(ValueError, match=problem) as err:
        io_.load_cifar10(tmp_path, train=False)
    assert "test_batch" in str(err.value) and "course_utils.download cifar10" in str(err.value)


@pytest.mark.parametrize("content", [b"", b"random bytes, not a pickle"])
def test_a_damaged_batches_meta_is_named(tmp_path, content):
    folder = write_cifar(tmp_path)
    (folder / "batches.meta").write_bytes(content)
    with pytest.raises(ValueError, match="batches.meta") as err:
        io_.load_cifar10(tmp_path, train=False)
    assert "course_utils.download cifar10" in str(err.value)


# --- STL-10 --------------------------------------------------------------------------------

def write_stl(root: Path, split="train", n=2, corrupt=False, labels=(1, 10)):
    folder = root / "stl10_binary"
    folder.mkdir(parents=True, exist_ok=True)
    img = np.zeros((n, 3, 96, 96), dtype=np.uint8)
    img[0, 2, 5, 40] = 200  # blue, row 5, column 40
    raw = img.transpose(0, 1, 3, 2).tobytes()  # STL-10 stores each plane column by column
    (folder / f"{split}_X.bin").write_bytes(raw[:-1] if corrupt else raw)
    (folder / f"{split}_y.bin").write_bytes(bytes(labels[:n]))
    (folder / "class_names.txt").write_text("".join(f"c{i}\n" for i in range(10)))


def test_stl10_column_major_and_labels(tmp_path):
    write_stl(tmp_path)
    d = io_.load_stl10(tmp_path, "train")
    assert d.images.shape == (2, 3, 96, 96) and d.images.dtype == torch.uint8
    assert d.images[0, 2, 5, 40] == 200 and d.images.sum() == 200  # not at [0, 2, 40, 5]
    assert d.labels.tolist() == [0, 9] and d.classes == [f"c{i}" for i in range(10)]
    one_by_one = io_._read_stl_images(tmp_path / "stl10_binary" / "train_X.bin", chunk=1)
    assert torch.equal(one_by_one, d.images)


def test_stl10_unlabeled_bad_split_corrupt_and_bad_labels(tmp_path):
    write_stl(tmp_path, "unlabeled")
    assert io_.load_stl10(tmp_path, "unlabeled").labels.tolist() == [-1, -1]
    with pytest.raises(ValueError, match="split must be one of.*unlabeled"):
        io_.load_stl10(tmp_path, "val")
    write_stl(tmp_path, "test", corrupt=True)
    with pytest.raises(ValueError, match="corrupt.*course_utils.download stl10"):
        io_.load_stl10(tmp_path, "test")
    write_stl(tmp_path, "train", labels=(0, 11))
    with pytest.raises(ValueError, match="1..10"):
        io_.load_stl10(tmp_path, "train")


# --- missing data, ImageData ---------------------------------------------------------------

def test_missing_offline_names_the_command_and_the_alternative(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA", str(tmp_path))
    assert io_.data_root() == tmp_path
    for loader, name in ((io_.load_cifar10, "cifar10"), (io_.load_stl10, "stl10")):
        with pytest.raises(io_.DatasetNotFound) as err:
            loader()
        msg = str(err.value)
        assert f"python -m course_utils.download {name}" in msg and 'load_images("shapes")' in msg
        assert str(tmp_path) in msg and "COURSE_DATA" in msg
        assert isinstance(err.value, FileNotFoundError)
        again = pickle.loads(pickle.dumps(err.value))  # e.g. raised in a worker process
        assert str(again) == msg and again.path == err.value.path
    with pytest.raises(io_.DatasetNotFound, match="shapes"):
        data.load_images("stl10", "test")


def test_image_data_validates_and_subsets():
    x = torch.zeros(4, 3, 4, 4, dtype=torch.uint8)
    with pytest.raises(ValueError, match="images must be a uint8"):
        io_.ImageData(x.float(), torch.zeros(4, dtype=torch.long), ["a"])
    with pytest.raises(ValueError, match="images"):
        io_.ImageData(x[0], torch.zeros(3, dtype=torch.long), ["a"])
    with pytest.raises(ValueError, match="labels must be an int64 tensor of shape"):
        io_.ImageData(x, torch.zeros(3, dtype=torch.long), ["a"])
    with pytest.raises(ValueError, match="labels must be an int64"):
        io_.ImageData(x, torch.zeros(4, dtype=torch.int32), ["a"])
    with pytest.raises(ValueError, match=r"labels must lie in \[-1, 2\)"):
        io_.ImageData(x, torch.tensor([0, 1, 2, -1]), ["a", "b"])
    x[3] = 255
    d = io_.ImageData(x, torch.tensor([0, 1, 2, -1]), ("a", "b", "c"), "toy")
    assert d.classes == ["a", "b", "c"] and len(d.subset(2)) == 2
    assert d.subset([3, 0]).labels.tolist() == [-1, 0] and d.subset(d.labels >= 1).labels.tolist() == [1, 2]
    with pytest.raises(ValueError, match="n_or_indices"):
        d.subset(5)
    assert len(d.subset(np.int64(3))) == 3 and len(d.subset([])) == 0
    f = d.float()
    assert f.dtype == torch.float32 and f.min() == 0 and f.max() == 1
    assert repr(d) == "ImageData('toy': 4 images of shape (3, 4, 4), 3 classes, on cpu)"
    moved = d.to("cpu")
    assert moved is not d and torch.equal(moved.images, d.images) and moved.classes == d.classes


# --- downloads against a local server ------------------------------------------------------

class Handler(BaseHTTPRequestHandler):
    """Serves ``files`` (name -> bytes); honours 'Range: bytes=N-' unless told not to, and can
    cut the connection after ``truncate`` body bytes. Every request's Range header is logged."""
    files: ClassVar[dict] = {}
    ranges: ClassVar[list] = []
    honour_range = True
    truncate = None

    def log_message(self, *args):
        pass

    def do_GET(self):
        cls = type(self)
        body = cls.files.get(self.path.lstrip("/"))
        if body is None:
            self.send_error(404)
            return
        rng = self.headers.get("Range")
        cls.ranges.append(rng)
        start = int(rng.split("=")[1].rstrip("-")) if rng and cls.honour_range else 0
        if start >= len(body) and rng and cls.honour_range:
            self.send_error(416)
            return
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        self.wfile.write(body[start:][:cls.truncate] if cls.truncate else body[start:])


@pytest.fixture
def server():
    Handler.files, Handler.ranges, Handler.honour_range, Handler.truncate = {}, [], True, None
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    stop = threading.Timer(60, httpd.shutdown)  # bounded even if a test hangs
    stop.daemon = True
    stop.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    stop.cancel()
    httpd.shutdown()
    httpd.server_close()


BODY = bytes(np.random.default_rng(1).integers(0, 256, 50_000, dtype=np.uint8))
MD5, SHA256 = hashlib.md5(BODY).hexdigest(), hashlib.sha256(BODY).hexdigest()


def test_download_verifies_and_skips_a_verified_file(server, tmp_path):
    Handler.files["f.bin"] = BODY
    out = dl.download_file(f"{server}/f.bin", tmp_path / "out" / "f.bin", md5=MD5, progress=False)
    assert out.read_bytes() == BODY and not (tmp_path / "out" / "f.bin.part").exists()
    dl.download_file(f"{server}/f.bin", out, md5=MD5, progress=False)
    assert Handler.ranges == [None]  # the second call made no request


def test_download_resumes_a_partial_file(server, tmp_path):
    Handler.files["f.bin"] = BODY
    (tmp_path / "f.bin.part").write_bytes(BODY[:20_000])  # as left by an interruption
    dl.download_file(f"{server}/f.bin", tmp_path / "f.bin", sha256=SHA256, progress=False)
    assert (tmp_path / "f.bin").read_bytes() == BODY and Handler.ranges == ["bytes=20000-"]


def test_download_restarts_when_the_server_ignores_range(server, tmp_path):
    Handler.files["f.bin"], Handler.honour_range = BODY, False
    (tmp_path / "f.bin.part").write_bytes(b"x" * 20_000)  # would be wrong if appended to
    dl.download_file(f"{server}/f.bin", tmp_path / "f.bin", md5=MD5, progress=False)
    assert (tmp_path / "f.bin").read_bytes() == BODY and Handler.ranges == ["bytes=20000-"]


def test_dropped_connection_keeps_the_part_and_a_rerun_resumes(server, tmp_path):
    Handler.files["f.bin"], Handler.truncate = BODY, 30_000
    with pytest.raises(ConnectionError, match="stopped after 30,000 of 50,000 bytes.*resume"):
        dl.download_file(f"{server}/f.bin", tmp_path / "f.bin", md5=MD5, progress=False, chunk_size=4096)
    assert (tmp_path / "f.bin.part").read_bytes() == BODY[:30_000] and not (tmp_path / "f.bin").exists()
    Handler.truncate = None
    dl.download_file(f"{server}/f.bin", tmp_path / "f.bin", md5=MD5, progress=False)
    assert (tmp_path / "f.bin").read_bytes() == BODY and Handler.ranges[-1] == "bytes=30000-"


def test_ctrl_c_keeps_the_part(server, tmp_path, monkeypatch):
    Handler.files["f.bin"] = BODY

    class Interrupting:  # a progress bar whose second update is a Ctrl-C
        calls = 0

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, n):
            Interrupting.calls += 1
            if Interrupting.calls == 2:
                raise KeyboardInterrupt

    monkeypatch.setattr(dl, "_progress_bar", lambda *a: Interrupting())
    with pytest.raises(KeyboardInterrupt):
        dl.download_file(f"{server}/f.bin", tmp_path / "f.bin", md5=MD5, chunk_size=10_000)
    assert (tmp_path / "f.bin.part").read_bytes() == BODY[:20_000]
    monkeypatch.undo()
    dl.download_file(f"{server}/f.bin", tmp_path / "f.bin", md5=MD5, progress=False)
    assert (tmp_path / "f.bin").read_bytes() == BODY and Handler.ranges[-1] == "bytes=20000-"


def test_a_complete_part_is_finished_without_new_bytes(server, tmp_path):
    Handler.files["f.bin"] = BODY
    (tmp_path / "f.bin.part").write_bytes(BODY)  # interrupted just before the rename
    dl.download_file(f"{server}/f.bin", tmp_path / "f.bin", md5=MD5, progress=False)
    assert (tmp_path / "f.bin").read_bytes() == BODY  # the server answered 416


def test_wrong_checksum_is_reported_and_removed(server, tmp_path):
    Handler.files["f.bin"] = BODY
    with pytest.raises(io_.ChecksumError) as err:
        dl.download_file(f"{server}/f.bin", tmp_path / "f.bin", md5="0" * 32, progress=False)
    msg = str(err.value)
    assert "f.bin.part" in msg and "0" * 32 in msg and MD5 in msg and "removed" in msg and "again" in msg
    assert not (tmp_path / "f.bin").exists() and not (tmp_path / "f.bin.part").exists()


def test_unreachable_server_is_a_clear_error(tmp_path):
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConnectionError, match="could not reach.*COURSE_DATA"):
        dl.download_file(f"http://127.0.0.1:{port}/f.bin", tmp_path / "f.bin", progress=False, timeout=5)


def test_verify_checksum(tmp_path):
    (tmp_path / "f").write_bytes(BODY)
    assert dl.verify_checksum(tmp_path / "f", md5=MD5, sha256=SHA256) == tmp_path / "f"
    with pytest.raises(io_.ChecksumError, match=f"sha256 {SHA256}, expected {'1' * 64}"):
        dl.verify_checksum(tmp_path / "f", md5=MD5, sha256="1" * 64)
    with pytest.raises(ValueError, match="md5 or sha256"):
        dl.verify_checksum(tmp_path / "f")


# --- archives and fetch --------------------------------------------------------------------

def make_tar(path: Path, members: dict, links=()):
    with tarfile.open(path, "w:gz") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
        for name, target in links:
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)


def test_extract_archive_and_its_path_traversal_guard(tmp_path):
    make_tar(tmp_path / "ok.tar.gz", {"d/a.txt": b"a"})
    assert (dl.extract_archive(tmp_path / "ok.tar.gz", tmp_path / "ok") / "d" / "a.txt").read_bytes() == b"a"
    cases = [({"../evil.txt": b"x"}, ()), ({"/tmp/evil.txt": b"x"}, ()),
             ({"d/../../evil.txt": b"x"}, ()), ({}, [("d/link", "../../../etc/passwd")]),
             ({"d/link/evil.txt": b"x"}, [("d/link", ".")])]  # a harmless link, then a file through it
    for i, (members, links) in enumerate(cases):
        make_tar(tmp_path / f"evil{i}.tar.gz", members, links)
        with pytest.raises(ValueError, match="outside"):
            dl.extract_archive(tmp_path / f"evil{i}.tar.gz", tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "out").exists()


def serve_cifar(tmp_path, server, monkeypatch):
    write_cifar(tmp_path / "src")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    Handler.files["cifar-10-python.tar.gz"] = buf.getvalue()
    spec = {**io_.REMOTE["cifar10"], "url": f"{server}/cifar-10-python.tar.gz",
            "md5": hashlib.md5(buf.getvalue()).hexdigest()}
    monkeypatch.setitem(io_.REMOTE, "cifar10", spec)


def test_fetch_cifar10_end_to_end(server, tmp_path, monkeypatch, capsys):
    """The real path: download the archive, verify, extract, remove the archive, load."""
    serve_cifar(tmp_path, server, monkeypatch)
    d = io_.load_cifar10(tmp_path / "data", train=False, download=True)
    assert len(d) == 3 and d.images[1, 2, 2, 5] == 201
    assert dl.missing_files("cifar10", tmp_path / "data") == []
    # the archive and the scratch folder are gone
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["cifar-10-batches-py"]
    assert "ready in" in capsys.readouterr().out
    dl.fetch("cifar10", tmp_path / "data")
    assert "already in" in capsys.readouterr().out and len(Handler.ranges) == 1


def test_fetch_unknown_name():
    with pytest.raises(ValueError, match="unknown data set.*shakespeare"):
        dl.fetch("imagenet")


# --- the download script -------------------------------------------------------------------

def load_script():
    """The download command (``python -m course_utils.download``; data_scripts/download.py runs it)."""
    from course_utils import download
    return download


def test_download_script_help():
    out = subprocess.run([sys.executable, str(ROOT / "data_scripts" / "download.py"), "--help"],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    assert all(name in out for name in ("cifar10", "stl10", "shakespeare", "all", "--root"))


def test_download_script_fetches_shakespeare_from_a_mirror(server, tmp_path, monkeypatch, capsys):
    text = b"First Citizen:\nBefore we proceed any further, hear me speak.\n"
    Handler.files["input.txt"] = text
    monkeypatch.setitem(io_.REMOTE, "shakespeare", {**io_.REMOTE["shakespeare"], "size": len(text),
                                                    "sha256": hashlib.sha256(text).hexdigest()})
    script = load_script()
    assert script.main(["shakespeare", "--root", str(tmp_path), "--url", f"{server}/input.txt"]) == 0
    assert (tmp_path / "tinyshakespeare" / "input.txt").read_bytes() == text
    assert "saved to" in capsys.readouterr().out
    assert script.main(["shakespeare", "--root", str(tmp_path)]) == 0  # present and verified: no request
    assert "already in" in capsys.readouterr().out and len(Handler.ranges) == 1
    monkeypatch.setitem(io_.REMOTE, "shakespeare", {**io_.REMOTE["shakespeare"], "sha256": "0" * 64})
    assert script.main(["shakespeare", "--root", str(tmp_path), "--url", f"{server}/input.txt"]) == 1
    assert "FAILED" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        script.main(["all", "--url", f"{server}/input.txt"])



def test_download_script_ctrl_c_says_how_to_resume(monkeypatch, capsys):
    script = load_script()
    monkeypatch.setattr(script, "fetch", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    assert script.main(["cifar10"]) == 130 and "resume" in capsys.readouterr().err


@pytest.mark.parametrize("fault", [http.client.IncompleteRead(b"abc", 100), ConnectionResetError(104, "reset by peer"),
                                   TimeoutError("timed out")])
def test_a_fault_mid_download_keeps_the_part_and_says_run_again(tmp_path, monkeypatch, fault):
    class Response:
        status, length, headers = 200, 30, {}

        def __init__(self):
            self.blocks = [b"x" * 10]

        def read(self, n):
            if self.blocks:
                return self.blocks.pop()
            raise fault

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False
    monkeypatch.setattr(dl.urllib.request, "urlopen", lambda request, timeout: Response())
    with pytest.raises(ConnectionError, match="broke off after 10 bytes.*run the same command again to resume"):
        dl.download_file("http://example.invalid/f.bin", tmp_path / "f.bin", size=30, progress=False)
    assert (tmp_path / "f.bin.part").read_bytes() == b"x" * 10 and not (tmp_path / "f.bin").exists()


def test_the_download_command_runs_as_a_module():
    out = subprocess.run([sys.executable, "-m", "course_utils.download", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "cifar10" in out.stdout and "checksums" in out.stdout
