"""Language models (notebook 07): attention against a slow loop and PyTorch's fused kernel,
the causal mask, the text encoder (models.TinyTransformer), BERT corruption against a slow
replay of its random draws and by its statistics, the one shift, the losses against slow
loops, the two methods on the Method contract (training_step, save and load), sampling
(top-k=1 is greedy, temperature -> 0 approaches greedy), filling blanks, and the bad inputs.
The notebook's lesson helpers are tested in test_lessons_nb07.py."""
import math

import pytest
import torch
import torch.nn.functional as F

from course_utils import language as L
from course_utils import models
from course_utils.methods.base import Method, load
from course_utils.train import train

IGN = L.IGNORE_INDEX


def _model(causal=True, V=11, T=16, dim=16, depth=2, heads=2, flash=True, seed=0):
    torch.manual_seed(seed)
    return models.build_encoder("char_transformer", vocab_size=V, block_size=T, dim=dim, depth=depth,
                                num_heads=heads, dropout=0.0, causal=causal, flash=flash)


def _ids(B=3, T=10, V=11, seed=0):
    return torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------ attention

def slow_attention(q, k, v, causal):
    """One query at a time: weights over the keys it may see, softmax by hand, weighted sum."""
    B, H, T, hd = q.shape
    out = torch.zeros_like(q)
    for b in range(B):
        for h in range(H):
            for i in range(T):
                keys = range(i + 1) if causal else range(T)
                scores = [float(q[b, h, i] @ k[b, h, j]) / math.sqrt(hd) for j in keys]
                top = max(scores)
                w = [math.exp(s - top) for s in scores]
                out[b, h, i] = sum(wj / sum(w) * v[b, h, j] for wj, j in zip(w, keys))
    return out


@pytest.mark.parametrize("causal", [False, True])
def test_attention_matches_slow_loop_and_pytorch(causal):
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(2, 3, 5, 4, generator=g) for _ in range(3))
    ours = models.attention(q, k, v, causal=causal)
    torch.testing.assert_close(ours, slow_attention(q, k, v, causal))
    torch.testing.assert_close(ours, F.scaled_dot_product_attention(q, k, v, is_causal=causal))


def test_causal_attention_ignores_the_future():
    g = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(1, 2, 6, 4, generator=g) for _ in range(3))
    k2, v2 = k.clone(), v.clone()
    k2[..., 4:, :], v2[..., 4:, :] = 100.0, -100.0  # change keys and values of positions 4, 5
    a, b = models.attention(q, k, v, causal=True), models.attention(q, k2, v2, causal=True)
    torch.testing.assert_close(a[..., :4, :], b[..., :4, :])  # positions 0..3 do not see them
    assert not torch.allclose(models.attention(q, k, v)[..., :4, :], models.attention(q, k2, v2)[..., :4, :])


def test_causal_mask_matches_slow_loop():
    for T in (1, 2, 7):
        slow = torch.tensor([[j <= i for j in range(T)] for i in range(T)])
        assert torch.equal(models.causal_mask(T), slow)
    with pytest.raises(ValueError, match="T must be a positive int"):
        models.causal_mask(0)


def test_attention_bad_inputs():
    q = torch.randn(1, 2, 3, 4)
    with pytest.raises(ValueError, match="one shape"):
        models.attention(q, q[:, :, :2], q)
    with pytest.raises(ValueError, match="dropout_p"):
        models.attention(q, q, q, dropout_p=1.0)


def test_language_reexports_the_one_transformer_of_models():
    """language.TinyTransformer / attention / causal_mask are models' own, not copies."""
    assert L.TinyTransformer is models.TinyTransformer and L.attention is models.attention
    assert L.causal_mask is models.causal_mask
    m = _model()
    assert all(isinstance(b, models.TransformerBlock) for b in m.blocks)
    assert all(b.attn.qkv.bias is None and b.mlp[0].bias is None for b in m.blocks)   # nanoGPT: no biases


# ------------------------------------------------------------------------------ the model

@pytest.mark.parametrize("causal", [False, True])
def test_model_shapes_and_flash_equals_written_out_attention(causal):
    fast, plain = _model(causal, flash=True), _model(causal, flash=False)
    plain.load_state_dict(fast.state_dict())
    idx = _ids()
    logits = fast(idx)
    assert logits.shape == (3, 10, 11) and torch.isfinite(logits).all()
    torch.testing.assert_close(logits, plain(idx))


def test_causal_model_position_t_depends_on_the_past_only():
    idx = _ids(B=1, T=12)
    changed = idx.clone()
    changed[0, 7:] = (changed[0, 7:] + 1) % 11
    causal, bidir = _model(True), _model(False)
    torch.testing.assert_close(causal(idx)[:, :7], causal(changed)[:, :7])
    assert not torch.allclose(causal(idx)[:, 7:], causal(changed)[:, 7:])
    assert not torch.allclose(bidir(idx)[:, :7], bidir(changed)[:, :7])  # MLM sees both sides


def test_model_ties_weights_and_counts_parameters_like_nanogpt():
    m = models.TinyTransformer(65, 256, 384, 6, 6, dropout=0.2, causal=True)
    assert m.lm_head.weight is m.tok_emb.weight
    assert abs(m.num_parameters() / 1e6 - 10.65) < 0.05  # nanoGPT shakespeare_char: "10.65M"


def test_model_bad_inputs():
    m = _model()
    with pytest.raises(ValueError, match="longer than the context.*block_size=16"):
        m(_ids(T=17))
    with pytest.raises(ValueError, match="outside the vocabulary"):
        m(torch.tensor([[0, 11]]))
    with pytest.raises(ValueError, match="outside the vocabulary"):
        m(torch.tensor([[0, IGN]]))
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        m(torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="divisible"):
        models.TinyTransformer(11, 8, dim=10, num_heads=3)
    with pytest.raises(ValueError, match="dropout"):
        models.TinyTransformer(11, 8, dropout=1.0)


def test_model_init_follows_gpt2():
    """N(0, 0.02) weights, residual projections N(0, 0.02 / sqrt(2 depth)), zero LayerNorm biases."""
    m = _model(dim=64, depth=8, heads=4, V=50, T=32)
    std = lambda p: p.detach().std().item()  # noqa: E731
    assert abs(std(m.tok_emb.weight) - 0.02) < 0.002 and abs(std(m.blocks[0].attn.qkv.weight) - 0.02) < 0.002
    for b in m.blocks:
        for p in (b.attn.proj.weight, b.mlp[2].weight):
            assert abs(std(p) - 0.02 / 4) < 0.0006
        assert torch.equal(b.norm1.weight, torch.ones(64)) and torch.equal(b.norm1.bias, torch.zeros(64))


def test_forward_features_is_the_mean_hidden_state():
    m, idx = _model(False), _ids()
    h = m.hidden(idx)
    assert h.shape == (3, 10, 16) and m.num_features == 16
    torch.testing.assert_close(m.forward_features(idx), h.mean(dim=1))
    torch.testing.assert_close(m(idx), m.lm_head(h))


# ------------------------------------------------------------------------------ data

def test_clm_shift_matches_slow_pairs_and_is_the_only_shift():
    chunk = _ids(B=2, T=6)
    x, y = L.clm_shift(chunk)
    for b in range(2):
        for t in range(5):
            assert x[b, t] == chunk[b, t] and y[b, t] == chunk[b, t + 1]
    with pytest.raises(ValueError, match=r"\(B, T\+1\)"):
        L.clm_shift(chunk[:, :1])


def test_language_data_windows():
    ids = torch.arange(20)
    x, y = L.language_data(ids, 4, "clm")       # windows of 5 starting every 4
    assert x.shape == y.shape == (4, 4)
    assert x[1].tolist() == [4, 5, 6, 7] and y[1].tolist() == [5, 6, 7, 8]
    assert sorted(y.flatten().tolist()) == list(range(1, 17))  # each character a target once
    w, w2 = L.language_data(ids, 4, "mlm", stride=2)
    assert w is w2 and w.shape == (9, 4) and w[1].tolist() == [2, 3, 4, 5]
    with pytest.raises(ValueError, match="objective"):
        L.language_data(ids, 4, "gpt")
    with pytest.raises(ValueError, match="longer than the text"):
        L.make_windows(ids, 21)


def slow_mlm_corrupt(ids, mask_id, num_tokens, mask_prob, mask_frac, random_frac, seed):
    """BERT's create_masked_lm_predictions as a loop, replaying mlm_corrupt's random draws."""
    g = torch.Generator().manual_seed(seed)
    B, T = ids.shape
    noise = torch.rand(B, T, generator=g)
    action = torch.rand(B, T, generator=g)
    random_ids = torch.randint(0, num_tokens, (B, T), generator=g)
    k = max(1, round(mask_prob * T)) if mask_prob > 0 else 0
    inputs, targets = ids.clone(), torch.full_like(ids, IGN)
    for b in range(B):
        order = sorted(range(T), key=lambda t: noise[b, t].item())
        for t in order[:k]:                        # the k positions with the smallest noise
            targets[b, t] = ids[b, t]
            if action[b, t] < mask_frac:
                inputs[b, t] = mask_id
            elif action[b, t] < mask_frac + random_frac:
                inputs[b, t] = random_ids[b, t]
    return inputs, targets


@pytest.mark.parametrize("mask_prob, mask_frac, random_frac", [(0.15, 0.8, 0.1), (0.5, 0.3, 0.3),
                                                               (1.0, 0.8, 0.1), (0.0, 0.8, 0.1)])
def test_mlm_corrupt_matches_slow_replay(mask_prob, mask_frac, random_frac):
    ids = _ids(B=4, T=20, V=10)
    g = torch.Generator().manual_seed(5)
    got = L.mlm_corrupt(ids, 10, 10, mask_prob, mask_frac, random_frac, generator=g)
    expected = slow_mlm_corrupt(ids, 10, 10, mask_prob, mask_frac, random_frac, seed=5)
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])


def test_mlm_corrupt_statistics():
    B, T, V, mask_id = 64, 500, 20, 20
    ids = torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(0))
    inputs, targets = L.mlm_corrupt(ids, mask_id, V, generator=torch.Generator().manual_seed(1))
    chosen = targets != IGN
    assert (chosen.sum(dim=1) == 75).all()                       # exactly 15% of 500 per sequence
    assert torch.equal(targets[chosen], ids[chosen])             # targets: the originals
    assert (targets[~chosen] == -100).all()                      # unchosen: -100, the one ignore index
    assert torch.equal(inputs[~chosen], ids[~chosen])            # unchosen positions untouched
    n = chosen.sum().item()
    masked = (inputs == mask_id) & chosen
    changed = chosen & (inputs != ids) & (inputs != mask_id)
    same = chosen & (inputs == ids)
    # random tokens equal the original with probability 1/V, so "same" is 10% + 10%/V
    for got, p in [(masked, 0.8), (changed, 0.1 * (1 - 1 / V)), (same, 0.1 + 0.1 / V)]:
        assert abs(got.sum().item() / n - p) < 5 * math.sqrt(p * (1 - p) / n)
    assert not (inputs[~masked] == mask_id).any() and inputs.max() <= mask_id


def test_mlm_corrupt_chooses_positions_uniformly():
    ids = torch.zeros(4000, 10, dtype=torch.long)
    _, targets = L.mlm_corrupt(ids, 1, 1, mask_prob=0.3, generator=torch.Generator().manual_seed(0))
    freq = (targets != IGN).float().mean(dim=0)                  # (T,) how often each position is chosen
    assert (freq - 0.3).abs().max() < 0.03


@pytest.mark.parametrize("kwargs, match", [
    (dict(mask_prob=-0.1), "mask_prob must be in \\[0, 1\\]"), (dict(mask_prob=1.5), "mask_prob"),
    (dict(mask_frac=0.8, random_frac=0.3), "mask_frac \\+ random_frac"),
    (dict(random_frac=-0.1), "random_frac"),
    (dict(num_tokens=0), "num_tokens")])
def test_mlm_corrupt_bad_inputs(kwargs, match):
    args = dict(ids=_ids(), mask_id=11, num_tokens=11)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        L.mlm_corrupt(**args)
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        L.mlm_corrupt(torch.zeros(5, dtype=torch.long), 1, 1)


# ------------------------------------------------------------------------------ losses

def slow_lm_loss(logits, targets):
    terms = []
    for b in range(targets.shape[0]):
        for t in range(targets.shape[1]):
            if targets[b, t] != -100:
                row = logits[b, t]
                terms.append(-(row[targets[b, t]] - torch.logsumexp(row, 0)))
    return torch.stack(terms).mean()


def test_lm_loss_matches_slow_loop_and_uniform_logits_give_log_v():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 7, 5, generator=g)
    targets = torch.randint(0, 5, (2, 7), generator=g)
    targets[0, :3] = IGN
    torch.testing.assert_close(L.lm_loss(logits, targets), slow_lm_loss(logits, targets))
    flat = torch.zeros(2, 7, 5)
    torch.testing.assert_close(L.lm_loss(flat, targets), torch.tensor(math.log(5)))
    assert math.isclose(L.bits_per_character(math.log(5)), math.log2(5))
    total = L.lm_loss(logits, targets, reduction="sum")
    torch.testing.assert_close(total, slow_lm_loss(logits, targets) * (targets != IGN).sum())


def test_lm_loss_refuses_a_second_ignore_index_and_bad_shapes():
    logits, targets = torch.randn(1, 4, 5), torch.tensor([[1, -1, 2, -100]])
    with pytest.raises(ValueError, match="-1.*IGNORE_INDEX = -100"):
        L.lm_loss(logits, targets)
    with pytest.raises(ValueError, match=r"\(B, T, V\)"):
        L.lm_loss(logits, targets[:, :3])


def test_shifting_twice_is_wrong():
    """Known-wrong: shift in the data AND in the loss; a model that predicts the next
    character perfectly then scores badly, because it is judged on the one after."""
    _, y = L.clm_shift(torch.arange(9)[None] % 5)                # a periodic text: 0 1 2 3 4 0 1 2 3
    perfect = F.one_hot(y, 5).float() * 50                       # predicts y exactly
    assert L.lm_loss(perfect, y) < 1e-6
    assert L.lm_loss(perfect[:, :-1], y[:, 1:]) > 10             # the second shift


def test_sequence_log_likelihood_matches_slow_loop():
    g = torch.Generator().manual_seed(3)
    logits, targets = torch.randn(3, 6, 4, generator=g), torch.randint(0, 4, (3, 6), generator=g)
    targets[1, 2:] = IGN
    slow = torch.tensor([sum(logits[b, t].log_softmax(0)[targets[b, t]].item()
                             for t in range(6) if targets[b, t] != IGN) for b in range(3)])
    torch.testing.assert_close(L.sequence_log_likelihood(logits, targets), slow)


# ------------------------------------------------------------------------------ methods

def test_methods_refuse_the_wrong_encoder():
    with pytest.raises(ValueError, match="causal encoder.*causal=True"):
        L.CausalLM(_model(causal=False))
    with pytest.raises(ValueError, match="bidirectional encoder.*causal=False"):
        L.MaskedLM(_model(causal=True), mask_id=10, num_tokens=10)
    with pytest.raises(ValueError, match="mask_prob"):
        L.MaskedLM(_model(causal=False), mask_id=10, num_tokens=10, mask_prob=1.2)
    with pytest.raises(ValueError, match="mask_id 11 is outside"):
        L.MaskedLM(_model(causal=False), mask_id=11, num_tokens=10)
    with pytest.raises(ValueError, match="char_transformer.*SmallCNN"):
        L.CausalLM(models.SmallCNN(width=4))


def _methods(V=9, T=8):
    return {"clm": L.CausalLM(_model(True, V=V, T=T)),
            "mlm": L.MaskedLM(_model(False, V=V, T=T), mask_id=V - 1, num_tokens=V - 1, mask_prob=0.3)}


@pytest.mark.parametrize("objective", ["clm", "mlm"])
def test_training_step_takes_the_batch_and_returns_the_loss(objective):
    method = _methods()[objective]
    assert isinstance(method, Method) and method.encoder.causal == (objective == "clm")
    batch = L.language_data(torch.arange(60) % 8, 8, objective)
    torch.manual_seed(3)                      # the MLM's corruption draws from the global generator
    loss = method.training_step(batch)
    assert loss.dim() == 0 and torch.isfinite(loss)
    torch.manual_seed(3)
    logits, targets = method.logits_and_targets(*batch)
    torch.testing.assert_close(loss, L.lm_loss(logits, targets))
    loss.backward()
    assert method.encoder.tok_emb.weight.grad is not None
    if objective == "mlm":                    # the loss sees the chosen positions only
        assert ((targets != IGN).sum(dim=1) == L.num_to_predict(8, 0.3)).all()
    else:
        assert torch.equal(targets, batch[1])
    torch.testing.assert_close(method(batch[0]), method.encoder.forward_features(batch[0]))  # base forward


@pytest.mark.parametrize("objective", ["clm", "mlm"])
def test_save_and_load_rebuild_the_same_method(objective, tmp_path):
    method = _methods()[objective]
    with torch.no_grad():                     # weights that differ from a fresh build
        method.encoder.pos_emb.weight.add_(torch.randn_like(method.encoder.pos_emb.weight))
    method.save(tmp_path / "lm.pt", val_bpc=1.5)
    loaded = load(tmp_path / "lm.pt")
    assert type(loaded) is type(method) and loaded.info == {"val_bpc": 1.5} and not loaded.training
    assert loaded.config == method.config and loaded.encoder.causal == method.encoder.causal
    if objective == "mlm":
        assert (loaded.mask_id, loaded.num_tokens, loaded.mask_prob) == (8, 8, 0.3)
    x = torch.arange(24).view(3, 8) % 8
    method.eval()
    assert torch.equal(loaded.encoder(x), method.encoder(x))
    g1, g2 = (torch.Generator().manual_seed(0) for _ in range(2))
    a, b = method.logits_and_targets(x, x, generator=g1), loaded.logits_and_targets(x, x, generator=g2)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_both_objectives_learn_a_periodic_text_with_train():
    """Both objectives learn a text with an obvious pattern through course_utils.train."""
    ids = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7] * 40)
    for obj, method in [("clm", L.CausalLM(_model(True, V=9, T=8))),
                        ("mlm", L.MaskedLM(_model(False, V=9, T=8), mask_id=8, num_tokens=8, mask_prob=0.3))]:
        data = L.language_data(ids, 8, obj, stride=1)
        before = L.evaluate_bpc(method, data)
        train(method, data, epochs=12, batch_size=32, lr=1e-2, device="cpu", progress=False)
        after = L.evaluate_bpc(method, data)
        assert before > 2.5 and after < 0.7 * before, (obj, before, after)


def test_evaluate_bpc_is_repeatable_and_restores_mode():
    method = L.MaskedLM(_model(False, V=9, T=8), mask_id=8, num_tokens=8)
    data = L.language_data(torch.arange(80) % 8, 8, "mlm")
    method.train()
    assert L.evaluate_bpc(method, data, seed=1) == L.evaluate_bpc(method, data, seed=1)
    assert method.training and method.encoder.training
    method.eval()
    L.evaluate_accuracy(method, data)
    assert not method.training


# ------------------------------------------------------------------------------ sampling

def slow_greedy(model, idx, n):
    for _ in range(n):
        logits = model(idx[:, -model.block_size:])
        idx = torch.cat([idx, logits[:, -1].argmax(dim=-1, keepdim=True)], dim=1)
    return idx


def test_top_k_1_is_greedy_and_cold_temperature_approaches_greedy():
    m = _model(T=8).eval()
    prompt = _ids(B=2, T=3)
    greedy = slow_greedy(m, prompt, 12)                          # longer than block_size: crops
    g = torch.Generator().manual_seed(0)
    assert torch.equal(L.generate(m, prompt, 12, top_k=1, generator=g), greedy)
    assert torch.equal(L.generate(m, prompt, 12, temperature=1e-4, generator=g), greedy)
    # the package's sampler: the colder, the more often the most likely token is drawn
    probs = torch.tensor([0.4, 0.3, 0.2, 0.1])
    logits = probs.log().expand(4000, 4)
    temps = (2.0, 1.0, 0.5, 0.05)
    share = [(L.sample_next(logits, temperature=t, generator=g) == 0).float().mean().item() for t in temps]
    expected = [(probs ** (1 / t) / (probs ** (1 / t)).sum())[0].item() for t in temps]  # 0.32 0.4 0.5 1.0
    assert share == sorted(share) and share[-1] > 0.99        # the argmax takes almost all the mass
    assert all(abs(s - e) < 0.03 for s, e in zip(share, expected)), (share, expected)


def test_sampling_follows_the_distribution_and_top_k_keeps_k():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]])).expand(4000, 4)
    g = torch.Generator().manual_seed(0)
    freq = torch.bincount(L.sample_next(logits, generator=g).flatten(), minlength=4) / 4000
    torch.testing.assert_close(freq, torch.tensor([0.5, 0.3, 0.15, 0.05]), atol=0.03, rtol=0)
    top2 = torch.bincount(L.sample_next(logits, top_k=2, generator=g).flatten(), minlength=4) / 4000
    assert top2[2:].sum() == 0 and abs(top2[0] - 0.625) < 0.03    # renormalised 0.5 / 0.8
    assert L.sample_next(logits[:2], top_k=100, generator=g).shape == (2, 1)  # k > V is fine


@pytest.mark.parametrize("kwargs, match", [
    (dict(temperature=0), "temperature"), (dict(temperature=-1.0), "temperature"),
    (dict(temperature=float("nan")), "temperature"), (dict(temperature=float("inf")), "temperature"),
    (dict(top_k=0), "top_k"), (dict(top_k=2.5), "top_k"), (dict(max_new_tokens=-1), "max_new_tokens")])
def test_generate_bad_inputs(kwargs, match):
    args = dict(max_new_tokens=3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        L.generate(_model(), _ids(B=1, T=2), **args)


def test_generate_needs_a_causal_model_and_respects_num_tokens():
    with pytest.raises(ValueError, match="causal"):
        L.generate(_model(causal=False), _ids(B=1, T=2), 3)
    m = _model().train()
    out = L.generate(m, _ids(B=2, T=2), 30, num_tokens=3, generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, 32) and out[:, 2:].max() < 3
    assert m.training                                              # its mode given back


# ------------------------------------------------------------------------------ using the models

def test_fill_masks_fills_every_blank_with_a_character():
    m = _model(causal=False, V=6, T=8).train()
    idx = torch.tensor([[0, 5, 1, 5, 5, 2]])
    out = L.fill_masks(m, idx, mask_id=5, num_tokens=5)
    keep = idx != 5
    assert torch.equal(out[keep], idx[keep]) and out.max() < 5 and idx[0, 1] == 5  # input untouched
    assert m.training
    slow = idx.clone()                              # the same order, one blank at a time, by hand
    m.eval()
    with torch.no_grad():
        while (slow == 5).any():
            p = m(slow)[0, :, :5].softmax(-1)
            best = max((p[t].max().item(), t) for t in range(6) if slow[0, t] == 5)[1]
            slow[0, best] = p[best].argmax()
    assert torch.equal(out, slow)
    with pytest.raises(ValueError, match="bidirectional"):
        L.fill_masks(_model(causal=True, V=6), idx, 5, 5)


def test_evaluate_accuracy_counts_top1_over_targets():
    method = L.CausalLM(_model(True, V=5, T=4))
    x, y = L.language_data(torch.tensor([0, 1, 2, 3, 4, 0, 1, 2, 3]), 4, "clm")
    with torch.no_grad():
        pred = method.encoder(x).argmax(-1)
    assert L.evaluate_accuracy(method, (x, y), batch_size=1) == (pred == y).float().mean().item()


@pytest.mark.parametrize("objective", ["clm", "mlm"])
def test_language_data_refuses_a_zero_stride_for_both_objectives(objective):
    with pytest.raises(ValueError, match="stride"):
        L.language_data(torch.arange(50), 8, objective, stride=0)
