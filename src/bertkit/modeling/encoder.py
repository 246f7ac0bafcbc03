"""The BERT encoder: embeddings, self-attention, feed-forward, pooler.

Read it top to bottom; the task heads live in `bertkit.modeling.heads` (the package `bertkit.modeling`
exports both).

Shape legend: B batch, T tokens per sequence, N real (non-pad) tokens in the batch,
H hidden, A heads, D head dim (H / A), F intermediate (FFN) size, V vocab.

Two ways through the encoder
----------------------------
* **padded** ("dense"): every tensor is [B, T, H]; pad tokens are computed and then
  ignored by the attention mask.  This is what the reference implementation does.
* **unpadded** ("packed"): when the attention mask contains padding, the real tokens
  are gathered into one [N, H] matrix.  Embeddings, the Q/K/V projections, the
  attention output projection, the FFN and every LayerNorm run on the N real tokens
  only; only the attention itself scatters Q/K/V back to [B, A, T, D] so that each
  token attends within its own sequence.  On real text (~70 % padding in a batch
  padded to its longest sentence) this skips most of the work.  The outputs are
  scattered back to [B, T, H] with **zeros at pad positions** (the reference has
  meaningless values there); real-token positions get the same numbers (bit for bit
  in the MiniLM parity test).
  With `per_sequence_attention=True` the attention also skips the padding (see BertModel):
  one sequence at a time, or — with an `Unpadding` plan — all of them in one variable-length
  call (FlashAttention's varlen kernel on a GPU, a nested-tensor SDPA elsewhere), which
  torch.compile captures as one graph.
  `unpad=False`, or `output_attentions=True`, takes the padded path and gives full
  tensors identical to the reference's.
* `unpad=<Unpadding plan>` (`bertkit.modeling.layout.plan_unpadding`, built on the host by
  the collator): the unpadded path without a device sync, optionally with the row count
  rounded up to a bucket (static shapes) or with several documents per row (packing).

Parameter names follow the standard BERT layout (`embeddings.word_embeddings.weight`,
`encoder.layer.0.attention.self.query.weight`, ...) so that published checkpoints load
as they are: the module attribute names below *are* the checkpoint format.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bertkit.common.errors import InputError
from bertkit.modeling.checkpoint import load_pretrained, save_checkpoint_dir
from bertkit.modeling.config import BertConfig
from bertkit.modeling.fused import fused_intermediate, fused_residual_layer_norm
from bertkit.modeling.layout import Batch, Unpadding, building_a_graph, plan_unpadding, planned_layout  # noqa: F401

try:                                   # FlashAttention's variable-length kernel (CUDA, torch >= 2.9)
    from torch.nn.attention.varlen import varlen_attn as _VARLEN
except ImportError:                    # pragma: no cover - older torch: nested tensors everywhere
    _VARLEN = None


def activation(name: str, inplace: bool = False):
    """hidden_act name -> function. "gelu" is the exact erf form of published BERT.

    `inplace=True` gives the variant that overwrites its input (same numbers): used at
    inference, where nothing needs the pre-activation values, to save a [N, F] buffer.
    """
    if name == "gelu":
        return torch.ops.aten.gelu_ if inplace else F.gelu
    if name in ("gelu_new", "gelu_pytorch_tanh"):
        gelu = torch.ops.aten.gelu_ if inplace else F.gelu
        return lambda x: gelu(x, approximate="tanh")
    if name == "relu":
        return torch.relu_ if inplace else F.relu
    raise InputError(f"hidden_act={name!r} is not supported; use 'gelu', 'gelu_new', 'gelu_pytorch_tanh' or 'relu'.")


@dataclass
class BertOutput:
    """What BertModel returns."""
    last_hidden_state: Tensor                   # [B, T, H]
    pooler_output: Tensor | None = None         # [B, H]  tanh(dense(h_[CLS]))
    hidden_states: tuple[Tensor, ...] | None = None  # L+1 of [B, T, H]: embeddings, then each layer
    attentions: tuple[Tensor, ...] | None = None     # L of [B, A, T, T]: softmax probabilities


class BertEmbeddings(nn.Module):
    """token + segment + position embeddings, then LayerNorm and dropout."""

    def __init__(self, config: BertConfig):
        super().__init__()
        H = config.hidden_size
        self.word_embeddings = nn.Embedding(config.vocab_size, H, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, H)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, H)
        self.LayerNorm = nn.LayerNorm(H, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: Tensor, token_type_ids: Tensor, position_ids: Tensor) -> Tensor:
        # any leading shape ([B, T] padded or [N] packed) -> same shape + [H]
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        x = x + self.position_embeddings(position_ids)
        return self.dropout(self.LayerNorm(x))


class BertSelfAttention(nn.Module):
    """Multi-head scaled dot-product attention: softmax(Q K^T / sqrt(D)) V, per head.

    Q, K and V are three separate projections, as in the checkpoints.  (Measured on CPU:
    one fused [3H, H] projection, or concatenating the three outputs, was no faster --
    the extra copy cost about what the single matrix product saved.)
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        H = config.hidden_size
        self.num_heads, self.head_dim = config.num_attention_heads, config.head_dim
        self.query = nn.Linear(H, H)
        self.key = nn.Linear(H, H)
        self.value = nn.Linear(H, H)
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def forward(self, x: Tensor, batch: Batch, output_attentions: bool = False):
        if batch.offsets is not None and not output_attentions:     # a plan's blocks, on a GPU: one call
            return self.attend_varlen(x, batch.offsets, batch.longest), None
        if batch.lengths is not None and not output_attentions:
            return self.attend_per_sequence(x, batch.lengths), None
        B, T, A, D = batch.B, batch.T, self.num_heads, self.head_dim
        # [N, H] or [B, T, H] -> [B, T, H] -> [B, T, A, D] -> [B, A, T, D], for Q, K and V
        q, k, v = (batch.pad(proj(x)).view(B, T, A, D).transpose(1, 2) for proj in (self.query, self.key, self.value))
        if output_attentions:
            context, probs = self.explicit_attention(q, k, v, batch.key_mask)
        else:
            p = self.dropout.p if self.training else 0.0
            context = F.scaled_dot_product_attention(q, k, v, attn_mask=batch.key_mask, dropout_p=p)
            probs = None
        context = context.transpose(1, 2).reshape(B, T, A * D)      # [B, A, T, D] -> [B, T, H]
        return batch.unpad(context), probs                            # [N, H] or [B, T, H]

    def attend_per_sequence(self, x: Tensor, lengths: list[int]) -> Tensor:
        """Attention for the unpadded layout, one sequence at a time: [N, H] -> [N, H].

        Each sequence's tokens are contiguous rows of x, so no padding and no mask are
        needed: a sentence of t tokens costs t x t scores, not T x T.  (Opt-in, see
        BertModel: the sums run in a different order than in the padded batch, so the
        results differ from the reference by float rounding, ~1e-5.)
        """
        A, D = self.num_heads, self.head_dim
        p = self.dropout.p if self.training else 0.0
        per_sequence = zip(*(proj(x).split(lengths) for proj in (self.query, self.key, self.value)))
        outputs = []
        for q, k, v in per_sequence:                                  # 3 x [t, H] for one sequence
            q, k, v = (t.view(-1, A, D).transpose(0, 1) for t in (q, k, v))   # 3 x [A, t, D]
            context = F.scaled_dot_product_attention(q, k, v, dropout_p=p)     # [A, t, D]
            outputs.append(context.transpose(0, 1).reshape(-1, A * D))        # [t, H]
        return torch.cat(outputs)                                     # [N, H]

    def attend_varlen(self, x: Tensor, offsets: Tensor, longest: int) -> Tensor:
        """Attention for the unpadded layout of a plan on a GPU, all sequences in one call: [N', H] -> [N', H].

        Block b is rows offsets[b]:offsets[b+1] (a sequence, a packed document, or the plan's pad
        rows).  In bf16/fp16 without attention dropout: FlashAttention's variable-length kernel
        (`torch.nn.attention.varlen`); otherwise one scaled_dot_product_attention over nested
        (jagged) tensors.  No padding, no mask, no pad/unpad per layer, and one graph under
        torch.compile; the sums run in another order than the padded batch's (≤1e-5 in fp32).
        `longest` bounds the blocks' lengths and is the same for every batch of a run (no recompiles).
        (On a CPU torch's nested attention is a loop over the sequences, as `attend_per_sequence`.)"""
        N, A, D = x.shape[0], self.num_heads, self.head_dim
        p = self.dropout.p if self.training else 0.0
        q, k, v = (proj(x).view(N, A, D) for proj in (self.query, self.key, self.value))   # 3 x [N', A, D]
        if p == 0.0 and q.dtype in (torch.float16, torch.bfloat16) and _VARLEN is not None:     # autocast too
            return _VARLEN(q, k, v, offsets, offsets, longest, longest).reshape(N, A * D)
        return nested_attention(q, k, v, offsets, p, (1, longest)).reshape(N, A * D)

    def explicit_attention(self, q: Tensor, k: Tensor, v: Tensor, key_mask: Tensor | None):
        """The same attention written out, so the probabilities can be returned."""
        scores = (q @ k.transpose(-1, -2)) * self.head_dim ** -0.5   # [B, A, T, T]
        if key_mask is not None:
            scores = scores.masked_fill(~key_mask, torch.finfo(scores.dtype).min)
        probs = scores.softmax(dim=-1)                                 # [B, A, T, T]
        return self.dropout(probs) @ v, probs                          # [B, A, T, D]


def nested_attention(q: Tensor, k: Tensor, v: Tensor, offsets: Tensor, dropout_p: float = 0.0,
                     extent: tuple[int, int] | None = None) -> Tensor:
    """Scaled dot-product attention within blocks of rows: 3 x [N, A, D] -> [N, A, D], block b being
    rows offsets[b]:offsets[b+1], through nested (jagged) tensors: one call for every block.
    `extent` (shortest, longest block), known on the host, spares a device read of the offsets."""
    known = {"min_seqlen": extent[0], "max_seqlen": extent[1]} if extent else {}
    jagged = [torch.nested.nested_tensor_from_jagged(t, offsets=offsets.long(), **known).transpose(1, 2)
              for t in (q, k, v)]                                      # 3 x [blocks, A, j, D]
    context = F.scaled_dot_product_attention(*jagged, dropout_p=dropout_p)   # [blocks, A, j, D]
    return context.transpose(1, 2).values()                            # [N, A, D]


class ResidualLayerNorm(nn.Module):
    """Project back to H, dropout, add the residual, LayerNorm (post-LN): the end of both
    sub-layers.  Subclassed once per place in the checkpoint layout (below).
    `fused` (see `bertkit.modeling.fused`) runs bias + dropout + residual + LayerNorm as one kernel."""

    fusable_tail = "layer_norm"
    fused = None                     # FusedOps when switched on by use_fused_blocks

    def __init__(self, config: BertConfig, in_features: int):
        super().__init__()
        self.dense = nn.Linear(in_features, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, h: Tensor, residual: Tensor) -> Tensor:
        if self.fused is not None:
            return fused_residual_layer_norm(self, h, residual)
        # add_ writes the residual into the fresh projection output instead of allocating a
        # third [N, H] tensor (autograd allows it: neither dense nor dropout saves its output)
        return self.LayerNorm(self.dropout(self.dense(h)).add_(residual))


class BertSelfOutput(ResidualLayerNorm):
    """After attention: H -> H, residual, LayerNorm.  (Checkpoint name: `attention.output`.)"""

    def __init__(self, config: BertConfig):
        super().__init__(config, config.hidden_size)


class BertAttention(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.self = BertSelfAttention(config)
        self.output = BertSelfOutput(config)

    def forward(self, x: Tensor, batch: Batch, output_attentions: bool = False):
        context, probs = self.self(x, batch, output_attentions)
        return self.output(context, x), probs


class BertIntermediate(nn.Module):
    """First FFN layer: H -> F, then the activation (GELU).
    `fused` (see `bertkit.modeling.fused`) adds the bias and applies GELU in one kernel."""

    fusable_tail = "gelu"
    fused = None                     # FusedOps when switched on by use_fused_blocks

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.hidden_act = config.hidden_act
        self.act = activation(config.hidden_act)
        self.act_inplace = activation(config.hidden_act, inplace=True)

    def forward(self, x: Tensor, scratch: dict | None = None) -> Tensor:
        if self.fused is not None:
            return fused_intermediate(self, x)
        if torch.is_grad_enabled():      # training: GELU's backward needs its input, keep it
            return self.act(self.dense(x))
        return self.act_inplace(self.project_into_scratch(x, scratch))  # inference: in place

    def project_into_scratch(self, x: Tensor, scratch: dict | None) -> Tensor:
        """dense(x) at inference, written into one [N, F] buffer that every layer of the
        forward pass reuses (it is dead once the next FFN layer has read it).  The FFN
        activation is the largest tensor of a layer; allocating it fresh in every layer
        costs page faults that show up as ~5 % of the forward time on CPU."""
        reusable = (scratch is not None and type(self.dense) is nn.Linear
                    and not torch.is_autocast_enabled(x.device.type) and not building_a_graph())
        if not reusable:
            return self.dense(x)
        rows, F_ = x.reshape(-1, x.shape[-1]), self.dense.out_features       # [N, H]
        buffer = scratch.get("ffn")
        if buffer is None or buffer.shape[0] != rows.shape[0] or buffer.dtype != x.dtype:
            buffer = scratch["ffn"] = rows.new_empty(rows.shape[0], F_)   # [N, F]
        torch.addmm(self.dense.bias, rows, self.dense.weight.t(), out=buffer)
        return buffer.view(*x.shape[:-1], F_)


class BertFFNOutput(ResidualLayerNorm):
    """Second FFN layer: F -> H, residual, LayerNorm.  (Checkpoint name: `output`.)"""

    def __init__(self, config: BertConfig):
        super().__init__(config, config.intermediate_size)


class BertLayer(nn.Module):
    """One encoder layer: x = LN(x + Attn(x)); x = LN(x + FFN(x))."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertFFNOutput(config)

    def forward(self, x: Tensor, batch: Batch, output_attentions: bool = False):
        x, probs = self.attention(x, batch, output_attentions)      # [N, H] or [B, T, H]
        return self.output(self.intermediate(x, batch.scratch), x), probs


class BertEncoder(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(config) for _ in range(config.num_hidden_layers))


class BertPooler(nn.Module):
    """Sentence vector for NSP / classification: tanh(dense(hidden state of [CLS]))."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, last_hidden_state: Tensor) -> Tensor:
        return torch.tanh(self.dense(last_hidden_state[:, 0]))       # [B, T, H] -> [B, H]


class BertPreTrainedModel(nn.Module):
    """Shared by BertModel and the heads: BERT weight init, from_pretrained, save_pretrained."""

    def __init__(self, config: BertConfig):
        super().__init__()
        if not isinstance(config, BertConfig):
            raise TypeError(f"expected a BertConfig, got {type(config).__name__}; "
                            f"build one with BertConfig(...) or BertConfig.from_pretrained(dir).")
        self.config = config

    def init_weights(self) -> None:
        """BERT's init: weights ~ N(0, initializer_range), biases 0, LayerNorm 1/0, pad row 0."""
        self.apply(self._init_module)

    @torch.no_grad()
    def _init_module(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            module.weight.normal_(0.0, std)
            if module.bias is not None:
                module.bias.zero_()
        elif isinstance(module, nn.Embedding):
            module.weight.normal_(0.0, std)
            if module.padding_idx is not None:
                module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            module.weight.fill_(1.0)
            module.bias.zero_()

    def tie_weights(self) -> None:
        """Heads with an MLM decoder share its weight with the word embeddings."""

    @classmethod
    def from_pretrained(cls, directory: str | Path, output_loading_info: bool = False, **config_overrides: Any):
        """Load a checkpoint directory (config.json + model.safetensors or pytorch_model.bin).

        Config fields can be overridden, e.g. `num_labels=3`.  Head weights missing from the
        checkpoint are newly initialized and reported with a warning.
        """
        return load_pretrained(cls, directory, output_loading_info=output_loading_info, **config_overrides)

    def save_pretrained(self, directory: str | Path, tokenizer: Any = None) -> None:
        """Write config.json + model.safetensors (+ the tokenizer's files) atomically."""
        save_checkpoint_dir(self, directory, tokenizer=tokenizer)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


class BertModel(BertPreTrainedModel):
    """The BERT encoder: input ids -> one H-dimensional vector per token (+ pooled [CLS]).

    `unpad=True` (default) runs padded batches on their real tokens only (see module doc);
    the attention itself still sees the batch padded to its longest sequence, which keeps
    the results bit-for-bit those of the padded computation.
    `per_sequence_attention=True` also runs the attention one sequence at a time on its
    real tokens only: faster again on heavily padded batches (measured ~1.5x on real
    sentences), but the attention sums run in another order, so results differ from the
    reference by float rounding (up to ~2e-5 on MiniLM; the reference's own sdpa and
    eager attentions differ by about as much).
    """

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True, unpad: bool = True,
                 per_sequence_attention: bool = False):
        super().__init__(config)
        self.per_sequence_attention = per_sequence_attention
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None
        self.unpad = unpad
        self.init_weights()

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None, position_ids: Tensor | None = None,
                output_hidden_states: bool = False, output_attentions: bool = False,
                unpad: bool | Unpadding | None = None) -> BertOutput:
        self._check_inputs(input_ids)
        B, T = input_ids.shape                                         # [B, T]
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        if position_ids is None:
            position_ids = torch.arange(T, device=input_ids.device).expand(B, T)
        batch = self._layout(B, T, attention_mask, output_attentions, self.unpad if unpad is None else unpad,
                             self.per_sequence_attention)

        # embeddings: [B, T, H] (padded) or [N, H] (unpadded: only the real tokens)
        x = self.embeddings(batch.tokens(input_ids), batch.tokens(token_type_ids.expand(B, T)),
                            batch.tokens(position_ids.expand(B, T)))

        hidden_states = [batch.pad(x)] if output_hidden_states else []  # L+1 of [B, T, H] when asked for
        attentions = []                                                # L of [B, A, T, T] when asked for
        for layer in self.encoder.layer:
            x, probs = layer(x, batch, output_attentions)
            if output_hidden_states:
                hidden_states.append(batch.pad(x))
            attentions.append(probs)

        last = batch.pad(x)                                            # [B, T, H]
        return BertOutput(
            last_hidden_state=last,
            pooler_output=self.pooler(last) if self.pooler is not None else None,
            hidden_states=tuple(hidden_states) if output_hidden_states else None,
            attentions=tuple(attentions) if output_attentions else None,
        )

    def _check_inputs(self, input_ids: Tensor) -> None:
        if input_ids.dim() != 2:
            raise InputError(f"input_ids must be [batch, tokens], got shape {tuple(input_ids.shape)}; "
                             f"for one sentence use input_ids.unsqueeze(0).")
        if input_ids.shape[1] > self.config.max_position_embeddings:
            raise InputError(f"sequence length {input_ids.shape[1]} exceeds max_position_embeddings="
                             f"{self.config.max_position_embeddings}; truncate the input (tokenizer "
                             f"truncation=True, max_length={self.config.max_position_embeddings}).")

    @staticmethod
    def _layout(B: int, T: int, attention_mask: Tensor | None, output_attentions: bool,
                unpad: bool | Unpadding, per_sequence: bool = False) -> Batch:
        """Decide padded vs unpadded for this batch (`unpad` may be a precomputed plan)."""
        if isinstance(unpad, Unpadding):
            return planned_layout(B, T, attention_mask, unpad, output_attentions, per_sequence)
        if attention_mask is None:
            return Batch(B, T)
        real = attention_mask.bool()                                   # [B, T]
        if building_a_graph():         # torch.compile / ONNX export: one static graph for every batch,
            return Batch(B, T, key_mask=real[:, None, None, :])        # so no data-dependent choice: padded + mask
        if bool(real.all()):
            return Batch(B, T)                 # no padding: no mask needed at all
        key_mask = real[:, None, None, :]                              # [B, 1, 1, T]
        if not unpad or output_attentions:
            return Batch(B, T, key_mask=key_mask)
        index = real.reshape(-1).nonzero().squeeze(-1)                 # [N]
        lengths = real.sum(1).tolist() if per_sequence else None
        return Batch(B, T, index=index, key_mask=key_mask, lengths=lengths)
