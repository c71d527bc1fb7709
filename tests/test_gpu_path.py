"""The ``gpu`` profile's code path, run on this CPU: every notebook with
``COURSE_PROFILE=gpu COURSE_SMOKE=1``. The notebooks read CIFAR-10 and the Shakespeare
text from small files in their real on-disk formats (``smoke.write_data``), build the
``gpu`` architectures (ResNet-18, ViT-Tiny, the 6-layer text model) and train them with
the amounts cut (``smoke.cut``). What a CPU cannot run (CUDA autocast, channels-last on
CUDA) is tested apart, by faking the device's capability (test_budget.py).

About a minute per notebook; ``pytest -m "not smoke"`` leaves them out.
"""
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from course_utils import smoke

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture(scope="module")
def smoke_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("gpu_smoke")
    smoke.write_data(root / "data")
    return {"COURSE_PROFILE": "gpu", "COURSE_SMOKE": "1", "COURSE_DATA": str(root / "data"),
            "COURSE_RUNS": str(root / "runs"), "TQDM_DISABLE": "1",   # one runs folder: 08 finds the encoders
            "COURSE_NO_WIDGETS": "1"}                                  # no front end to draw sliders


@pytest.mark.smoke
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_with_its_gpu_settings(path, smoke_env, monkeypatch):
    for k, v in smoke_env.items():
        monkeypatch.setenv(k, v)                       # the kernel inherits this environment
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    printed = ["".join(o.get("text", "")) for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    table = next(t for t in printed if "(* = the profile in use" in t)
    assert "profile in use: gpu" in table and "COURSE_SMOKE=1" in table


def test_smoke_cuts_amounts_and_keeps_everything_else():
    gpu = dict(dataset="cifar10", n_train=None, n_test=None, encoder="resnet18", vit={"dim": 192, "depth": 12},
               minutes=8, ablation_minutes=None, epochs=None, ablation_epochs=20, probe_epochs=100,
               batch_size=512, batch_sizes=[64, 512, 1024], temperature=0.5, ks=[1, 5, 20, 200], nce_steps=800,
               ablation_n=25_000, digits_n=None, block_size=256, n_chars=None, n_blanks=50)
    cut = smoke.cut_settings(gpu)
    assert cut == {**gpu, "n_train": smoke.IMAGES, "n_test": smoke.TEST_IMAGES, "minutes": smoke.MINUTES,
                   "ablation_epochs": 1, "probe_epochs": 2, "batch_size": smoke.BATCH, "batch_sizes": [8, smoke.BATCH],
                   "ks": [1, 5, 20], "nce_steps": 20, "ablation_n": smoke.IMAGES, "digits_n": smoke.IMAGES,
                   "block_size": 64, "n_chars": smoke.TEXT_CHARS, "n_blanks": 10}


def test_choose_settings_cuts_only_the_gpu_column_and_says_so(monkeypatch, capsys):
    from course_utils import runtime
    per = {p: dict(n_train=10_000 if p != "gpu" else None, minutes=3) for p in ("fast", "cpu", "gpu")}
    monkeypatch.setenv("COURSE_SMOKE", "1")
    assert runtime.choose_settings(per, profile="gpu").n_train == smoke.IMAGES
    assert "COURSE_SMOKE=1" in capsys.readouterr().out
    assert runtime.choose_settings(per, profile="cpu", show=False).n_train == 10_000
    monkeypatch.setenv("COURSE_SMOKE", "0")
    assert runtime.choose_settings(per, profile="gpu", show=False).n_train is None


def test_smoke_data_are_read_by_the_real_readers(tmp_path):
    from course_utils import data, text
    smoke.write_data(tmp_path, n_train=50, n_test=20, text_chars=1000)
    train, test = data.load_images("cifar10", "train", root=tmp_path), data.load_images("cifar10", "test", root=tmp_path)
    assert (len(train), len(test), train.images.shape[1:]) == (50, 20, (3, 32, 32))
    shapes = data.load_images("shapes", "train", n=70)
    assert (train.images == shapes.images[:50]).all() and (train.labels == shapes.labels[:50]).all()
    stl = data.load_images("stl10", "train", root=tmp_path)
    assert stl.images.shape == (20, 3, 96, 96) and (stl.images[:, :, ::3, ::3] == shapes.images[:20]).all()
    assert len(text.load_text("shakespeare", root=tmp_path)) == 1000
