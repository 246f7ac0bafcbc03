"""Floor 5 — training: one Trainer, and the two things it is used for.

    trainer.py    the loop: AdamW + warmup/decay, gradient accumulation, bf16, DDP,
                  exact resume from atomic checkpoints, logging and evaluation
    pretrain.py   raw text → vocab → shards → BERT → MLM + NSP
    finetune.py   a checkpoint + a task → a fine-tuned model, its scores, predictions
"""
