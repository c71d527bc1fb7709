"""Captions of the shapes: words from the factors, deterministic and aligned with the images;
the word-level tokenizer round-trips and refuses what it cannot read."""
import pytest
import torch

from course_utils import captions
from course_utils.captions import (
    VOCAB,
    CaptionTokenizer,
    caption_data,
    colour_name,
    make_captions,
    position_phrase,
    size_name,
)
from course_utils.data import load_images, shape_factors
from course_utils.shapes import SHAPE_CLASSES


@pytest.mark.parametrize("rgb, name", [((1, 0, 0), "red"), ((0, 1, 0), "green"), ((0, 0, 1), "blue"),
                                       ((1, 1, 0), "yellow"), ((0, 1, 1), "cyan"), ((1, 0.5, 0), "orange"),
                                       ((0.5, 0, 1), "purple"), ((1, 0, 0.6), "pink"), ((1, 1, 1), "white"),
                                       ((0.5, 0.5, 0.5), "grey"), ((0.05, 0.1, 0.05), "black")])
def test_colour_names_of_known_colours(rgb, name):
    assert colour_name(rgb) == name


def test_sizes_and_places():
    assert [size_name(s) for s in (0.5, 0.65, 0.79)] == ["small", "medium", "large"]
    assert position_phrase(0.0, -0.3) == "near the top"      # y points downwards
    assert position_phrase(0.0, 0.3) == "near the bottom"
    assert position_phrase(-0.3, 0.0) == "on the left"
    assert position_phrase(0.3, -0.3) == "in the top right"
    assert position_phrase(0.01, 0.02) == "in the middle"


def test_captions_describe_their_own_image_in_order():
    labels, factors = load_images("shapes", "train", 64).labels, shape_factors("train", 64)
    texts = make_captions(labels, factors, seed=0)
    assert len(texts) == 64
    for i, text in enumerate(texts):
        words = text.split()
        assert SHAPE_CLASSES[int(labels[i])] in words          # the class is always named
        assert sum(w in SHAPE_CLASSES for w in words) == 1     # and no other class
    # reversing the images reverses the captions' content (templates drawn afresh, same seed)
    rev = make_captions(labels.flip(0), {k: v.flip(0) for k, v in factors.items()}, seed=0)
    assert [next(w for w in t.split() if w in SHAPE_CLASSES) for t in rev] == \
           [next(w for w in t.split() if w in SHAPE_CLASSES) for t in texts[::-1]]


def test_captions_are_deterministic_from_the_seed_and_vary_their_templates():
    labels, factors = load_images("shapes", "train", 200).labels, shape_factors("train", 200)
    a, b = make_captions(labels, factors, seed=3), make_captions(labels, factors, seed=3)
    assert a == b
    assert a != make_captions(labels, factors, seed=4)
    starts = {" ".join(t.split()[:2]) for t in a}
    assert len(starts) >= 5                                   # several templates in use


def test_every_caption_word_is_in_the_vocabulary():
    (_, tokens), texts = caption_data("train", 300)
    tok = CaptionTokenizer()
    assert all(w in VOCAB for t in texts for w in t.replace(",", " , ").split())
    assert tokens.shape == (300, tok.block_size) and tokens.dtype == torch.long
    assert [tok.decode(row) for row in tokens] == [" ".join(t.replace(",", " , ").split()) for t in texts]


def test_caption_data_is_aligned_with_load_images():
    (images, tokens), texts = caption_data("test", 40)
    assert torch.equal(images, load_images("shapes", "test", 40).images)
    labels = load_images("shapes", "test", 40).labels
    assert texts == make_captions(labels, shape_factors("test", 40), seed=1)


def test_tokenizer_layout_and_eot():
    tok = CaptionTokenizer(block_size=8)
    ids = tok.encode("a red star")
    assert ids.tolist()[:5] == [tok.sot_id, VOCAB.index("a"), VOCAB.index("red"), VOCAB.index("star"), tok.eot_id]
    assert ids.tolist()[5:] == [tok.pad_id] * 3
    assert tok.eot_position(tok.encode_batch(["a red star", "a star"])).tolist() == [4, 3]
    assert captions._article("a orange star") == "an orange star"
    assert captions._article("a red star") == "a red star"


@pytest.mark.parametrize("text, match", [("a red zebra", "zebra"), (42, "must be a str"),
                                         ("a red star " * 5, "block_size")])
def test_tokenizer_bad_inputs(text, match):
    with pytest.raises(ValueError, match=match):
        CaptionTokenizer(block_size=8).encode(text)


def test_bad_inputs_of_the_generator():
    labels, factors = torch.tensor([0, 1]), shape_factors("train", 2)
    with pytest.raises(ValueError, match="rows"):
        make_captions(torch.tensor([0, 1, 2]), factors)
    with pytest.raises(ValueError, match="missing"):
        make_captions(labels, {"colour": factors["colour"]})
    with pytest.raises(ValueError, match="class ids"):
        make_captions(torch.tensor([0, 9]), factors)
    with pytest.raises(ValueError, match="block_size"):
        CaptionTokenizer(block_size=2)
    with pytest.raises(ValueError, match="<eot>"):
        CaptionTokenizer().eot_position(torch.zeros(2, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="colours"):
        captions.colour_names(torch.zeros(3, 4))
