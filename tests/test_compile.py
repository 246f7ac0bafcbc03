"""torch.compile captures the whole encoder (no graph breaks) and gives the eager numbers."""
import pytest
import torch

from bertkit import BertConfig, BertForSequenceClassification


def test_compiled_model_matches_eager_without_graph_breaks():
    dynamo = pytest.importorskip("torch._dynamo")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=32, num_labels=3)
    model = BertForSequenceClassification(config).eval()
    ids = torch.randint(1, 100, (3, 12))
    mask = torch.ones_like(ids)
    mask[2, 7:] = 0                                       # padding: eager would take the unpadded path
    explanation = dynamo.explain(model.bert)(ids, mask)
    assert explanation.graph_break_count == 0, explanation.break_reasons
    compiled = torch.compile(model, dynamic=False)
    with torch.inference_mode():
        torch.testing.assert_close(compiled(ids, attention_mask=mask).logits,
                                   model(ids, attention_mask=mask).logits, atol=1e-5, rtol=1e-5)
