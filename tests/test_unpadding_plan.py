"""Host-built unpadding plans (`plan_unpadding`, `unpad=plan`): same numbers as the in-forward
layout, static row counts, and block-diagonal attention for packed rows."""
from __future__ import annotations

import warnings

import pytest
import torch

from bertkit.common.errors import InputError
from bertkit.modeling import BertForPreTraining, BertModel
from bertkit.modeling.config import BertConfig
from bertkit.modeling.layout import Unpadding, plan_unpadding


def tiny(dropout: float = 0.0, seed: int = 0, **kw) -> BertConfig:
    torch.manual_seed(seed)
    return BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=64, max_position_embeddings=64, hidden_dropout_prob=dropout,
                      attention_probs_dropout_prob=dropout, **kw)


def ragged_batch(lengths=(9, 3, 16, 1, 12), T=16, seed=1):
    g = torch.Generator().manual_seed(seed)
    B = len(lengths)
    ids = torch.randint(5, 50, (B, T), generator=g)
    mask = (torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]).long()
    return ids * mask, mask


def test_plan_lists_the_real_tokens_and_rounds_rows_up():
    ids, mask = ragged_batch()
    plan = plan_unpadding(mask)
    assert plan.index.tolist() == mask.reshape(-1).nonzero().squeeze(-1).tolist()
    assert plan.lengths == [9, 3, 16, 1, 12] and plan.segments is None
    rounded = plan_unpadding(mask, multiple=64)
    assert rounded.index.numel() == 64 and sum(rounded.lengths) == 64 and rounded.lengths[-1] == 64 - 41
    assert (rounded.scatter[41:] == ids.numel()).all()                   # pad rows go to the spare slot
    with pytest.raises(InputError):
        plan_unpadding(mask, multiple=0)


def test_planned_forward_is_bit_identical_to_the_in_forward_layout():
    model = BertModel(tiny()).eval()
    ids, mask = ragged_batch()
    plain = model(ids, attention_mask=mask).last_hidden_state
    planned = model(ids, attention_mask=mask, unpad=plan_unpadding(mask)).last_hidden_state
    assert torch.equal(plain, planned)


@pytest.mark.parametrize("per_sequence", [False, True])
def test_rounded_rows_change_nothing_real_forward_and_backward(per_sequence):
    ids, mask = ragged_batch()
    labels = torch.where(torch.rand(ids.shape, generator=torch.Generator().manual_seed(3)) < 0.3, ids, -100) * mask
    labels = labels.masked_fill(mask == 0, -100)
    labels[:, 0] = ids[:, 0]
    results = []
    for plan in (None, plan_unpadding(mask, multiple=64)):
        model = BertForPreTraining(tiny())
        model.bert.per_sequence_attention = per_sequence
        out = model(ids, attention_mask=mask, labels=labels, next_sentence_label=torch.zeros(5, dtype=torch.long),
                    **({"unpad": plan} if plan is not None else {}))
        out.loss.backward()
        results.append((out.loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}))
    (loss_a, grads_a), (loss_b, grads_b) = results
    torch.testing.assert_close(loss_a, loss_b, rtol=0, atol=1e-6)
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], rtol=1e-5, atol=1e-6, msg=name)


def test_packed_rows_compute_each_document_as_if_alone():
    """Two rows of packed documents (positions restarting) vs every document in its own row."""
    torch.manual_seed(0)
    docs = [torch.randint(5, 50, (n,)) for n in (5, 7, 3, 9, 4)]
    rows = [[0, 1, 2], [3, 4]]
    T = 16
    ids = torch.zeros(2, T, dtype=torch.long)
    mask, positions = torch.zeros_like(ids), torch.zeros_like(ids)
    for r, members in enumerate(rows):
        at = 0
        for d in members:
            n = len(docs[d])
            ids[r, at:at + n], mask[r, at:at + n], positions[r, at:at + n] = docs[d], 1, torch.arange(n)
            at += n
    lengths = [[len(docs[d]) for d in members] for members in rows]
    for per_sequence in (False, True):
        model = BertModel(tiny(), per_sequence_attention=per_sequence).eval()
        packed = model(ids, attention_mask=mask, position_ids=positions,
                       unpad=plan_unpadding(mask, multiple=8, document_lengths=lengths)).last_hidden_state
        for r, members in enumerate(rows):
            at = 0
            for d in members:
                alone = model(docs[d][None]).last_hidden_state[0]
                torch.testing.assert_close(packed[r, at:at + len(docs[d])], alone, rtol=1e-5, atol=1e-5)
                at += len(docs[d])
        attentions = model(ids, attention_mask=mask, position_ids=positions, output_attentions=True,
                           unpad=plan_unpadding(mask, document_lengths=lengths)).attentions[0]
        assert attentions[0, :, 0, 5:].abs().max() == 0          # document 1 never looks at document 2


def test_packed_backward_has_no_nan_and_pad_rows_get_no_gradient():
    model = BertForPreTraining(tiny())
    ids, mask = ragged_batch(lengths=(10, 6), T=12)
    plan = plan_unpadding(mask, multiple=32, document_lengths=[[4, 6], [6]])
    labels = ids.masked_fill(mask == 0, -100)
    out = model(ids, attention_mask=mask, labels=labels, unpad=plan)
    out.loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_plan_moves_and_rejects_inconsistent_documents():
    ids, mask = ragged_batch(lengths=(4, 2), T=4)
    plan = plan_unpadding(mask, document_lengths=[[1, 3], [2]])
    moved = plan.to("cpu")
    assert isinstance(moved, Unpadding) and moved.segments.tolist() == [[0, 1, 1, 1], [2, 2, -1, -1]]
    with pytest.raises(InputError, match="do not add up"):
        plan_unpadding(mask, document_lengths=[[1, 2], [2]])


def test_compiled_model_reuses_one_graph_per_row_bucket():
    """Under torch.compile a plan keeps the unpadded path, and batches whose real-token
    counts fall in the same bucket share one graph (no recompilation per batch)."""
    torch._dynamo.reset()
    counts = torch._dynamo.utils.counters
    counts.clear()
    model = BertModel(tiny(), add_pooling_layer=False).eval()
    compiled = torch.compile(model, backend="aot_eager", dynamic=False)
    for lengths in ((9, 3, 16, 1, 12), (10, 4, 14, 2, 11), (16, 16, 2, 3, 4)):
        ids, mask = ragged_batch(lengths=lengths)
        plan = plan_unpadding(mask, multiple=64)
        out = compiled(ids, attention_mask=mask, unpad=plan).last_hidden_state
        torch.testing.assert_close(out, model(ids, attention_mask=mask).last_hidden_state, rtol=1e-5, atol=1e-5)
    assert counts["stats"]["unique_graphs"] == 1, dict(counts["stats"])


def test_mlm_positions_rounded_up_give_the_same_loss_and_gradients():
    """MLM positions padded to a multiple (the position B*T means "no token"): the [M, V] projection
    keeps a few shapes over a run; loss and gradients are those of the exact positions."""
    from bertkit.modeling.heads import masked_token_positions
    ids, mask = ragged_batch()
    labels = torch.full_like(ids, -100)
    labels[0, 2], labels[2, 5], labels[2, 15], labels[4, 0] = ids[0, 2], ids[2, 5], ids[2, 15], ids[4, 0]
    exact, padded = masked_token_positions(labels), masked_token_positions(labels, multiple=16)
    assert padded.numel() == 16 and torch.equal(padded[:4], exact) and (padded[4:] == ids.numel()).all()
    assert masked_token_positions(torch.full_like(ids, -100), multiple=16).numel() == 0    # nothing masked: none
    results = []
    for positions in (exact, padded):
        model = BertForPreTraining(tiny())
        loss = model(ids, attention_mask=mask, labels=labels, masked_positions=positions).mlm_loss
        loss.backward()
        results.append((loss.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]))
    assert torch.allclose(results[0][0], results[1][0], rtol=0, atol=1e-6)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(results[0][1], results[1][1]))


@pytest.mark.parametrize("multiple,packed", [(1, False), (16, False), (16, True)])
def test_attention_on_the_blocks_of_a_plan_matches_the_padded_attention(multiple, packed):
    """`per_sequence_attention=True` with a plan attends within its blocks (sequences, or the documents
    of packed rows) without padding: outputs within 1e-5 of the padded, masked path, gradients within
    1e-5 relative to their largest value."""
    ids, mask = ragged_batch()
    docs = [[4, 5], [3], [6, 6, 4], [1], [12]] if packed else None
    plan = plan_unpadding(mask, multiple=multiple, document_lengths=docs)
    assert plan.offsets.tolist() == [0, *torch.tensor(plan.lengths).cumsum(0).tolist()]
    results = []
    for per_sequence in (False, True):
        model = BertModel(tiny(seed=3), per_sequence_attention=per_sequence)
        out = model(ids, attention_mask=mask, unpad=plan).last_hidden_state
        (out * torch.linspace(0, 1, out.shape[-1])).sum().backward()
        results.append((out.detach(), [p.grad for p in model.parameters() if p.grad is not None]))
    (a, grads_a), (b, grads_b) = results
    assert (a - b).abs().max() <= 1e-5, (a - b).abs().max()
    assert all((x - y).abs().max() <= 1e-5 * max(1.0, float(x.abs().max())) for x, y in zip(grads_a, grads_b))


def test_nested_attention_in_one_call_matches_one_sequence_at_a_time():
    """The GPU's one-call attention over jagged blocks (run here on the CPU) equals the per-block loop."""
    from bertkit.modeling.encoder import BertSelfAttention
    attention = BertSelfAttention(tiny(seed=4)).eval()
    lengths = [9, 3, 16, 1, 12]
    x = torch.randn(sum(lengths), 32)
    offsets = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], dtype=torch.int32)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")                  # torch: CPU nested tensors are a prototype
        one_call = attention.attend_varlen(x, offsets, longest=16)                 # [N, H]
        assert (one_call - attention.attend_per_sequence(x, lengths)).abs().max() <= 1e-5
