"""Task heads: thin layers on top of the one BERT encoder (`self.bert`).

Each head takes the encoder's inputs (input_ids, attention_mask, token_type_ids,
position_ids, output_hidden_states, output_attentions, unpad) plus its labels, and
returns a `HeadOutput`.  Attribute names (`cls.predictions...`, `classifier`,
`qa_outputs`) are the standard checkpoint names.

Shape legend: B batch, T tokens, H hidden, V vocab, C classes, M masked tokens.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bertkit.common.defaults import IGNORE_INDEX
from bertkit.common.errors import InputError
from bertkit.modeling.config import BertConfig
from bertkit.modeling.encoder import BertModel, BertPreTrainedModel, activation


@dataclass
class HeadOutput:
    """What every head returns; fields a head does not produce stay None."""
    loss: Tensor | None = None                    # scalar: the training objective
    logits: Tensor | None = None                  # [B, C] / [B, T, C] / MLM: [B, T, V] or [M, V]
    mlm_loss: Tensor | None = None                # pretraining: masked-LM part of the loss
    nsp_loss: Tensor | None = None                # pretraining: next-sentence part of the loss
    prediction_logits: Tensor | None = None       # pretraining: [B, T, V], or [M, V] when labels given
    seq_relationship_logits: Tensor | None = None  # [B, 2]: 0 = "B follows A", 1 = "B is random"
    start_logits: Tensor | None = None            # QA: [B, T]
    end_logits: Tensor | None = None              # QA: [B, T]
    hidden_states: tuple[Tensor, ...] | None = None
    attentions: tuple[Tensor, ...] | None = None


# ----------------------------------------------------------------- head layers
class BertPredictionHeadTransform(nn.Module):
    """MLM transform: dense H->H, activation, LayerNorm."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.act = activation(config.hidden_act)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, x: Tensor) -> Tensor:
        return self.LayerNorm(self.act(self.dense(x)))


class BertLMPredictionHead(nn.Module):
    """transform, then a V-way projection whose weight IS the word-embedding table (tied) + a bias."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.transform = BertPredictionHeadTransform(config)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))
        self.decoder.bias = self.bias           # one tensor, two names (as in published checkpoints)

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.transform(x))  # [..., H] -> [..., V]


class BertHeads(nn.Module):
    """The `cls` module of a checkpoint: MLM `predictions` and/or NSP `seq_relationship`."""

    def __init__(self, config: BertConfig, mlm: bool, nsp: bool):
        super().__init__()
        if mlm:
            self.predictions = BertLMPredictionHead(config)
        if nsp:
            self.seq_relationship = nn.Linear(config.hidden_size, 2)


def masked_token_positions(labels: Tensor, multiple: int = 0) -> Tensor:
    """[B, T] MLM labels -> [M] flat positions (into B*T) of the masked tokens (the rest are IGNORE_INDEX).
    On a GPU tensor this waits for the device (`nonzero`); the trainer's feed calls it on the host.

    multiple > 0: M is rounded up to a multiple of it with the position B*T (one past the end), which
    `masked_lm` reads as "no token": the [M, V] projection then has few distinct shapes over a run
    (for torch.compile and CUDA graphs), and the loss is the same."""
    positions = (labels.reshape(-1) != IGNORE_INDEX).nonzero().squeeze(-1)
    if multiple > 0 and positions.numel():
        pad = -positions.numel() % multiple
        positions = torch.cat([positions, positions.new_full((pad,), labels.numel())])
    return positions


def masked_lm(predictions: BertLMPredictionHead, sequence: Tensor, labels: Tensor | None,
              masked_positions: Tensor | None = None):
    """MLM logits and loss.  With labels, only masked positions reach the vocabulary.

    sequence [B, T, H]; labels [B, T] with IGNORE_INDEX at unmasked positions.
    The [M, H] -> [M, V] projection is the most expensive matrix product of
    pretraining (V ~ 30k); gathering the M ~ 15% masked rows first skips ~85% of it.
    masked_positions [M]: the flat positions (into B*T) of the masked tokens, found on the
    host by the trainer's feed; without it they are found here, which makes the GPU wait
    for the forward pass (a device-to-host sync) before the step can go on.
    Returns (logits [B, T, V] without labels or [M, V] with labels, loss or None).
    """
    if labels is None:
        return predictions(sequence), None
    if masked_positions is None:
        masked_positions = masked_token_positions(labels)                              # [M] (syncs)
        targets = labels.reshape(-1).index_select(0, masked_positions)                 # [M]
    else:                                     # padded positions (== B*T) read the last row, target ignored
        inside = masked_positions.clamp(max=labels.numel() - 1)
        targets = torch.where(masked_positions < labels.numel(), labels.reshape(-1).index_select(0, inside),
                              IGNORE_INDEX)                                            # [M]
        masked_positions = inside
    rows = sequence.reshape(-1, sequence.shape[-1]).index_select(0, masked_positions)  # [M, H]
    logits = predictions(rows)                                                         # [M, V]
    if targets.numel() == 0:                                         # nothing masked: zero loss, not NaN
        return logits, logits.sum() * 0.0
    return logits, F.cross_entropy(logits.float(), targets)


def _encoder_kwargs(kwargs: dict) -> dict:
    allowed = {"position_ids", "output_hidden_states", "output_attentions", "unpad"}
    unknown = set(kwargs) - allowed
    if unknown:
        raise TypeError(f"unexpected argument(s) {sorted(unknown)}; the encoder accepts input_ids, "
                        f"attention_mask, token_type_ids and {sorted(allowed)}.")
    return kwargs


class _HeadModel(BertPreTrainedModel):
    """A BertModel as `self.bert` plus a head; subclasses define `build_head` and `forward`."""

    add_pooling_layer = True

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=self.add_pooling_layer)
        self.build_head(config)
        for name, child in self.named_children():     # the encoder initialized itself already
            if name != "bert":
                child.apply(self._init_module)
        self.tie_weights()

    def build_head(self, config: BertConfig) -> None:
        raise NotImplementedError

    def tie_weights(self) -> None:
        predictions = getattr(getattr(self, "cls", None), "predictions", None)
        if predictions is not None:
            predictions.decoder.weight = self.bert.embeddings.word_embeddings.weight
            predictions.decoder.bias = predictions.bias

    def encode(self, input_ids, attention_mask, token_type_ids, kwargs):
        return self.bert(input_ids, attention_mask, token_type_ids, **_encoder_kwargs(kwargs))


class BertForPreTraining(_HeadModel):
    """BERT's pretraining objective: masked LM + next sentence prediction; loss = sum of both."""

    def build_head(self, config):
        self.cls = BertHeads(config, mlm=True, nsp=True)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None,
                next_sentence_label=None, masked_positions=None, **kwargs) -> HeadOutput:
        out = self.encode(input_ids, attention_mask, token_type_ids, kwargs)
        logits, mlm_loss = masked_lm(self.cls.predictions, out.last_hidden_state, labels, masked_positions)
        nsp_logits = self.cls.seq_relationship(out.pooler_output)                    # [B, 2]
        nsp_loss = None if next_sentence_label is None else F.cross_entropy(nsp_logits.float(), next_sentence_label.view(-1))
        parts = [x for x in (mlm_loss, nsp_loss) if x is not None]
        return HeadOutput(loss=sum(parts) if parts else None, mlm_loss=mlm_loss, nsp_loss=nsp_loss,
                          prediction_logits=logits, seq_relationship_logits=nsp_logits,
                          hidden_states=out.hidden_states, attentions=out.attentions)


class BertForMaskedLM(_HeadModel):
    """Fill in [MASK]: logits over the vocabulary ([B, T, V]; [M, V] masked rows when labels are given)."""

    add_pooling_layer = False

    def build_head(self, config):
        self.cls = BertHeads(config, mlm=True, nsp=False)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None, masked_positions=None,
                **kwargs) -> HeadOutput:
        out = self.encode(input_ids, attention_mask, token_type_ids, kwargs)
        logits, loss = masked_lm(self.cls.predictions, out.last_hidden_state, labels, masked_positions)
        return HeadOutput(loss=loss, logits=logits, hidden_states=out.hidden_states, attentions=out.attentions)


class BertForNextSentencePrediction(_HeadModel):
    """Is sentence B the continuation of sentence A?  logits [B, 2] (0 = yes, 1 = random)."""

    def build_head(self, config):
        self.cls = BertHeads(config, mlm=False, nsp=True)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None, **kwargs) -> HeadOutput:
        out = self.encode(input_ids, attention_mask, token_type_ids, kwargs)
        logits = self.cls.seq_relationship(out.pooler_output)
        loss = None if labels is None else F.cross_entropy(logits.float(), labels.view(-1))
        return HeadOutput(loss=loss, logits=logits, hidden_states=out.hidden_states, attentions=out.attentions)


def _classifier_dropout(config: BertConfig) -> nn.Dropout:
    p = config.classifier_dropout
    return nn.Dropout(config.hidden_dropout_prob if p is None else p)


class BertForSequenceClassification(_HeadModel):
    """One label per text (or text pair) from the pooled [CLS] vector: logits [B, C].

    num_labels=1 is regression (MSE); otherwise cross-entropy, or BCE for
    problem_type="multi_label_classification".
    """

    def build_head(self, config):
        self.dropout = _classifier_dropout(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None, **kwargs) -> HeadOutput:
        out = self.encode(input_ids, attention_mask, token_type_ids, kwargs)
        logits = self.classifier(self.dropout(out.pooler_output))                    # [B, C]
        loss = None if labels is None else self.loss(logits, labels)
        return HeadOutput(loss=loss, logits=logits, hidden_states=out.hidden_states, attentions=out.attentions)

    def loss(self, logits: Tensor, labels: Tensor) -> Tensor:
        problem = self.config.problem_type
        if problem is None:
            if self.config.num_labels == 1:
                problem = "regression"
            elif labels.dtype in (torch.long, torch.int):
                problem = "single_label_classification"
            else:
                problem = "multi_label_classification"
        if problem == "regression":
            if self.config.num_labels == 1:
                return F.mse_loss(logits.squeeze(-1).float(), labels.view(-1).float())
            return F.mse_loss(logits.float(), labels.float())
        if problem == "single_label_classification":
            return F.cross_entropy(logits.view(-1, self.config.num_labels).float(), labels.view(-1).long())
        return F.binary_cross_entropy_with_logits(logits.float(), labels.float())


class BertForTokenClassification(_HeadModel):
    """One label per token (NER, POS): logits [B, T, C]; labels IGNORE_INDEX carry no loss."""

    add_pooling_layer = False

    def build_head(self, config):
        self.dropout = _classifier_dropout(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None, **kwargs) -> HeadOutput:
        out = self.encode(input_ids, attention_mask, token_type_ids, kwargs)
        logits = self.classifier(self.dropout(out.last_hidden_state))               # [B, T, C]
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.view(-1, self.config.num_labels).float(), labels.view(-1),
                                   ignore_index=IGNORE_INDEX)
        return HeadOutput(loss=loss, logits=logits, hidden_states=out.hidden_states, attentions=out.attentions)


class BertForQuestionAnswering(_HeadModel):
    """Extractive QA: a start score and an end score per token ([B, T] each).

    Loss: mean of the start and end cross-entropies; positions outside the sequence
    (e.g. an answer cut off by truncation) are ignored, as in the reference.
    """

    add_pooling_layer = False

    def build_head(self, config):
        if config.num_labels != 2:
            raise InputError(f"BertForQuestionAnswering needs num_labels=2 (start, end), got "
                             f"{config.num_labels}; load it with num_labels=2.")
        self.qa_outputs = nn.Linear(config.hidden_size, 2)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, start_positions=None,
                end_positions=None, **kwargs) -> HeadOutput:
        out = self.encode(input_ids, attention_mask, token_type_ids, kwargs)
        start, end = self.qa_outputs(out.last_hidden_state).unbind(-1)               # 2 x [B, T]
        loss = None
        if start_positions is not None and end_positions is not None:
            T = start.shape[1]
            s, e = (p.view(-1).clamp(0, T) for p in (start_positions, end_positions))
            loss = (F.cross_entropy(start.float(), s, ignore_index=T) + F.cross_entropy(end.float(), e, ignore_index=T)) / 2
        return HeadOutput(loss=loss, start_logits=start.contiguous(), end_logits=end.contiguous(),
                          hidden_states=out.hidden_states, attentions=out.attentions)


#: Every model class by its name, as written in config.json's "architectures".
HEAD_CLASSES: dict[str, type[BertPreTrainedModel]] = {cls.__name__: cls for cls in (
    BertModel, BertForPreTraining, BertForMaskedLM, BertForNextSentencePrediction,
    BertForSequenceClassification, BertForTokenClassification, BertForQuestionAnswering)}
