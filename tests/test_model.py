"""The encoder and the heads: shapes, unpadding, attention, init, sparse MLM, losses, errors."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bertkit.common.errors import InputError
from bertkit.modeling.config import BertConfig
from bertkit.modeling import (BertForMaskedLM, BertForNextSentencePrediction, BertForPreTraining,
                           BertForQuestionAnswering, BertForSequenceClassification,
                           BertForTokenClassification, BertModel)

CONFIG = BertConfig(vocab_size=97, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                    intermediate_size=64, max_position_embeddings=24)


def batch(seed=0, B=4, T=9):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, CONFIG.vocab_size, (B, T), generator=g)
    lengths = torch.tensor([T, 3, 6, 1][:B])
    mask = (torch.arange(T)[None] < lengths[:, None]).long()
    types = (torch.arange(T)[None] >= (lengths[:, None] // 2)).long() * mask
    return dict(input_ids=ids * mask, attention_mask=mask, token_type_ids=types)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return BertModel(CONFIG).eval()


def test_output_shapes(model):
    x = batch()
    out = model(**x, output_hidden_states=True, output_attentions=True)
    assert out.last_hidden_state.shape == (4, 9, 32) and out.pooler_output.shape == (4, 32)
    assert len(out.hidden_states) == 4 and all(h.shape == (4, 9, 32) for h in out.hidden_states)
    assert len(out.attentions) == 3 and all(a.shape == (4, 4, 9, 9) for a in out.attentions)
    plain = model(**x)
    assert plain.hidden_states is None and plain.attentions is None


def test_attention_probabilities_are_a_distribution_over_real_tokens(model):
    x = batch()
    for probs in model(**x, output_attentions=True).attentions:
        torch.testing.assert_close(probs.sum(-1), torch.ones(4, 4, 9))
        pad_keys = (x["attention_mask"] == 0)[:, None, None, :].expand_as(probs)
        assert probs[pad_keys].abs().max() == 0


def test_unpadded_path_equals_padded_path_at_real_tokens(model):
    x = batch()
    real = x["attention_mask"].bool()
    with torch.no_grad():
        fast = model(**x, output_hidden_states=True)
        full = model(**x, output_hidden_states=True, unpad=False)
        explicit = model(**x, output_hidden_states=True, output_attentions=True)
    for a, b, c in zip(fast.hidden_states, full.hidden_states, explicit.hidden_states):
        torch.testing.assert_close(a[real], b[real], atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(b, c, atol=1e-6, rtol=1e-5)  # explicit softmax == SDPA, full tensors
        assert a[~real].abs().max() == 0, "the unpadded path leaves zeros at pad positions"
    torch.testing.assert_close(fast.pooler_output, full.pooler_output, atol=1e-6, rtol=1e-5)


def test_per_sequence_attention_matches_within_rounding(model):
    x = batch()
    x["attention_mask"][3] = 0                       # a row that is all padding
    real = x["attention_mask"].bool()
    with torch.no_grad():
        exact = model(**x).last_hidden_state
        model.per_sequence_attention = True
        try:
            fast = model(**x, output_hidden_states=True)
        finally:
            model.per_sequence_attention = False
    torch.testing.assert_close(fast.last_hidden_state[real], exact[real], atol=1e-5, rtol=1e-5)
    assert fast.last_hidden_state[~real].abs().max() == 0
    assert not torch.isnan(fast.pooler_output).any()


def test_padding_does_not_change_real_token_outputs(model):
    """A sentence gives the same vectors alone and inside a padded batch."""
    x = batch()
    with torch.no_grad():
        together = model(**x).last_hidden_state
        alone = model(input_ids=x["input_ids"][1:2, :3], token_type_ids=x["token_type_ids"][1:2, :3]).last_hidden_state
    torch.testing.assert_close(together[1, :3], alone[0], atol=1e-5, rtol=1e-5)


def test_no_mask_equals_all_ones_mask(model):
    x = batch()
    with torch.no_grad():
        a = model(x["input_ids"]).last_hidden_state
        b = model(x["input_ids"], torch.ones_like(x["input_ids"])).last_hidden_state
    assert torch.equal(a, b)


def test_position_and_segment_embeddings_matter(model):
    ids = torch.randint(1, 97, (1, 6))
    with torch.no_grad():
        base = model(ids).last_hidden_state
        shifted = model(ids, position_ids=torch.arange(1, 7)[None]).last_hidden_state
        segment_b = model(ids, token_type_ids=torch.ones_like(ids)).last_hidden_state
    assert not torch.allclose(base, shifted) and not torch.allclose(base, segment_b)


def test_weight_init_like_bert():
    torch.manual_seed(0)
    m = BertForPreTraining(BertConfig.preset("tiny", vocab_size=1000))
    emb = m.bert.embeddings.word_embeddings.weight
    assert emb[0].abs().sum() == 0, "the [PAD] row starts at zero"
    assert abs(emb[1:].std().item() - 0.02) < 0.002
    q = m.bert.encoder.layer[0].attention.self.query
    assert abs(q.weight.std().item() - 0.02) < 0.002 and q.bias.abs().sum() == 0
    ln = m.bert.encoder.layer[1].output.LayerNorm
    assert torch.equal(ln.weight, torch.ones(128)) and ln.bias.abs().sum() == 0
    assert m.cls.predictions.bias.abs().sum() == 0
    assert m.cls.predictions.decoder.weight is emb, "MLM decoder is tied to the word embeddings"


def test_dropout_only_in_training(model):
    x = batch()
    model.train()
    try:
        a, b = model(**x).last_hidden_state, model(**x).last_hidden_state
    finally:
        model.eval()
    assert not torch.allclose(a, b)
    with torch.no_grad():
        assert torch.equal(model(**x).last_hidden_state, model(**x).last_hidden_state)


def test_gradients_flow_through_the_unpadded_path():
    torch.manual_seed(0)
    m = BertForSequenceClassification(CONFIG)
    x = batch()
    m(**x, labels=torch.tensor([0, 1, 1, 0])).loss.backward()
    for name, p in m.named_parameters():
        if "token_type_embeddings" in name or "word_embeddings" in name or "position" in name:
            continue
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_sparse_mlm_equals_dense_loss():
    torch.manual_seed(0)
    m = BertForPreTraining(CONFIG).eval()
    x = batch()
    labels = torch.full_like(x["input_ids"], -100)
    labels[0, 2], labels[0, 5], labels[2, 1] = 5, 7, 11
    with torch.no_grad():
        dense = m(**x).prediction_logits                               # [B, T, V]
        out = m(**x, labels=labels, next_sentence_label=torch.tensor([0, 1, 0, 1]))
    assert out.prediction_logits.shape == (3, CONFIG.vocab_size)        # only the masked rows
    torch.testing.assert_close(out.prediction_logits, dense[labels != -100])
    expected_mlm = F.cross_entropy(dense.view(-1, CONFIG.vocab_size), labels.view(-1))
    torch.testing.assert_close(out.mlm_loss, expected_mlm)
    expected_nsp = F.cross_entropy(out.seq_relationship_logits, torch.tensor([0, 1, 0, 1]))
    torch.testing.assert_close(out.loss, expected_mlm + expected_nsp)


def test_mlm_with_nothing_masked_gives_zero_not_nan():
    m = BertForMaskedLM(CONFIG)
    x = batch()
    out = m(**x, labels=torch.full_like(x["input_ids"], -100))
    assert out.loss.item() == 0.0
    out.loss.backward()


def test_mlm_head_projects_onto_word_embeddings():
    torch.manual_seed(0)
    m = BertForMaskedLM(CONFIG).eval()
    x = batch()
    with torch.no_grad():
        h = m.bert(**x).last_hidden_state
        expected = m.cls.predictions.transform(h) @ m.bert.embeddings.word_embeddings.weight.T + m.cls.predictions.bias
        torch.testing.assert_close(m(**x).logits, expected)


def test_sequence_classification_losses():
    torch.manual_seed(0)
    x = batch()
    reg = BertForSequenceClassification(CONFIG.replace(num_labels=1)).eval()
    target = torch.tensor([0.5, 1.0, -2.0, 3.0])
    out = reg(**x, labels=target)
    assert out.logits.shape == (4, 1)
    torch.testing.assert_close(out.loss, F.mse_loss(out.logits.squeeze(-1), target))
    clf = BertForSequenceClassification(CONFIG.replace(num_labels=3)).eval()
    out = clf(**x, labels=torch.tensor([0, 2, 1, 2]))
    torch.testing.assert_close(out.loss, F.cross_entropy(out.logits, torch.tensor([0, 2, 1, 2])))
    multi = torch.tensor([[1.0, 0, 1], [0, 0, 1], [1, 1, 1], [0, 0, 0]])
    out = clf(**x, labels=multi)
    torch.testing.assert_close(out.loss, F.binary_cross_entropy_with_logits(out.logits, multi))
    forced = BertForSequenceClassification(CONFIG.replace(num_labels=3, problem_type="regression")).eval()
    out = forced(**x, labels=multi)
    torch.testing.assert_close(out.loss, F.mse_loss(out.logits, multi))


def test_token_classification_and_nsp_losses():
    torch.manual_seed(0)
    x = batch()
    tagger = BertForTokenClassification(CONFIG.replace(num_labels=5)).eval()
    labels = torch.randint(0, 5, (4, 9))
    labels[x["attention_mask"] == 0] = -100
    out = tagger(**x, labels=labels)
    assert out.logits.shape == (4, 9, 5)
    torch.testing.assert_close(out.loss, F.cross_entropy(out.logits[labels != -100], labels[labels != -100]))
    nsp = BertForNextSentencePrediction(CONFIG).eval()
    out = nsp(**x, labels=torch.tensor([1, 0, 0, 1]))
    assert out.logits.shape == (4, 2)
    torch.testing.assert_close(out.loss, F.cross_entropy(out.logits, torch.tensor([1, 0, 0, 1])))


def test_question_answering_loss_ignores_out_of_range_positions():
    torch.manual_seed(0)
    qa = BertForQuestionAnswering(CONFIG).eval()
    x = batch()
    start, end = torch.tensor([1, 0, 2, 50]), torch.tensor([3, 1, 4, 60])
    out = qa(**x, start_positions=start, end_positions=end)
    assert out.start_logits.shape == (4, 9) and out.end_logits.shape == (4, 9)
    expected = (F.cross_entropy(out.start_logits[:3], start[:3]) + F.cross_entropy(out.end_logits[:3], end[:3])) / 2
    torch.testing.assert_close(out.loss, expected)
    with pytest.raises(InputError, match="num_labels=2"):
        BertForQuestionAnswering(CONFIG.replace(num_labels=3))


def test_heads_without_pooler_like_the_reference():
    assert BertForMaskedLM(CONFIG).bert.pooler is None
    assert BertForTokenClassification(CONFIG).bert.pooler is None
    assert BertForQuestionAnswering(CONFIG).bert.pooler is None
    assert BertForSequenceClassification(CONFIG).bert.pooler is not None
    assert "pooler.dense.weight" not in BertModel(CONFIG, add_pooling_layer=False).state_dict()


def test_input_errors_say_what_to_do(model):
    with pytest.raises(InputError, match="unsqueeze"):
        model(torch.tensor([1, 2, 3]))
    with pytest.raises(InputError, match="exceeds max_position_embeddings=24.*truncat"):
        model(torch.ones(1, 30, dtype=torch.long))
    with pytest.raises(TypeError, match="unexpected argument.*labelz"):
        BertForMaskedLM(CONFIG)(torch.ones(1, 3, dtype=torch.long), labelz=None)
    with pytest.raises(TypeError, match="BertConfig"):
        BertModel({"hidden_size": 32})


def test_tanh_gelu_only_when_named():
    torch.manual_seed(0)
    exact = BertModel(CONFIG).eval()
    tanh = BertModel(CONFIG.replace(hidden_act="gelu_new")).eval()
    tanh.load_state_dict(exact.state_dict())
    x = batch()
    with torch.no_grad():
        assert not torch.equal(exact(**x).last_hidden_state, tanh(**x).last_hidden_state)
