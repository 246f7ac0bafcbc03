"""The training settings: one dataclass that both verbs nest and the Trainer reads whole.

    @dataclass
    class PretrainSettings:
        ...
        training: PretrainTraining = nested(PretrainTraining)  # --steps, --learning-rate, --bf16, ...

`TrainingSettings` declares every setting of the loop once, as an `option()` field (name,
default, help): `bertkit pretrain` and `bertkit finetune` get a flag for each field
(`bertkit.cli.options` flattens the nested dataclass), the Trainer receives the object as
it is (`Trainer(model, data, collate, s.training, run_dir)`), and `settings.json` /
`results.json` save it under "training".  A new Trainer option is one line here, and both
verbs have it.

A verb that wants other defaults (pretraining: 1000 steps at 5e-4; fine-tuning: 3 epochs at
5e-5 with early stopping) derives them with `with_defaults`: the same fields, other defaults,
no second declaration.  Library callers build it by that name:

    PretrainSettings(files=["corpus.txt"], out_dir="runs/mini", training=PretrainTraining(steps=200))
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from bertkit.common.errors import InputError
from bertkit.common.settings import option
from bertkit.training.budget import parse_duration
from bertkit.training.progress import REPORT_TO, check_report_to


@dataclass
class TrainingSettings:
    """How the one training loop runs (`training.trainer.Trainer`); every field is a flag of both verbs."""

    steps: int | None = option(None, "optimizer steps; default: from --epochs (with --time-budget: at most this many)")
    time_budget: str | None = option(None, "train for this long (90s, 10m, 1.5h): the learning rate warms up and "
                                     "decays over the time, training stops when it is spent; the final evaluation "
                                     "and saving come after")
    epochs: float = option(1.0, "passes over the training data (when --steps is not given)")
    batch_size: int = option(32, "examples per micro-batch, per process")
    grad_accum: int = option(1, "micro-batches per optimizer step")
    learning_rate: float = option(1e-4, "peak learning rate", aliases=("--lr",))
    warmup_ratio: float = option(0.1, "share of the steps with a rising learning rate")
    weight_decay: float = option(0.01, "AdamW weight decay (not on biases and LayerNorm)")
    max_grad_norm: float = option(1.0, "clip the gradients' norm to this (0: no clipping)")
    seed: int = option(42, "random seed (data order, masks, dropout, new weights)")
    device: str | None = option(None, "cpu, cuda, cuda:1 ...; default: the GPU when there is one")
    bf16: bool = option(False, "bf16 autocast (GPUs, CPUs with AVX512-BF16/AMX)")
    bf16_weights: bool = option(False, "GPU, with --bf16: bf16 weights in the model, fp32 master weights in AdamW")
    fused_blocks: str | None = option(None, "GPU: fused bias+GELU and dropout+residual+LayerNorm",
                                      choices=("compile", "triton"))
    compile: bool = option(False, "torch.compile the model (static shapes: see --unpad-multiple)")
    per_sequence_attention: bool = option(False, "attention over each sequence's real tokens only (GPU: one "
                                          "variable-length call; float rounding differs from the padded path, ~1e-5)")
    unpad_multiple: int | None = option(None, "round the real tokens (and the MLM positions) of a batch up to this "
                                        "multiple (few distinct shapes for the GPU and torch.compile); 0: off; "
                                        "default: 64 on GPU, off on CPU")
    prefetch: int = option(0, "micro-batches collated ahead in a thread (exact; for GPUs)")
    collate_workers: int = option(0, "processes that collate micro-batches ahead, 2 each (exact; for GPUs: the "
                                  "training process keeps Python to itself)")
    fused_adam: bool | None = option(None, "one fused AdamW kernel; default: on CUDA only")
    save_every: int = option(0, "steps between resume checkpoints (0: only at the end)")
    async_checkpoints: bool = option(False, "write checkpoints in a background thread while training goes on "
                                     "(copied to CPU memory at their step; for GPUs)")
    eval_every: int = option(0, "steps between evaluations; 0: the verb's default")
    patience: int = option(0, "stop after this many evaluations without gain (0: never)")
    max_checkpoints: int = option(2, "resume checkpoints kept while training (0: all)")
    keep_checkpoints: bool = option(True, "keep the resume checkpoints once the run is done")
    resume: bool = option(True, "resume from the last checkpoint of the run (Ctrl-C saves one)")
    log_every: int = option(0, "steps between log rows; 0: about 20 over the run (at most 50 apart)", cli=False)
    warmup_steps: int | None = option(None, "steps of rising learning rate (overrides warmup_ratio)", cli=False)
    adam_betas: tuple = option((0.9, 0.999), "AdamW betas", cli=False)
    adam_eps: float = option(1e-6, "AdamW epsilon", cli=False)
    eval_at_start: bool = option(True, "evaluate the untrained model once (curves start at step 0)", cli=False)
    progress: bool = option(True, "progress bar and messages", cli=False)
    report_to: str = option("none", "also log to TensorBoard: event files in <out>/run/tb (pip install tensorboard)",
                            choices=REPORT_TO)

    def __post_init__(self) -> None:
        check_report_to(self.report_to)
        if self.time_budget is not None:
            parse_duration(self.time_budget)             # a clear error now, not when training starts
        wrong = [f"--{name.replace('_', '-')} {value} (must be {rule})" for name, value, ok, rule in (
            ("batch_size", self.batch_size, self.batch_size >= 1, "at least 1"),
            ("grad_accum", self.grad_accum, self.grad_accum >= 1, "at least 1"),
            ("steps", self.steps, self.steps is None or self.steps >= 1, "at least 1"),
            ("epochs", self.epochs, self.epochs > 0, "more than 0"),
            ("learning_rate", self.learning_rate, self.learning_rate > 0, "more than 0"),
            ("save_every", self.save_every, self.save_every >= 0, "0 or more"),
            ("collate_workers", self.collate_workers, self.collate_workers >= 0, "0 or more"),
            ("warmup_ratio", self.warmup_ratio, 0 <= self.warmup_ratio <= 1, "between 0 and 1")) if not ok]
        if wrong:
            raise InputError("invalid training setting: " + "; ".join(wrong))


def with_defaults(name: str, helps: dict[str, str] | None = None, **defaults: Any) -> type:
    """A subclass of `TrainingSettings` with other defaults for some fields (same names and types;
    the same help unless `helps` rewords it for this verb)."""
    helps = helps or {}
    unknown = (set(defaults) | set(helps)) - {f.name for f in dataclasses.fields(TrainingSettings)}
    if unknown:
        raise TypeError(f"with_defaults: TrainingSettings has no field {', '.join(sorted(unknown))}")
    fields = [(f.name, f.type, dataclasses.field(
                  default=defaults.get(f.name, f.default),
                  metadata={**f.metadata, "help": helps.get(f.name, f.metadata["help"])}))
              for f in dataclasses.fields(TrainingSettings) if f.name in defaults or f.name in helps]
    derived = dataclasses.make_dataclass(name, fields, bases=(TrainingSettings,))
    derived.__module__ = __name__          # its annotations are read in this module (typing.get_type_hints)
    return derived


def nested(settings: type) -> Any:
    """A settings field holding a whole settings dataclass; its fields become the verb's flags."""
    return dataclasses.field(default_factory=settings, metadata={"nested": True, "cli": True, "help": ""})
