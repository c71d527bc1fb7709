"""Bad input gets an error that names the argument and the fix (issue: no setting silently
ignored). One test per case; the refactored run-config refusals are in test_train.py."""
import math

import pytest
import torch

from course_utils import evaluate, language, losses, models
from course_utils.methods import byol, mae, moco, pretext


@pytest.mark.parametrize("t", [math.inf, float("nan"), 0, -1.0, "0.1", True])
def test_temperature_must_be_finite_and_positive(t):
    z = torch.randn(4, 8)
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        losses.nt_xent_loss(z, z.clone(), t)


def test_losses_name_a_non_tensor_input():
    with pytest.raises(ValueError, match=r"z1 as a torch tensor.*torch.as_tensor\(z1\)"):
        losses.nt_xent_loss([[1.0, 2.0], [3.0, 4.0]], torch.randn(2, 2), 0.5)


def test_mae_loss_refuses_uint8_images():
    images = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)
    pred, mask = torch.rand(2, 4, 48), torch.ones(2, 4)
    with pytest.raises(ValueError, match=r"floats in \[0, 1\].*images.float\(\) / 255"):
        mae.mae_loss(pred, images, mask, 4)
    assert torch.isfinite(mae.mae_loss(pred, images.float() / 255, mask, 4))


@pytest.mark.parametrize("ratio", ["0.75", None, 1.0, -0.1])
def test_mask_ratio_is_named(ratio):
    with pytest.raises(ValueError, match="mask_ratio must be a number in"):
        mae.num_visible(16, ratio)


@pytest.mark.parametrize("mask_id", [-1, 2.5, True])
def test_mlm_corrupt_refuses_a_bad_mask_id(mask_id):
    with pytest.raises(ValueError, match="mask_id must be the \\[MASK\\] token's id"):
        language.mlm_corrupt(torch.zeros(2, 10, dtype=torch.long), mask_id, num_tokens=5)


def test_lm_loss_with_nothing_to_predict_or_ids_past_the_vocabulary():
    logits = torch.randn(2, 4, 6)
    with pytest.raises(ValueError, match="every target is IGNORE_INDEX"):
        language.lm_loss(logits, torch.full((2, 4), language.IGNORE_INDEX))
    with pytest.raises(ValueError, match="token id 9, outside the logits' vocabulary of V = 6"):
        language.lm_loss(logits, torch.full((2, 4), 9))
    assert language.lm_loss(logits, torch.full((2, 4), language.IGNORE_INDEX), reduction="sum") == 0


def test_probes_refuse_too_few_rows_and_bad_labels():
    f, y = torch.randn(6, 3), torch.tensor([0, 1, 2, 0, 1, 2])
    with pytest.raises(ValueError, match="at least 2 training rows"):
        evaluate.linear_probe(f[:1], y[:1], f, y)
    with pytest.raises(ValueError, match="no rows to evaluate"):
        evaluate.knn_accuracy(f[:0], y[:0], f, y)
    with pytest.raises(ValueError, match="train_labels must be class indices"):
        evaluate.knn_accuracy(f, y.float(), f, y)
    with pytest.raises(ValueError, match="test_labels must be class indices.*minimum -1"):
        evaluate.linear_probe(f, y, f, y - 1)


def test_an_unwritable_checkpoint_folder_is_named_before_training(tmp_path):
    from course_utils.methods.simclr import SimCLR
    from course_utils.models import build_encoder
    from course_utils.train import train

    (tmp_path / "runs").write_text("a file where the runs folder should be")
    calls = []
    method = SimCLR(build_encoder("small_cnn", width=4), transform=lambda x: x, proj_hidden_dim=8, proj_dim=4)
    method.after_step = lambda step, total: calls.append(step)
    data = (torch.rand(8, 3, 16, 16), torch.zeros(8, dtype=torch.long))
    with pytest.raises(PermissionError, match="cannot write the checkpoint.*COURSE_RUNS"):
        train(method, data, epochs=1, batch_size=4, progress=False, device="cpu",
              checkpoint=tmp_path / "runs" / "03_simclr.pt")
    assert calls == []                                   # refused before a single step


@pytest.mark.parametrize("kwargs, match", [
    ({"lr": "1e-3"}, "lr must be a finite number > 0"), ({"lr": math.inf}, "lr must be a finite number > 0"),
    ({"lr": 0}, "lr must be a finite number > 0"), ({"eval_every": "2"}, "eval_every must be an int >= 1")])
def test_train_names_a_bad_lr_or_eval_every(kwargs, match):
    from course_utils.methods.simclr import SimCLR
    from course_utils.models import build_encoder
    from course_utils.train import train

    method = SimCLR(build_encoder("small_cnn", width=4), transform=lambda x: x, proj_hidden_dim=8, proj_dim=4)
    with pytest.raises(ValueError, match=match):
        train(method, (torch.rand(8, 3, 16, 16), torch.zeros(8, dtype=torch.long)), epochs=1, batch_size=4,
              progress=False, device="cpu", **kwargs)


@pytest.mark.parametrize("labels, match", [([0, 1, 5, 2], "labels run from 0 to 5.*num_classes=3"),
                                           ([0, -1, 1, 2], "from -1 to 2"), (None, "integer class labels")])
def test_supervised_names_labels_that_do_not_fit_its_classes(labels, match):
    from course_utils.methods.supervised import Supervised
    method = Supervised(models.build_encoder("pixels", image_size=8), num_classes=3)
    y = None if labels is None else torch.tensor(labels)
    with pytest.raises(ValueError, match=match):
        method.training_step((torch.rand(4, 3, 8, 8), y))


def test_regression_loss_names_a_list_input():
    from course_utils.methods.byol import regression_loss
    with pytest.raises(TypeError, match="z is a list.*torch.stack"):
        regression_loss(torch.randn(2, 3), [torch.randn(3), torch.randn(3)])


@pytest.mark.parametrize("num_tokens", [0, 1000, 2.5, True])
def test_masked_lm_names_a_num_tokens_outside_the_vocabulary(num_tokens):
    encoder = models.TinyTransformer(vocab_size=20, dim=8, depth=1, num_heads=2, block_size=8, causal=False)
    with pytest.raises(ValueError, match=r"num_tokens=.*\[1, 20\].*len\(tokenizer.chars\)"):
        language.MaskedLM(encoder, mask_id=19, num_tokens=num_tokens)


def test_a_last_batch_of_one_image_with_batchnorm_is_named_before_training():
    from course_utils.methods.supervised import Supervised
    from course_utils.train import train
    x, y = torch.randint(0, 256, (33, 3, 8, 8), dtype=torch.uint8), torch.randint(0, 3, (33,))
    method = Supervised(models.build_encoder("small_cnn", width=4), num_classes=3)
    with pytest.raises(ValueError, match=r"last batch of every epoch holds 1 image \(33 = 2 x 16 \+ 1\)"):
        train(method, (x, y), epochs=1, batch_size=16, drop_last=False, progress=False, device="cpu")
    train(method, (x, y), epochs=1, batch_size=16, progress=False, device="cpu")   # drop_last=True: fine


@pytest.mark.parametrize("kw, match", [
    ({"k": "3"}, r"k must be an int >= 1 \(e.g. 20 neighbours\), got '3'"), ({"k": 2.0}, "k must be an int"),
    ({"temperature": "0.1"}, r"temperature must be a finite number > 0 \(e.g. 0.07\)"),
    ({"temperature": math.inf}, "temperature must be a finite number")])
def test_knn_names_a_string_or_non_finite_argument(kw, match):
    f, y = torch.randn(6, 3), torch.tensor([0, 1, 2, 0, 1, 2])
    with pytest.raises(ValueError, match=match):
        evaluate.knn_accuracy(f, y, f, y, **kw)


@pytest.mark.parametrize("kw, match", [({"lr": "1e-2"}, "lr must be a finite number > 0"),
                                       ({"epochs": 2.5}, "epochs must be an int >= 1"),
                                       ({"weight_decay": -1}, "weight_decay must be a finite number >= 0")])
def test_linear_probe_names_a_bad_argument(kw, match):
    f, y = torch.randn(6, 3), torch.tensor([0, 1, 2, 0, 1, 2])
    with pytest.raises(ValueError, match=match):
        evaluate.linear_probe(f, y, f, y, **kw)


def test_probes_name_list_inputs():
    f, y = torch.randn(6, 3), torch.tensor([0, 1, 2, 0, 1, 2])
    with pytest.raises(ValueError, match=r"train_labels must be a torch tensor.*torch.as_tensor\(train_labels\)"):
        evaluate.knn_accuracy(f, [0, 1, 2, 0, 1, 2], f, y)


def _simclr():
    from course_utils.methods.simclr import SimCLR
    return SimCLR(models.build_encoder("small_cnn", width=4), transform=lambda x: x, proj_hidden_dim=8, proj_dim=4)


@pytest.mark.parametrize("damage, match", [("empty", r"is empty \(0 bytes\).*delete it and run the training cell"),
                                           ("half", r"cannot be read.*delete it and run the training cell"),
                                           ("random", r"cannot be read.*damaged or not a course file")])
def test_a_damaged_checkpoint_names_the_file_and_the_fix(tmp_path, damage, match):
    from course_utils.train import train
    data = (torch.rand(8, 3, 16, 16), torch.zeros(8, dtype=torch.long))
    path = tmp_path / "03_simclr.pt"
    train(_simclr(), data, epochs=1, batch_size=4, progress=False, device="cpu", checkpoint=path)
    whole = path.read_bytes()
    path.write_bytes({"empty": b"", "half": whole[:len(whole) // 2],
                      "random": bytes(torch.randint(0, 256, (500,), dtype=torch.uint8).tolist())}[damage])
    with pytest.raises(ValueError, match=match) as error:
        train(_simclr(), data, epochs=1, batch_size=4, progress=False, device="cpu", checkpoint=path)
    assert str(path) in str(error.value)


def test_a_damaged_saved_encoder_names_the_file(tmp_path):
    from course_utils.methods.base import load
    path = tmp_path / "encoder.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=f"saved method {path} cannot be read.*delete it"):
        load(path)


def test_damaged_baselines_are_measured_again_with_a_note(tmp_path, capsys):
    path = tmp_path / "00_baselines.pt"
    path.write_bytes(b"")
    assert evaluate.load_baselines((torch.rand(4, 3, 8, 8), torch.zeros(4)), (torch.rand(4, 3, 8, 8), torch.zeros(4)),
                                   path) == {}
    assert f"baselines file {path} is empty" in capsys.readouterr().out


def _cnn():
    return models.build_encoder("small_cnn", width=4)


def _vit():
    return models.build_encoder("vit_tiny", image_size=32, patch_size=8, dim=16, depth=1, num_heads=2)


@pytest.mark.parametrize("build, match", [
    (lambda: pretext.Jigsaw(_cnn(), grid="3"), "grid must be an int >= 2"),
    (lambda: pretext.ContextPrediction(_cnn(), hidden_dim=-1), "hidden_dim must be an int >= 1"),
    (lambda: moco.MoCo(_cnn(), queue_size="4096"), "queue_size must be an int"),
    (lambda: moco.MoCo(_cnn(), shuffle_groups=float("nan")), "shuffle_groups must be an int"),
    (lambda: mae.MAE(_vit(), decoder_depth=-1), "decoder_depth must be an int >= 1"),
    (lambda: mae.MAE(_vit(), decoder_dim=64, decoder_heads=3), "decoder_dim=64 must be a multiple of decoder_heads=3"),
    (lambda: models.build_encoder("small_cnn", width="4"), "width must be an int >= 1"),
    (lambda: models.build_encoder("resnet18", width=0), "width must be an int >= 1")])
def test_method_and_encoder_sizes_are_named(build, match):
    with pytest.raises(ValueError, match=match):
        build()


@pytest.mark.parametrize("build", [lambda m: moco.MoCo(_cnn(), momentum=m),
                                   lambda m: byol.BYOL(_cnn(), momentum_base=m)])
def test_a_tensor_momentum_is_named_as_a_tensor_not_as_out_of_range(build):
    with pytest.raises(ValueError, match=r"got a tensor; pass float\("):
        build(torch.tensor(0.99))
