#!/usr/bin/env bash
# Korean in a quarter of an hour on a CPU: 10 minutes of pretraining by the clock (--time-budget 10m:
# the learning rate warms up and decays over the minutes, whatever the machine's speed), then NSMC.
#
#   bash examples/korean_time_budget.sh     # from the repository root, venv active
#
# 1. corpus: the NSMC raw reviews minus every review that is also in NSMC ratings_train.txt;
# 2. BERT-Tiny, vocab 8k, --cased --keep-accents (no jamo splitting), one review per document,
#    --pack --no-nsp (reviews are short: several per 128-token row, masked-LM only);
# 3. NSMC fine-tuning for 1 epoch, evaluated on 10% of ratings_train.txt carved out (seeded).
# Measured on a 2-core VM (2026-12-07): 2,741 steps, held-out MLM 17.4%, 10.2 min with preparation;
# NSMC accuracy 0.8303 on the carved split after 3.5 min of fine-tuning.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
DATA=${DATA:-$REPO/../shared/data}
RUN=${RUN:-$REPO/runs/korean_10m}
mkdir -p "$RUN"
python - "$DATA" "$RUN/ko.txt" <<'PY'
import csv, sys
data, out_path = sys.argv[1], sys.argv[2]
with open(f"{data}/nsmc/ratings_train.txt", encoding="utf-8") as f:
    rows = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE); next(rows)
    train = {" ".join(r[1].split()) for r in rows}
kept = 0
with open(out_path, "w", encoding="utf-8") as out:
    for line in open(f"{data}/ko_corpus/nsmc_raw_reviews_unlabeled.txt", encoding="utf-8"):
        text = " ".join(line.split())
        if text and text not in train:
            out.write(text + "\n"); kept += 1
print("reviews kept", kept)
PY
t0=$(date +%s)
bertkit pretrain $RUN/ko.txt --out $RUN/bert --one-doc-per-line --cased --keep-accents --size tiny \
  --vocab-size 8000 --no-nsp --pack --max-seq-length 128 --batch-size 32 --time-budget 10m --workers 2
t1=$(date +%s)
bertkit finetune --task nsmc --model $RUN/bert/model --train $DATA/nsmc/ratings_train.txt --out $RUN/nsmc \
  --epochs 1 --batch-size 32 --max-seq-length 64
t2=$(date +%s)
echo "MINUTES pretrain $(( (t1-t0) ))s finetune $(( (t2-t1) ))s"
