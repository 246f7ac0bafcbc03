"""bench/bench_scaling.py: the FLOPs formula against a hand count, and a one-point smoke sweep."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from bertkit.modeling.config import BertConfig
from bertkit.modeling import BertModel
from conftest import import_bench

bench_scaling = import_bench("bench_scaling")
bert_training_flops = import_bench("_common").bert_training_flops


def test_flops_per_token_matches_a_hand_count_for_tiny():
    config = BertConfig.preset("tiny")                   # L2, H128, A2, F512
    T, H, F = 16, 128, 512
    qkv, out, ffn = 3 * 2 * H * H, 2 * H * H, 2 * H * F + 2 * F * H   # 98,304 + 32,768 + 262,144
    scores, weighted = 2 * T * H, 2 * T * H                           # 4,096 + 4,096
    per_layer = qkv + out + ffn + scores + weighted                   # 401,408
    f = bench_scaling.flops_per_token(config, T)
    assert f["total"] == 2 * per_layer == 802_816
    assert f["attention"] == 2 * (scores + weighted)
    assert bench_scaling.attention_share(config, T) == pytest.approx(T / (6 * H + T))


def test_matmul_params_are_the_encoder_linear_weights():
    """2 x (weights of every nn.Linear in the encoder layers) = the projection FLOPs per token."""
    config = BertConfig.preset("tiny", vocab_size=100)
    model = BertModel(config)
    weights = sum(m.weight.numel() for name, m in model.named_modules()
                  if isinstance(m, nn.Linear) and name.startswith("encoder."))
    assert weights > 0
    assert bench_scaling.matmul_params(config) == weights
    assert bench_scaling.flops_per_token(config, 64)["projections"] == 2 * weights


def test_forward_flops_is_the_forward_third_of_training_flops():
    """_common.bert_training_flops = 3 x forward; with no MLM/NSP rows the forward is the encoder's."""
    config = BertConfig.preset("mini")
    tokens, T = 8 * 128, 128
    assert 3 * bench_scaling.forward_flops(config, tokens, T) == pytest.approx(
        bert_training_flops(config, tokens, T, masked=0, nsp_rows=0))


def test_model_size_grows_about_12_L_H_squared():
    tiny, base = BertConfig.preset("tiny"), BertConfig.preset("base")
    assert bench_scaling.matmul_params(base) == 12 * 12 * 768 ** 2
    assert bench_scaling.matmul_params(base) / bench_scaling.matmul_params(tiny) == 216


def test_capped_batch_keeps_one_call_under_the_budget():
    base = BertConfig.preset("base")
    b = bench_scaling.capped_batch(base, 8, 512, max_gflop=200)
    assert 1 <= b < 8
    assert bench_scaling.forward_flops(base, b * 512, 512) <= 200e9
    assert bench_scaling.capped_batch(BertConfig.preset("tiny"), 8, 128, max_gflop=200) == 8


def test_quick_sweep_one_point(tmp_path):
    pytest.importorskip("transformers")
    old = torch.get_num_threads()
    try:
        results = bench_scaling.main(["--quick", "--sweeps", "model", "--sizes", "tiny", "--threads", "1",
                                      "--batch", "2", "--seq", "32", "--out", str(tmp_path)])
    finally:
        torch.set_num_threads(old)
    (point,) = results["model"]
    assert (point["model"], point["B"], point["T"]) == ("tiny", 2, 32)
    assert point["bertkit_tps"] > 0 and point["reference_tps"] > 0
    assert point["diff"] < 1e-4                           # same weights, same maths
    text = (tmp_path / "scaling.md").read_text()
    assert "| tiny | 2 | 32 |" in text and "Model size" in text
    if bench_scaling.pyplot() is not None:
        assert (tmp_path / "scaling_model.png").stat().st_size > 1000
