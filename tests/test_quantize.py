"""int8 dynamic quantization: exact where int8 is exact, close elsewhere, safe to hold."""
import pytest
import torch
import torch.nn.functional as F

from bertkit import BertConfig, BertForSequenceClassification, BertModel, BertTokenizer
from bertkit.common.errors import InputError
from bertkit.modeling.quantize import Int8DynamicLinear, is_quantized, quantize_dynamic_int8


def tiny_config(**kw):
    return BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=64, max_position_embeddings=64, **kw)


def test_int8_linear_is_exact_when_values_are_int8_grid_points():
    # weights whose rows each reach +-127 and inputs whose rows each reach +-127 are
    # represented exactly, so the int32-accumulated product must equal the fp32 one
    g = torch.Generator().manual_seed(0)
    linear = torch.nn.Linear(16, 8)
    with torch.no_grad():
        linear.weight.copy_(torch.randint(-127, 128, (8, 16), generator=g).float())
        linear.weight[:, 0] = 127.0
        linear.bias.copy_(torch.randn(8, generator=g))
    x = torch.randint(-127, 128, (5, 16), generator=g).float()
    x[:, 3] = -127.0
    with torch.no_grad():
        assert torch.equal(Int8DynamicLinear(linear)(x), linear(x))


def test_int8_linear_error_is_small_and_per_token():
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 48)
    x = torch.randn(3, 7, 64)
    x[0, 0] *= 1000.0                        # one huge token must not spoil the others' precision
    with torch.no_grad():
        exact, approx = linear(x), Int8DynamicLinear(linear)(x)
    assert approx.shape == exact.shape == (3, 7, 48)
    rel = (approx - exact).norm(dim=-1) / exact.norm(dim=-1)
    assert rel.max() < 0.03
    assert rel[1:].max() < 0.03 and rel[0, 1:].max() < 0.03


def test_quantized_model_close_to_fp32_and_original_untouched():
    torch.manual_seed(0)
    model = BertModel(tiny_config()).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    quantized = quantize_dynamic_int8(model)
    assert is_quantized(quantized) and not is_quantized(model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    n_int8 = sum(isinstance(m, Int8DynamicLinear) for m in quantized.modules())
    assert n_int8 == 2 * 6                   # Q, K, V, attention out, FFN in, FFN out per layer
    ids = torch.randint(1, 120, (4, 20))
    mask = torch.ones_like(ids)
    mask[1, 12:] = 0                         # padded rows go through the unpadded path too
    with torch.no_grad():
        a = model(ids, mask).last_hidden_state[mask.bool()]
        b = quantized(ids, mask).last_hidden_state[mask.bool()]
    assert F.cosine_similarity(a, b, dim=-1).min() > 0.99


def test_heads_quantize_and_refuse_to_save(tmp_path):
    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny_config(num_labels=3)).eval()
    quantized = quantize_dynamic_int8(model)
    ids = torch.randint(1, 120, (2, 10))
    with torch.no_grad():
        assert torch.allclose(quantized(ids).logits, model(ids).logits, atol=0.05)
    with pytest.raises(InputError, match="save the fp32 model"):
        quantized.save_pretrained(tmp_path / "q")
    assert not (tmp_path / "q").exists()
    with pytest.raises(InputError, match="already int8"):
        quantize_dynamic_int8(quantized)
    with pytest.raises(TypeError, match="BertModel or head"):
        quantize_dynamic_int8(torch.nn.Linear(2, 2))


def test_real_minilm_sentence_vectors_stay_close(minilm_path):
    from bertkit import pipeline
    sentences = ["I love Paris.", "The movie was a complete waste of time.",
                 "Stocks fell sharply after the announcement.", "그 영화 정말 재미있었어요"]
    fp32 = pipeline("sentence-similarity", model=minilm_path, device="cpu")
    int8 = pipeline("sentence-similarity", model=minilm_path, device="cpu", quantize="int8")
    assert is_quantized(int8.model) and not is_quantized(fp32.model)
    a, b = fp32.embed(sentences), int8.embed(sentences)
    cos = (torch.as_tensor(a) * torch.as_tensor(b)).sum(-1)
    assert cos.min() > 0.97
    with pytest.raises(ValueError, match="quantize='int8'"):
        pipeline("feature-extraction", model=minilm_path, device="cpu", quantize="int4")
