"""Floor 5 — training: one Trainer, and the two things it is used for.

    trainer.py      the loop: AdamW + warmup/decay, gradient accumulation, bf16, DDP,
                    Ctrl-C, evaluation, the best model and patience (KeepBest)
    state.py        TrainState (saved in checkpoints), KeepBest, Ctrl-C → TrainingInterrupted
    settings.py     TrainingSettings: every training setting once (both verbs' flags, the Trainer's input)
    budget.py       --time-budget 10m: the LR schedule on the clock, the steps that fit
    distributed.py  torchrun: ranks, devices, the barrier, DDP wrapping (gloo on CPU, NCCL on GPUs)
    checkpoints.py  atomic run checkpoints (step-N/), exact resume, pruning and removal
    feed.py         the micro-batches of a run, in order, collated ahead (thread, pinned memory)
    precision.py    bf16 autocast, bf16 weights with fp32 master weights, fused AdamW
    progress.py     log windows, progress bar, train_log.csv, the loss curve
    throughput.py   MFU for the log: 6·N FLOPs per token over the device's peak
    pretrain.py     raw text → vocab → shards → BERT → MLM + NSP
    finetune.py     a checkpoint + a task → a fine-tuned model, its scores, predictions
"""
