"""The method contract (methods.base): configs recorded from constructors, compared as
text, saved and rebuilt; views; the errors a learner meets when a method is incomplete."""
import pytest
import torch
import torch.nn as nn

from course_utils import models
from course_utils.methods import base
from course_utils.methods.base import Method, MethodConfig, Unportable, describe_value, load


class Toy(Method):
    """A linear head on a small CNN, with settings of several kinds."""

    def __init__(self, encoder, transform=None, scale: float = 1.0, sizes=(2, 3)):
        super().__init__(encoder, transform)
        self.head = nn.Linear(encoder.num_features, 2)
        self.scale, self.sizes = scale, sizes

    def training_step(self, batch):
        x, _ = batch
        return self.scale * self.head(self(x)).pow(2).mean()


def _toy(**kw):
    torch.manual_seed(0)
    return Toy(models.build_encoder("small_cnn", width=4), **kw)


def test_config_records_arguments_with_defaults_and_the_encoder_recipe():
    m = _toy(scale=2.0)
    assert m.config == MethodConfig("Toy", {"name": "small_cnn", "kwargs": {"width": 4}},
                                    {"transform": None, "scale": 2.0, "sizes": (2, 3)})
    assert base.METHODS["Toy"] is Toy
    assert m.config.describe() == {"method": "Toy", "encoder": "{'name': 'small_cnn', 'kwargs': {'width': 4}}",
                                   "transform": "None", "scale": "2.0", "sizes": "(2, 3)"}


def test_a_subclass_of_a_subclass_records_its_own_arguments():
    class Scaled(Toy):
        def __init__(self, encoder, factor: int = 3):
            super().__init__(encoder, scale=float(factor))

    m = Scaled(models.build_encoder("small_cnn", width=4))
    assert m.config.method == "Scaled" and m.config.kwargs == {"factor": 3} and m.scale == 3.0


def test_describe_value_is_stable_for_functions_and_plain_objects():
    def f(x):
        return x + 1

    def g(x):
        return x + 2

    class Crop:
        def __init__(self, size):
            self.size = size

    assert describe_value(f) == describe_value(f) and " at 0x" not in describe_value(f)
    assert describe_value(f) != describe_value(g)                 # other code, other text
    assert describe_value(Crop(3)) == describe_value(Crop(3)) != describe_value(Crop(4))
    assert describe_value(torch.ones(2)) != describe_value(torch.zeros(2))


def test_save_and_load_rebuild_the_same_method(tmp_path):
    m = _toy(scale=2.0, transform=lambda x: x.flip(-1))
    path = m.save(tmp_path / "toy.pt", knn=0.5)
    back = load(path)
    assert isinstance(back, Toy) and not back.training and back.info == {"knn": 0.5}
    assert back.scale == 2.0 and back.transform is None           # a lambda is not saved: the default comes back
    assert isinstance(torch.load(path, weights_only=False)["config"].kwargs["transform"], Unportable)
    x = torch.rand(3, 3, 16, 16)
    torch.testing.assert_close(back(x), m.eval()(x))
    torch.testing.assert_close(back.head(back(x)), m.head(m(x)))


def test_load_errors_name_the_file_and_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="run the cell that makes it"):
        load(tmp_path / "missing.pt")
    torch.save({"state_dict": {}}, tmp_path / "old.pt")
    with pytest.raises(ValueError, match="no method config.*run the notebook that makes it again"):
        load(tmp_path / "old.pt")
    (tmp_path / "cut.pt").write_bytes(b"PK\x03\x04 half a file")
    with pytest.raises(ValueError, match="damaged"):
        load(tmp_path / "cut.pt")
    hand_built = Toy(models.SmallCNN(width=4))                    # no recipe stamped on the encoder
    with pytest.raises(ValueError, match="built by hand.*build_encoder"):
        hand_built.save(tmp_path / "hand.pt")                     # refused at once, not when loading
    assert not (tmp_path / "hand.pt").exists()


def test_views_one_transform_or_one_per_view():
    x = torch.rand(2, 3, 8, 8)
    m = _toy(transform=lambda v: v + 1)
    a, b = m.views(x)
    assert torch.equal(a, x + 1) and torch.equal(b, x + 1) and len(m.views(x, n=3)) == 3
    pair = _toy(transform=(lambda v: v + 1, lambda v: v * 0))
    a, b = pair.views(x)
    assert torch.equal(a, x + 1) and torch.equal(b, torch.zeros_like(x))
    with pytest.raises(ValueError, match="pass transform="):
        _toy().views(x)


def test_incomplete_methods_fail_clearly():
    class NoStep(Method):
        pass

    with pytest.raises(NotImplementedError, match="NoStep must define training_step"):
        NoStep(models.SmallCNN(width=4)).training_step((None, None))
    with pytest.raises(ValueError, match="forward_features"):
        Toy(nn.Linear(3, 3))


def test_load_finds_every_course_method_without_importing_it_first(tmp_path):
    """A new kernel (notebook 08) loads what notebook 03 saved, having imported only base."""
    import subprocess
    import sys

    from course_utils.methods.simclr import SimCLR

    SimCLR(models.build_encoder("small_cnn", width=4), proj_hidden_dim=8, proj_dim=4).save(tmp_path / "s.pt")
    code = ("import sys; from course_utils.methods.base import load; "
            "assert 'course_utils.methods.simclr' not in sys.modules; "
            f"print(type(load({str(tmp_path / 's.pt')!r})).__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-1500:]
    assert out.stdout.strip() == "SimCLR"


def test_the_methods_of_notebooks_09_to_11_save_and_load_in_a_new_kernel(tmp_path):
    """Notebook 08 loads what 09-11 saved, in its own kernel; the encoder comes back exactly."""
    import subprocess
    import sys

    from course_utils.methods import cmc, swav
    from course_utils.methods.barlow_twins import BarlowTwins
    from course_utils.methods.clip import CLIP
    from course_utils.methods.cpc import CPC
    from course_utils.methods.dino import DINO
    from course_utils.methods.vicreg import VICReg

    cnn = lambda **kw: models.build_encoder("small_cnn", width=4, **kw)           # noqa: E731
    vit = models.build_encoder("vit_tiny", dim=16, depth=1, num_heads=2, patch_size=4)
    crops = swav.multi_crop(32, n_local=2, local_size=16)
    made = {"BarlowTwins": BarlowTwins(cnn(), proj_hidden_dim=8, proj_dim=8),
            "VICReg": VICReg(cnn(), proj_hidden_dim=8, proj_dim=8),
            "SwAV": swav.SwAV(cnn(), crops, proj_hidden_dim=8, proj_dim=4, num_prototypes=5),
            "DINO": DINO(vit, crops, hidden_dim=8, bottleneck_dim=4, out_dim=6),
            "CMC": cmc.CMC(cnn(in_channels=1), proj_hidden_dim=8, proj_dim=4),
            "CLIP": CLIP(cnn(), text_dim=16, text_heads=2, text_depth=1, embed_dim=8),
            "CPC": CPC(cnn(), context_dim=8)}
    x = torch.rand(2, 3, 32, 32)
    for name, m in made.items():
        m.save(tmp_path / f"{name}.pt")
        torch.save(m.eval().encoder.forward_features(x), tmp_path / f"{name}_out.pt")
    torch.save(x, tmp_path / "x.pt")
    code = ("import sys, torch; from course_utils.methods.base import load; "
            f"d = {str(tmp_path)!r}; x = torch.load(d + '/x.pt'); "
            f"names = {list(made)!r}\n"
            "for n in names:\n"
            "    m = load(d + f'/{n}.pt')\n"
            "    assert type(m).__name__ == n, (n, type(m).__name__)\n"
            "    torch.testing.assert_close(m.encoder.forward_features(x), torch.load(d + f'/{n}_out.pt'))\n"
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ok"
