"""Reading Google's TensorFlow BERT checkpoints without TensorFlow (bertkit.modeling.tf_checkpoint).

The fixtures in tests/fixtures/tf/ were written by real TensorFlow (see the README there),
together with TensorFlow's own outputs; small hand-made checkpoints come from the numpy
TensorBundle writer in bench/bench_tf_load.py.  No TensorFlow, no network.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import import_bench

from bertkit.modeling import tf_checkpoint as tfc
from bertkit.modeling.tf_checkpoint import TFCheckpointError

writer = import_bench("bench_tf_load")

FIXTURES = Path(__file__).parent / "fixtures" / "tf"
UNCASED = FIXTURES / "uncased_L-2_H-32_A-2"           # with adam_m / adam_v slots and global_step
CASED = FIXTURES / "cased_L-2_H-32_A-4"               # with a string tensor, "fixture_note"
TOLERANCE = 1e-5


def copy_fixture(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / src.name
    shutil.copytree(src, dst)
    return dst


def rewrite_index(folder: Path, patch) -> None:
    """Re-encode a checkpoint's index after patch(name, Entry) -> Entry | None (None drops it); fresh CRCs."""
    index = folder / "bert_model.ckpt.index"
    items = []
    for key, value in tfc._read_table(index):
        if key:
            entry = patch(key.decode(), tfc._parse_entry(value))
            if entry is None:
                continue
            value = writer.encode_entry(entry)
        items.append((key, value))
    index.write_bytes(writer.encode_table(items))


def config_of(folder: Path, **changes) -> dict:
    return {**json.loads((folder / "bert_config.json").read_text()), **changes}


# ---------------------------------------------------------------- reading the TensorFlow-written fixtures
@pytest.mark.parametrize("folder", [UNCASED, CASED], ids=["uncased", "cased"])
def test_fixture_tensors_have_googles_names_and_shapes(folder):
    tensors = tfc.read_tf_checkpoint(folder, verify=True)        # TensorFlow's own data CRCs check out
    expected = tfc.expected_tf_shapes(tfc.read_bert_config_json(folder))
    assert len(expected) == 5 + 16 * 2 + 2 + 7 == 46
    for name, shape in expected.items():
        assert tensors[name].shape == shape and tensors[name].dtype == np.float32, name
    extra = set(tensors) - set(expected)
    if folder == UNCASED:
        assert extra == {f"{n}/adam_{s}" for n in expected for s in "mv"} | {"global_step"}
        assert tensors["global_step"].dtype == np.int64 and int(tensors["global_step"]) == 123456
        assert tensors.skipped == {}
    else:
        assert extra == set()
        assert list(tensors.skipped) == ["fixture_note"] and "DT_STRING" in tensors.skipped["fixture_note"]


def test_optimizer_slots_and_global_step_are_skipped():
    tensors = tfc.read_tf_checkpoint(UNCASED, slots=False)
    assert len(tensors.skipped) == 2 * 46 and all(v == "an optimizer slot" for v in tensors.skipped.values())
    assert "global_step" in tensors
    config, state = tfc.load_tf_bert(UNCASED)
    assert len(state) == 46
    assert not any("adam" in k or "global_step" in k for k in state)


def test_names_map_to_the_standard_names_with_kernels_transposed():
    tensors = tfc.read_tf_checkpoint(UNCASED)
    state = tfc.tf_to_bert_state(tensors, tfc.read_bert_config_json(UNCASED))
    pairs = {
        "bert/embeddings/word_embeddings": ("bert.embeddings.word_embeddings.weight", False),
        "bert/embeddings/LayerNorm/gamma": ("bert.embeddings.LayerNorm.weight", False),
        "bert/embeddings/LayerNorm/beta": ("bert.embeddings.LayerNorm.bias", False),
        "bert/encoder/layer_1/attention/self/query/kernel": ("bert.encoder.layer.1.attention.self.query.weight", True),
        "bert/encoder/layer_1/attention/self/query/bias": ("bert.encoder.layer.1.attention.self.query.bias", False),
        "bert/encoder/layer_0/attention/output/dense/kernel": ("bert.encoder.layer.0.attention.output.dense.weight",
                                                               True),
        "bert/encoder/layer_0/attention/output/LayerNorm/beta": ("bert.encoder.layer.0.attention.output.LayerNorm"
                                                                 ".bias", False),
        "bert/encoder/layer_0/intermediate/dense/kernel": ("bert.encoder.layer.0.intermediate.dense.weight", True),
        "bert/encoder/layer_0/output/dense/kernel": ("bert.encoder.layer.0.output.dense.weight", True),
        "bert/encoder/layer_0/output/LayerNorm/gamma": ("bert.encoder.layer.0.output.LayerNorm.weight", False),
        "bert/pooler/dense/kernel": ("bert.pooler.dense.weight", True),
        "cls/predictions/transform/dense/kernel": ("cls.predictions.transform.dense.weight", True),
        "cls/predictions/transform/LayerNorm/gamma": ("cls.predictions.transform.LayerNorm.weight", False),
        "cls/predictions/output_bias": ("cls.predictions.bias", False),
        "cls/seq_relationship/output_weights": ("cls.seq_relationship.weight", False),    # already [2, H]
        "cls/seq_relationship/output_bias": ("cls.seq_relationship.bias", False),
    }
    for tf_name, (name, transposed) in pairs.items():
        want = tensors[tf_name].T if transposed else tensors[tf_name]
        assert torch.equal(state[name], torch.from_numpy(np.ascontiguousarray(want))), name
        assert state[name].is_contiguous()
    assert state["bert.encoder.layer.0.intermediate.dense.weight"].shape == (128, 32)     # [out, in]
    assert state["cls.seq_relationship.weight"].shape == (2, 32)


# ---------------------------------------------------------------- parity with TensorFlow's own outputs
def transformers_outputs(folder: Path, state: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    transformers = pytest.importorskip("transformers")
    config = tfc.read_bert_config_json(folder)
    model = transformers.BertForPreTraining(transformers.BertConfig(**config)).eval()
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and set(missing) <= {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias"}
    model.cls.predictions.decoder.weight = model.bert.embeddings.word_embeddings.weight    # tied, as in BERT
    model.cls.predictions.decoder.bias = model.cls.predictions.bias
    data = np.load(folder / "tf_outputs.npz")
    feed = {k: torch.from_numpy(data[k]).long() for k in ("input_ids", "token_type_ids", "attention_mask")}
    with torch.no_grad():
        out = model(**feed, output_hidden_states=True)
        pooled = model.bert(**feed).pooler_output
    return {"sequence_output": out.hidden_states[-1].numpy(), "pooled_output": pooled.numpy(),
            "mlm_logits": out.prediction_logits.numpy(), "nsp_logits": out.seq_relationship_logits.numpy()}


def max_diffs(folder: Path, state: dict[str, torch.Tensor]) -> dict[str, float]:
    tf = np.load(folder / "tf_outputs.npz")
    ours = transformers_outputs(folder, state)
    return {k: float(np.abs(ours[k] - tf[k]).max()) for k in ours}


@pytest.mark.parametrize("folder", [UNCASED, CASED], ids=["uncased", "cased"])
def test_transformers_with_the_loaded_weights_matches_tensorflow(folder):
    _, state = tfc.load_tf_bert(folder)
    diffs = max_diffs(folder, state)
    print(f"{folder.name}: max |transformers - TensorFlow|: " + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items()))
    assert max(diffs.values()) <= TOLERANCE, diffs


@pytest.mark.parametrize("mistake", ["query", "key", "value", "attention_output", "pooler", "transform",
                                     "layer_norm_swapped"])
def test_the_fixture_catches_a_mapping_mistake(mistake):
    """Random weights, gammas and betas: each plausible mapping bug is far outside the tolerance."""
    _, state = tfc.load_tf_bert(UNCASED)
    name = {"query": "bert.encoder.layer.0.attention.self.query.weight",
            "key": "bert.encoder.layer.1.attention.self.key.weight",
            "value": "bert.encoder.layer.0.attention.self.value.weight",
            "attention_output": "bert.encoder.layer.1.attention.output.dense.weight",
            "pooler": "bert.pooler.dense.weight", "transform": "cls.predictions.transform.dense.weight"}.get(mistake)
    if name:
        state[name] = state[name].t().contiguous()                # a kernel left untransposed
    else:
        w, b = "bert.embeddings.LayerNorm.weight", "bert.embeddings.LayerNorm.bias"
        state[w], state[b] = state[b], state[w]
    assert max(max_diffs(UNCASED, state).values()) > 10 * TOLERANCE


# ---------------------------------------------------------------- the format itself
def test_crc32c_known_values_and_the_vectorised_path():
    assert tfc.crc32c(b"") == 0
    assert tfc.crc32c(b"123456789") == 0xE3069283
    assert tfc.crc32c(bytes(32)) == 0x8A9136AA                   # RFC 3720 B.4 test vectors
    assert tfc.crc32c(b"\xff" * 32) == 0x62A8AB43
    assert tfc.crc32c(bytes(range(32))) == 0x46DD794E
    data = np.random.default_rng(0).integers(0, 256, 3 * 8192 + 1234, dtype=np.uint8)   # lanes + a tail

    def bytewise(buf: bytes) -> int:
        crc = 0xFFFFFFFF
        for b in buf:
            crc = tfc._T0_LIST[(crc ^ b) & 0xFF] ^ crc >> 8
        return crc ^ 0xFFFFFFFF
    for part in (data, data[3:], data[:8192]):                     # unaligned start, exactly 8 lanes
        assert tfc.crc32c(part) == tfc.crc32c(part.tobytes()) == bytewise(part.tobytes())


@pytest.mark.parametrize("folder", [UNCASED, CASED], ids=["uncased", "cased"])
def test_entry_and_header_encoding_round_trips_on_tensorflows_bytes(folder):
    for key, value in tfc._read_table(folder / "bert_model.ckpt.index"):
        if key:
            assert writer.encode_entry(tfc._parse_entry(value)) == value, key
        else:
            assert value == writer.header_bytes()


def test_writer_round_trip_every_dtype_over_many_blocks(tmp_path):
    rng = np.random.default_rng(0)
    tensors = {f"t/{i:02d}/{dtype.__name__}": rng.standard_normal((i % 4 + 1, 3)).astype(dtype)
               for i, dtype in enumerate([np.float32, np.float16, np.float64, np.int32, np.int64] * 5)}
    tensors["scalar"] = np.array(7, np.int64)
    tensors["empty"] = np.zeros((0, 4), np.float32)
    tensors["bf16"] = np.array([0x3F80, 0xC040, 0x3E20], np.uint16)    # bfloat16 bits of 1.0, -3.0, 0.15625
    writer.write_tf_checkpoint(tmp_path / "x", tensors, {"bf16": 14}, block_size=64, restart_interval=2)
    got = tfc.read_tf_checkpoint(tmp_path / "x", verify=True)
    assert set(got) == set(tensors)
    for name, want in tensors.items():
        if name != "bf16":
            assert got[name].dtype == want.dtype and np.array_equal(got[name], want), name
    assert got["bf16"].dtype == np.float32 and got["bf16"].tolist() == [1.0, -3.0, 0.15625]


def test_a_checkpoint_sharded_over_two_data_files(tmp_path):
    a, b = np.arange(6, dtype=np.float32).reshape(2, 3), np.array([1, 2], np.int64)
    items = []
    for shard, (name, arr) in enumerate([("a", a), ("b", b)]):
        Path(f"{tmp_path}/x.data-{shard:05d}-of-00002").write_bytes(b"pad!" + arr.tobytes())
        entry = tfc.Entry({np.float32: 1, np.int64: 9}[arr.dtype.type], arr.shape, shard, 4, arr.nbytes,
                          tfc._mask(tfc.crc32c(arr.tobytes())))
        items.append((name.encode(), writer.encode_entry(entry)))
    (tmp_path / "x.index").write_bytes(writer.encode_table([(b"", writer.header_bytes(num_shards=2))] + items))
    got = tfc.read_tf_checkpoint(tmp_path / "x", verify=True)
    assert np.array_equal(got["a"], a) and np.array_equal(got["b"], b)
    Path(f"{tmp_path}/x.data-00001-of-00002").unlink()
    with pytest.raises(TFCheckpointError, match=r"x.data-00001-of-00002 is missing \(the checkpoint has 2 data file"):
        tfc.read_tf_checkpoint(tmp_path / "x")


def test_prefix_resolution(tmp_path):
    prefix = UNCASED / "bert_model.ckpt"
    for path in (UNCASED, prefix, f"{prefix}.index", f"{prefix}.data-00000-of-00001"):
        assert tfc.read_tf_index(path)[0] == prefix
    assert tfc.is_tf_checkpoint_dir(UNCASED) and tfc.is_tf_checkpoint_dir(CASED)
    assert not tfc.is_tf_checkpoint_dir(tmp_path) and not tfc.is_tf_checkpoint_dir(UNCASED / "vocab.txt")
    for name in ("model.ckpt-100", "model.ckpt-200"):
        writer.write_tf_checkpoint(tmp_path / name, {"x": np.zeros(2, np.float32)})
    with pytest.raises(TFCheckpointError, match=r"several checkpoints \(model.ckpt-100, model.ckpt-200\)"):
        tfc.read_tf_checkpoint(tmp_path)
    assert list(tfc.read_tf_checkpoint(tmp_path / "model.ckpt-200")) == ["x"]


# ---------------------------------------------------------------- every fault, its own error
def test_missing_data_file(tmp_path):
    folder = copy_fixture(CASED, tmp_path)
    (folder / "bert_model.ckpt.data-00000-of-00001").unlink()
    with pytest.raises(TFCheckpointError, match=r"data file .*bert_model.ckpt.data-00000-of-00001 is missing"):
        tfc.read_tf_checkpoint(folder)


def test_missing_index_file(tmp_path):
    folder = copy_fixture(CASED, tmp_path)
    (folder / "bert_model.ckpt.index").unlink()
    with pytest.raises(TFCheckpointError, match="no TensorFlow checkpoint in .*expected bert_model.ckpt.index"):
        tfc.read_tf_checkpoint(folder)
    with pytest.raises(TFCheckpointError, match=r"index file .*bert_model.ckpt.index is missing"):
        tfc.read_tf_checkpoint(folder / "bert_model.ckpt")


def test_truncated_data_file(tmp_path):
    folder = copy_fixture(CASED, tmp_path)
    data = folder / "bert_model.ckpt.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:data.stat().st_size // 2])
    with pytest.raises(TFCheckpointError, match=r"needs bytes \[\d+, \d+\) of .*which has \d+: the data file is "
                                                "truncated"):
        tfc.read_tf_checkpoint(folder)


def test_corrupt_index_block_fails_its_crc(tmp_path):
    folder = copy_fixture(CASED, tmp_path)
    index = folder / "bert_model.ckpt.index"
    raw = bytearray(index.read_bytes())
    raw[40] ^= 0x01                                          # inside the first data block
    index.write_bytes(bytes(raw))
    with pytest.raises(TFCheckpointError, match="table block at byte 0 fails its CRC32C check: the index file is "
                                                "corrupt"):
        tfc.read_tf_checkpoint(folder)


def test_not_a_checkpoint_index(tmp_path):
    (tmp_path / "bert_model.ckpt.index").write_bytes(b"{not a table}" * 10)
    with pytest.raises(TFCheckpointError, match="not a TensorFlow checkpoint index"):
        tfc.read_tf_checkpoint(tmp_path)
    (tmp_path / "bert_model.ckpt.index").write_bytes(b"tiny")
    with pytest.raises(TFCheckpointError, match="only 4 bytes, too few for a checkpoint index"):
        tfc.read_tf_checkpoint(tmp_path)


def test_snappy_compressed_index_is_refused(tmp_path):
    writer.write_tf_checkpoint(tmp_path / "bert_model.ckpt", {"x": np.ones(3, np.float32)})
    items = list(tfc._read_table(tmp_path / "bert_model.ckpt.index"))
    (tmp_path / "bert_model.ckpt.index").write_bytes(writer.encode_table(items, compression=1))
    with pytest.raises(TFCheckpointError, match="snappy-compressed; bertkit reads the uncompressed tables"):
        tfc.read_tf_checkpoint(tmp_path)


def test_data_crc_mismatch_only_with_verify(tmp_path):
    folder = copy_fixture(CASED, tmp_path)
    entry = tfc.read_tf_index(folder)[1]["bert/pooler/dense/kernel"]
    data = folder / "bert_model.ckpt.data-00000-of-00001"
    raw = bytearray(data.read_bytes())
    raw[entry.offset + 5] ^= 0x40
    data.write_bytes(bytes(raw))
    tfc.read_tf_checkpoint(folder)                              # unverified: reads (wrong) numbers
    with pytest.raises(TFCheckpointError, match="bert/pooler/dense/kernel: its bytes in .* fail their CRC32C"):
        tfc.read_tf_checkpoint(folder, verify=True)


def test_unknown_dtype_is_skipped_until_needed(tmp_path):
    folder = copy_fixture(UNCASED, tmp_path)
    name = "bert/embeddings/word_embeddings"

    def complex64(key, e):
        if key in (name, name + "/adam_m"):
            e.dtype = 8                                         # DT_COMPLEX64
        return e
    rewrite_index(folder, complex64)
    tensors = tfc.read_tf_checkpoint(folder)
    assert set(tensors.skipped) == {name, name + "/adam_m"}
    with pytest.raises(TFCheckpointError, match=f"^{name} is of dtype code 8 \\(DT_COMPLEX64\\), which bertkit "
                                                "cannot load"):
        tfc.tf_to_bert_state(tensors, tfc.read_bert_config_json(folder))
    with pytest.raises(TFCheckpointError, match="dtype code 8"):
        tfc.read_tf_checkpoint(folder, names=[name])
    rewrite_index(folder, lambda key, e: complex64(key, e) if key != name else
                  tfc.Entry(**{**e.__dict__, "dtype": 1}))
    assert len(tfc.load_tf_bert(folder)[1]) == 46               # an unneeded exotic tensor does no harm


def test_entry_size_inconsistent_with_dtype_and_shape(tmp_path):
    folder = copy_fixture(CASED, tmp_path)
    rewrite_index(folder, lambda key, e: tfc.Entry(**{**e.__dict__, "size": e.size + 4})
                  if key == "bert/pooler/dense/bias" else e)
    with pytest.raises(TFCheckpointError, match=r"bert/pooler/dense/bias: the index says 132 bytes, but float \[32\] "
                                                "takes 128: the index does not match its data"):
        tfc.read_tf_checkpoint(folder)


def test_partitioned_variable_and_big_endian_are_refused(tmp_path):
    writer.write_tf_checkpoint(tmp_path / "bert_model.ckpt", {"a": np.ones(2, np.float32), "b": np.ones(2, np.float32)})
    items = list(tfc._read_table(tmp_path / "bert_model.ckpt.index"))
    sliced = [(k, v + writer._field(7, b"") if k == b"b" else v) for k, v in items]     # one TensorSliceProto
    (tmp_path / "bert_model.ckpt.index").write_bytes(writer.encode_table(sliced))
    assert "partitioned variable (1 slices)" in tfc.read_tf_checkpoint(tmp_path).skipped["b"]
    big = [(k, v + writer._field(2, 1) if k == b"" else v) for k, v in items]          # endianness BIG
    (tmp_path / "bert_model.ckpt.index").write_bytes(writer.encode_table(big))
    with pytest.raises(TFCheckpointError, match="written on a big-endian machine"):
        tfc.read_tf_checkpoint(tmp_path)


# ---------------------------------------------------------------- checkpoint vs config
def test_config_with_more_layers_than_the_checkpoint():
    with pytest.raises(TFCheckpointError, match=r"^bert/encoder/layer_2/\.\.\. missing: the config says 3 layers but "
                                                "the checkpoint has 2"):
        tfc.tf_to_bert_state(tfc.read_tf_checkpoint(CASED), config_of(CASED, num_hidden_layers=3))
    with pytest.raises(TFCheckpointError, match="extra layers: the config says 1 layers but the checkpoint has 2"):
        tfc.tf_to_bert_state(tfc.read_tf_checkpoint(CASED), config_of(CASED, num_hidden_layers=1))


def test_a_missing_tensor_is_named(tmp_path):
    folder = copy_fixture(CASED, tmp_path)
    rewrite_index(folder, lambda key, e: None if key == "bert/pooler/dense/bias" else e)
    with pytest.raises(TFCheckpointError, match="^bert/pooler/dense/bias missing from the checkpoint"):
        tfc.load_tf_bert(folder)


def test_shape_that_does_not_fit_the_config():
    with pytest.raises(TFCheckpointError, match=r"word_embeddings has shape \[300, 32\] but the config implies "
                                                r"\[301, 32\]"):
        tfc.tf_to_bert_state(tfc.read_tf_checkpoint(CASED), config_of(CASED, vocab_size=301))


def test_unknown_bert_variable_and_foreign_checkpoints(tmp_path):
    tensors = dict(tfc.read_tf_checkpoint(CASED))
    tensors["bert/encoder/layer_0/attention/self/rotary/kernel"] = np.zeros((32, 32), np.float32)
    with pytest.raises(TFCheckpointError, match="unknown BERT variable bert/encoder/layer_0/attention/self/rotary"):
        tfc.tf_to_bert_state(tensors, config_of(CASED))
    keras_like = {"model/layer_with_weights-0/embeddings/.ATTRIBUTES/VARIABLE_VALUE": np.zeros((4, 2), np.float32)}
    with pytest.raises(TFCheckpointError, match=r"no bert/\.\.\. variables, so it is not a Google BERT checkpoint"):
        tfc.tf_to_bert_state(keras_like, config_of(CASED))
    state = tfc.tf_to_bert_state({k: v for k, v in tfc.read_tf_checkpoint(CASED).items()
                                  if not k.startswith("cls/")}, config_of(CASED))
    assert len(state) == 46 - 7 and not any(k.startswith("cls.") for k in state)     # heads are optional


def test_bert_config_json_errors(tmp_path):
    assert tfc.read_bert_config_json(UNCASED)["num_attention_heads"] == 2
    with pytest.raises(TFCheckpointError, match="bert_config.json is missing"):
        tfc.read_bert_config_json(tmp_path)
    (tmp_path / "bert_config.json").write_text("{oops")
    with pytest.raises(TFCheckpointError, match="is not valid JSON"):
        tfc.read_bert_config_json(tmp_path)
    (tmp_path / "bert_config.json").write_text(json.dumps(config_of(UNCASED, hidden_size=None)))
    with pytest.raises(TFCheckpointError, match="'hidden_size' is None, not a positive integer"):
        tfc.read_bert_config_json(tmp_path)
    (tmp_path / "bert_config.json").write_text(json.dumps(config_of(UNCASED, num_attention_heads=5)))
    with pytest.raises(TFCheckpointError, match="not a multiple of num_attention_heads"):
        tfc.read_bert_config_json(tmp_path / "bert_config.json")


@pytest.mark.parametrize("name, lowercase", [
    ("uncased_L-2_H-128_A-2", True), ("uncased_L-12_H-768_A-12", True), ("wwm_uncased_L-24_H-1024_A-16", True),
    ("cased_L-12_H-768_A-12", False), ("multi_cased_L-12_H-768_A-12", False), ("wwm_cased_L-24_H-1024_A-16", False),
    ("multilingual_L-12_H-768_A-12", True), ("chinese_L-12_H-768_A-12", True),
    ("/models/uncased_L-4_H-256_A-4/bert_model.ckpt", True), ("/models/cased_L-2_H-32_A-4/", False),
    ("my_bert", None), ("bert_model", None), ("L-12_H-768_A-12", None), ("casedness", None),
])
def test_casing_from_release_name(name, lowercase):
    assert tfc.casing_from_release_name(name) is lowercase
