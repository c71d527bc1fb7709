"""Real-data loaders and downloads, on tiny files written in the real on-disk formats.
Downloads are served by a small HTTP server on 127.0.0.1 started by the test."""
import hashlib
import io
import pickle
import subprocess
import sys
import tarfile
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch

from course_utils import data
from course_utils import datasets_io as io_

ROOT = Path(__file__).resolve().parents[1]


def write_cifar(root: Path, n_per_batch=3):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        x = rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8)
        x[0, 0] = 7            # red plane, row 0, col 0
        x[0, 1024 + 33] = 99   # green plane, row 1, col 1
        batch = {b"data": x, b"labels": list(range(n_per_batch)), b"batch_label": name.encode()}
        (folder / name).write_bytes(pickle.dumps(batch))
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": [c.encode() for c in io_.CIFAR10_CLASSES]}))
    return folder


def test_cifar10_real_format(tmp_path):
    write_cifar(tmp_path)
    train = io_.load_cifar10(tmp_path, train=True)
    test = data.load_images("cifar10", "test", root=tmp_path)
    assert len(train) == 15 and len(test) == 3 and train.images.shape[1:] == (3, 32, 32)
    assert train.images.dtype == torch.uint8 and train.labels.tolist()[:3] == [0, 1, 2]
    assert train.images[0, 0, 0, 0] == 7 and train.images[0, 1, 1, 1] == 99
    assert train.classes[0] == "airplane"
    assert "cifar10" in repr(train) and "15 images" in repr(train)


def write_stl(root: Path, split="train", n=2, corrupt=False):
    folder = root / "stl10_binary"
    folder.mkdir(parents=True, exist_ok=True)
    img = np.zeros((n, 3, 96, 96), dtype=np.uint8)
    img[0, 2, 5, 40] = 200  # blue, row 5, column 40
    raw = img.transpose(0, 1, 3, 2).tobytes()  # STL-10 stores each plane column by column
    (folder / f"{split}_X.bin").write_bytes(raw[:-1] if corrupt else raw)
    (folder / f"{split}_y.bin").write_bytes(bytes([1, 10][:n]))
    (folder / "class_names.txt").write_text("\n".join(f"c{i}" for i in range(10)))


def test_stl10_column_major_and_labels(tmp_path):
    write_stl(tmp_path)
    d = io_.load_stl10(tmp_path, "train")
    assert d.images.shape == (2, 3, 96, 96) and d.images[0, 2, 5, 40] == 200 and d.images.sum() == 200
    assert d.labels.tolist() == [0, 9] and d.classes[0] == "c0"


def test_stl10_unlabeled_bad_split_and_corrupt(tmp_path):
    write_stl(tmp_path, "unlabeled")
    assert io_.load_stl10(tmp_path, "unlabeled").labels.tolist() == [-1, -1]
    with pytest.raises(ValueError, match="split must be one of"):
        io_.load_stl10(tmp_path, "val")
    write_stl(tmp_path, "test", corrupt=True)
    with pytest.raises(ValueError, match="corrupt"):
        io_.load_stl10(tmp_path, "test")


def test_missing_offline_names_the_command_and_the_alternative(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA", str(tmp_path))
    for loader, name in ((io_.load_cifar10, "cifar10"), (io_.load_stl10, "stl10")):
        with pytest.raises(io_.DatasetNotFound) as err:
            loader()
        assert f"python data_scripts/download.py {name}" in str(err.value) and "shapes" in str(err.value)
        assert str(tmp_path) in str(err.value)


def test_image_data_validates():
    with pytest.raises(ValueError, match="uint8"):
        io_.ImageData(torch.zeros(2, 3, 4, 4), torch.zeros(2, dtype=torch.long), [])
    with pytest.raises(ValueError, match="labels"):
        io_.ImageData(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), torch.zeros(3, dtype=torch.long), [])
    d = io_.ImageData(torch.zeros(4, 3, 4, 4, dtype=torch.uint8), torch.arange(4), ["a"])
    assert len(d.subset(2)) == 2 and d.subset([3, 0]).labels.tolist() == [3, 0]
    assert d.float().dtype == torch.float32


# --- downloads against a local server -------------------------------------------------

class RangeHandler(SimpleHTTPRequestHandler):
    """Serves files, honouring 'Range: bytes=N-' unless the server says to ignore it."""
    seen_ranges: list = []
    honour_range = True

    def log_message(self, *args):
        pass

    def do_GET(self):
        path = Path(self.translate_path(self.path))
        body = path.read_bytes()
        rng = self.headers.get("Range")
        type(self).seen_ranges.append(rng)
        if rng and type(self).honour_range:
            start = int(rng.split("=")[1].rstrip("-"))
            self.send_response(206)
            body = body[start:]
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    RangeHandler.seen_ranges, RangeHandler.honour_range = [], True
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(RangeHandler, directory=str(served)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def payload(n=50_000):
    return bytes(np.random.default_rng(1).integers(0, 256, n, dtype=np.uint8))


def test_download_verifies(server, tmp_path):
    served, url = server
    body = payload()
    (served / "f.bin").write_bytes(body)
    out = io_.download_file(f"{url}/f.bin", tmp_path / "out" / "f.bin", md5=hashlib.md5(body).hexdigest())
    assert out.read_bytes() == body and not (tmp_path / "out" / "f.bin.part").exists()


def test_download_resumes_a_partial_file(server, tmp_path):
    served, url = server
    body = payload()
    (served / "f.bin").write_bytes(body)
    dest = tmp_path / "f.bin"
    (tmp_path / "f.bin.part").write_bytes(body[:20_000])  # as left by an interruption
    io_.download_file(f"{url}/f.bin", dest, sha256=hashlib.sha256(body).hexdigest())
    assert dest.read_bytes() == body and RangeHandler.seen_ranges == ["bytes=20000-"]


def test_download_restarts_when_the_server_ignores_range(server, tmp_path):
    served, url = server
    body = payload()
    (served / "f.bin").write_bytes(body)
    RangeHandler.honour_range = False
    (tmp_path / "f.bin.part").write_bytes(body[:20_000])
    io_.download_file(f"{url}/f.bin", tmp_path / "f.bin", md5=hashlib.md5(body).hexdigest())
    assert (tmp_path / "f.bin").read_bytes() == body


def test_corrupted_download_is_reported_and_removed(server, tmp_path):
    served, url = server
    (served / "f.bin").write_bytes(payload())
    with pytest.raises(io_.ChecksumError, match="expected 0+.*run the download again"):
        io_.download_file(f"{url}/f.bin", tmp_path / "f.bin", md5="0" * 32)
    assert not (tmp_path / "f.bin").exists() and not (tmp_path / "f.bin.part").exists()


def make_tar(path: Path, members: dict):
    with tarfile.open(path, "w:gz") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))


def test_extract_refuses_path_traversal(tmp_path):
    make_tar(tmp_path / "evil.tar.gz", {"../evil.txt": b"x"})
    with pytest.raises(ValueError, match="outside"):
        io_.extract_archive(tmp_path / "evil.tar.gz", tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()


def test_fetch_cifar10_end_to_end(server, tmp_path, monkeypatch):
    """The real fetch path: download the archive, verify, extract, load."""
    served, url = server
    src = tmp_path / "src"
    write_cifar(src)
    with tarfile.open(served / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(src / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    md5 = hashlib.md5((served / "cifar-10-python.tar.gz").read_bytes()).hexdigest()
    monkeypatch.setitem(io_.REMOTE, "cifar10", {**io_.REMOTE["cifar10"], "url": f"{url}/cifar-10-python.tar.gz",
                                                "md5": md5})
    d = io_.load_cifar10(tmp_path / "data", train=False, download=True)
    assert len(d) == 3 and (tmp_path / "data" / "cifar-10-batches-py" / "test_batch").exists()


def test_download_script_help():
    out = subprocess.run([sys.executable, str(ROOT / "data_scripts" / "download.py"), "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert "cifar10" in out and "shakespeare" in out
