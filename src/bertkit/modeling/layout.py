"""How the tokens of a batch are laid out for the encoder: padded, or unpadded ("packed").

`Batch` is the layout of one forward pass (built once, used by every layer);
`Unpadding` is an unpadded layout computed ahead of the forward pass, on the host
(`plan_unpadding`): no device sync inside the forward, row counts rounded up to a
bucket so that shapes repeat (torch.compile, CUDA graphs), and block-diagonal
attention for rows that pack several documents (`bertkit.data.packing`).
See the module docstring of `bertkit.modeling.encoder` for the two paths.

Shape legend: B batch, T tokens per sequence, N real (non-pad) tokens, N' rows of a plan (N
rounded up), C channels.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import torch
from torch import Tensor

from bertkit.common.errors import InputError


@dataclass
class Unpadding:
    """A batch's unpadded layout, computed ahead of the forward pass (see `plan_unpadding`).

    Built on the host while the previous step runs, it spares the forward pass the
    device-to-host syncs of finding the real tokens (`nonzero`, lengths), and its row
    count can be rounded up to a bucket so that shapes repeat from batch to batch
    (torch.compile and CUDA graphs then reuse one graph per bucket).
    Rows beyond the real tokens ("pad rows") read position 0 and are written to a spare
    slot that is dropped: they never reach a real token, the loss or a gradient.
    Pass it to the model as `unpad=plan`.  `segments` marks packed rows (several
    documents per row, see `bertkit.data.packing`): attention stays within a document.
    """
    index: Tensor                     # [N'] flat position (into B*T) each row reads; pad rows read 0
    scatter: Tensor                   # [N'] flat position each row is written back to; pad rows: B*T (dropped)
    lengths: list[int]                # rows per attention block (sequences or documents, then the pad rows)
    segments: Tensor | None = None    # [B, T] document number of each position, -1 at padding; None: one per row
    offsets: Tensor | None = None     # [blocks + 1] int32 first row of each block, then N' (varlen attention)
    longest: int = 0                  # a bound on the block lengths that only depends on T and the multiple

    def to(self, device, non_blocking: bool = False) -> Unpadding:
        move = (lambda t: None if t is None else t.to(device, non_blocking=non_blocking))
        return Unpadding(move(self.index), move(self.scatter), self.lengths, move(self.segments), move(self.offsets),
                         self.longest)

    def pin_memory(self) -> Unpadding:
        pin = (lambda t: None if t is None else t.pin_memory())
        return Unpadding(pin(self.index), pin(self.scatter), self.lengths, pin(self.segments), pin(self.offsets),
                         self.longest)


def plan_unpadding(attention_mask: Tensor, multiple: int = 1, document_lengths: list[list[int]] | None = None,
                   ) -> Unpadding:
    """The unpadded layout of a [B, T] attention mask (on the CPU: no device sync).

    multiple: round the number of rows N up to a multiple of this (64 or 128 keeps the
        shapes static across batches); 1 gives exactly the real tokens.
    document_lengths: for packed rows, the lengths of the documents of each row (they
        must sum to the row's real tokens); attention then stays within each document.
    """
    if multiple < 1:
        raise InputError(f"multiple={multiple} must be >= 1 (1: no rounding; 64 or 128: static shapes).")
    real = attention_mask.bool().cpu()                                # [B, T]
    B, T = real.shape
    index = real.reshape(-1).nonzero().squeeze(-1)                    # [N]
    extra = -index.numel() % multiple
    if document_lengths is None:
        lengths, segments = real.sum(1).tolist(), None
    else:
        lengths, segments = _document_layout(real, document_lengths)
    lengths = [n for n in lengths if n] + ([extra] if extra else [])
    offsets = torch.tensor([0, *itertools.accumulate(lengths)], dtype=torch.int32)     # [blocks + 1]
    return Unpadding(index=torch.cat([index, index.new_zeros(extra)]),
                     scatter=torch.cat([index, index.new_full((extra,), B * T)]),
                     lengths=lengths, segments=segments, offsets=offsets, longest=max(T, multiple))


def _document_layout(real: Tensor, document_lengths: list[list[int]]) -> tuple[list[int], Tensor]:
    """Per-document lengths (in row order) and the [B, T] document number of each position."""
    segments = torch.full(real.shape, -1, dtype=torch.long)           # [B, T]
    flat, number = [], 0
    for row, docs in enumerate(document_lengths):
        if sum(docs) != int(real[row].sum()):
            raise InputError(f"row {row}: document lengths {docs} do not add up to its "
                             f"{int(real[row].sum())} real tokens.")
        start = 0
        for n in docs:
            segments[row, start:start + n] = number
            start, number = start + n, number + 1
        flat += docs
    return flat, segments


@dataclass
class Batch:
    """How the tokens of one forward pass are laid out (built once, used by every layer).

    `index` is None for the padded layout; otherwise the flat positions (into B*T)
    of the N real tokens, and activations are [N, H] matrices.  `scatter` (from an
    `Unpadding` plan) is where each row is written back; rows beyond the real tokens
    go to a spare slot B*T that is dropped.
    """
    B: int
    T: int
    index: Tensor | None = None      # [N] flat positions of real tokens (unpadded layout)
    lengths: list[int] | None = None  # real tokens per sequence: set when attention runs per sequence
    offsets: Tensor | None = None    # [blocks + 1] int32 block starts (a plan's): one varlen attention call
    longest: int = 0                 # a static bound on the block lengths (the plan's)
    key_mask: Tensor | None = None   # [B, 1, 1, T] (or [B, 1, T, T] for packed rows) bool, True = may attend
    scratch: dict = field(default_factory=dict)  # buffers the layers of this forward pass may reuse
    scatter: Tensor | None = None    # [N'] write-back positions of a precomputed plan (None: same as index)

    def pad(self, x: Tensor) -> Tensor:
        """[N, C] packed rows -> [B, T, C] with zeros at pad positions (identity when padded)."""
        if self.index is None:
            return x
        if self.scatter is not None:                                  # rows for the spare slot B*T
            out = x.new_zeros(self.B * self.T + 1, x.shape[-1]).index_copy_(0, self.scatter, x)
            return out[:self.B * self.T].view(self.B, self.T, -1)
        out = x.new_zeros(self.B * self.T, x.shape[-1])
        return out.index_copy_(0, self.index, x).view(self.B, self.T, -1)

    def tokens(self, t: Tensor) -> Tensor:
        """[B, T] per-token ids -> [N] ids of the real tokens (identity when padded)."""
        if self.index is None:
            return t
        return t.reshape(-1).index_select(0, self.index)

    def unpad(self, x: Tensor) -> Tensor:
        """[B, T, C] -> [N, C] rows of the real tokens (identity when padded)."""
        if self.index is None:
            return x
        return x.reshape(self.B * self.T, -1).index_select(0, self.index)


def planned_layout(B: int, T: int, attention_mask: Tensor | None, plan: Unpadding, output_attentions: bool,
                    per_sequence: bool) -> Batch:
    """The layout of a batch that comes with an `Unpadding` plan: no host sync, no data-dependent branch.

    Packed rows (`plan.segments`) get a block-diagonal [B, 1, T, T] mask: a token attends
    to the real tokens of its own document only.  Per-sequence attention follows the plan's
    blocks (documents, or whole rows): in one varlen call on a GPU, one block at a time on a CPU,
    padded with the mask while a CPU graph is recorded (a Python loop over a data-dependent
    number of blocks cannot be one static graph).
    """
    if attention_mask is None:
        raise InputError("unpad=<Unpadding plan> needs the attention_mask it was planned from.")
    real = attention_mask.bool()                                       # [B, T]
    if plan.segments is None:
        key_mask = real[:, None, None, :]                              # [B, 1, 1, T]
    else:
        same = plan.segments[:, :, None] == plan.segments[:, None, :]  # [B, T, T] same document (or both pad)
        # real queries see the real tokens of their document; pad queries see the pads (never an
        # empty row: a fully masked row would give NaN, and NaN * 0 gradients would leak)
        key_mask = (same & (real[:, None, :] | ~real[:, :, None]))[:, None]   # [B, 1, T, T]
    if output_attentions:
        return Batch(B, T, key_mask=key_mask)
    if not per_sequence:
        return Batch(B, T, index=plan.index, key_mask=key_mask, scatter=plan.scatter)
    if plan.index.device.type == "cuda":     # one varlen call; nothing read on the host: static in a graph
        return Batch(B, T, index=plan.index, key_mask=key_mask, scatter=plan.scatter, offsets=plan.offsets,
                     longest=plan.longest)
    lengths = None if building_a_graph() else plan.lengths             # a CPU graph: padded attention
    return Batch(B, T, index=plan.index, key_mask=key_mask, lengths=lengths, scatter=plan.scatter)


def building_a_graph() -> bool:
    """True while torch.compile, torch.jit.trace or the ONNX exporter records the model."""
    return torch.compiler.is_compiling() or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()

