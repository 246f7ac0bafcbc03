#!/usr/bin/env bash
# Korean BERT-Mini (L4/H256/A4) from scratch on a laptop-size CPU budget, then NSMC and KorQuAD.
#
#   bash examples/korean_bert.sh            # from the repository root, venv active
#   DATA=/path/to/shared/data RUN=runs/korean bash examples/korean_bert.sh
#
# What it does (the figures in the comments are from one run on a 2-core CPU shared with
# other jobs, 1 thread per process; see the report for the full table):
#   1. corpus: the NSMC raw reviews (one review per line), minus every review that is also
#      in NSMC ratings_train.txt (so the NSMC texts we evaluate on were never pretraining text).
#   2. two pretraining runs with the same steps/seed/vocab size: plain WordPiece and
#      WordPiece over kiwipiepy morphemes (--morphemes). Both --cased: Korean has no case, and
#      BERT's uncased normalisation (NFD accent stripping) would cut every Hangul syllable into jamo.
#   3. vocab statistics on the held-out documents (tokens per word, [UNK] rate), because the
#      two MLM accuracies are measured over different token inventories.
#   4. NSMC fine-tuning from both models (a fixed-seed validation slice carved from train);
#      KorQuAD 1.0 (half of dev, split by article) from the better one.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
DATA=${DATA:-$REPO/../shared/data}
RUN=${RUN:-$REPO/runs/korean}
STEPS=${STEPS:-300}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1} TOKENIZERS_PARALLELISM=false
mkdir -p "$RUN"

# ---- 1. corpus ---------------------------------------------------------------------------
python - "$DATA" "$RUN/ko_reviews_clean.txt" <<'EOF'
import csv, sys
data, out_path = sys.argv[1], sys.argv[2]
with open(f"{data}/nsmc/ratings_train.txt", encoding="utf-8") as f:
    rows = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
    next(rows)
    nsmc_train = {" ".join(row[1].split()) for row in rows}
kept = dropped = 0
with open(out_path, "w", encoding="utf-8") as out:
    for line in open(f"{data}/ko_corpus/nsmc_raw_reviews_unlabeled.txt", encoding="utf-8"):
        text = " ".join(line.split())
        if not text:
            continue
        if text in nsmc_train:
            dropped += 1
            continue
        out.write(text + "\n")
        kept += 1
print(f"corpus: kept {kept} reviews, dropped {dropped} that are also NSMC train texts")  # 102776 / 30076
EOF

# ---- 2. pretraining (same seed, steps, vocab size) ----------------------------------------
# One review per line = one document; reviews are cut into sentences, and the single-sentence
# ones (70,824 of 100,721 training documents) cannot give an 'is next' pair and are skipped.
pretrain() {  # NAME [extra flags]
    local name=$1; shift
    bertkit pretrain "$RUN/ko_reviews_clean.txt" --one-doc-per-line --out "$RUN/$name" \
        --size mini --vocab-size 16000 --cased --steps "$STEPS" --batch-size 64 --lr 5e-4 \
        --seed 42 --save-every 100 --workers 1 --json "$@" > "$RUN/$name.json"
}
pretrain wp
pretrain morph --morphemes

# ---- 3. vocab statistics on the held-out documents ----------------------------------------
for name in wp morph; do
python - "$RUN/$name/vocab" "$RUN/$name/corpus.heldout.txt" <<'EOF'
import json, sys
from bertkit.text.tokenizer import BertTokenizer
tok = BertTokenizer.from_pretrained(sys.argv[1])
words = tokens = unks = 0
for line in open(sys.argv[2], encoding="utf-8"):
    if line.strip():
        pieces = tok.tokenize(line.strip())
        words += len(line.split())
        tokens += len(pieces)
        unks += pieces.count("[UNK]")
print(json.dumps({"vocab": sys.argv[1], "tokens_per_word": round(tokens / words, 3),
                  "unk_rate": round(unks / tokens, 5)}))
EOF
done

# ---- 4. fine-tuning ------------------------------------------------------------------------
# NSMC: 10% of ratings_train.txt carved off as validation (seed 42), then 10,000 train /
# 2,000 validation examples sampled from the two parts. 'scratch_X' = the same BERT-Mini with
# random weights and the vocab of X: what pretraining adds, with the tokenizer held fixed.
# Each run writes $RUN/<name>/results.json (the --json stdout also holds the human-readable
# report lines, so read results.json).
for name in wp morph; do
python - "$RUN/$name/model" "$RUN/scratch_$name/model" <<'EOF'
import sys, torch
from bertkit.modeling.config import BertConfig
from bertkit.modeling import BertForPreTraining
from bertkit.text.tokenizer import BertTokenizer
torch.manual_seed(42)
BertForPreTraining(BertConfig.from_pretrained(sys.argv[1])).save_pretrained(sys.argv[2])
BertTokenizer.from_pretrained(sys.argv[1]).save_pretrained(sys.argv[2])
EOF
done
# measured accuracy (%): wp 79.05, morph 81.90, scratch_wp 78.15, scratch_morph 81.35
for name in wp morph scratch_wp scratch_morph; do
    bertkit finetune --task nsmc --model "$RUN/$name/model" --train "$DATA/nsmc/ratings_train.txt" \
        --out "$RUN/nsmc_$name" --max-train-examples 10000 --max-eval-examples 2000 \
        --epochs 2 --batch-size 32 --lr 2e-4 --max-length 64 --seed 42 --json > "$RUN/nsmc_$name.log"
done
# KorQuAD 1.0 (half of dev: 3,316 questions / 70 articles), split by article: 10% of the
# articles (420 questions) for evaluation; 1,000 training questions (1,882 wp / 2,150 morph
# windows), 1 epoch. Measured EM/F1: wp 0.48/6.5, morph 0.71/8.0.
for name in wp morph; do
    bertkit finetune --task korquad --model "$RUN/$name/model" \
        --train "$DATA/korquad1/KorQuAD_v1.0_dev_half_a.json" --out "$RUN/korquad_$name" \
        --max-train-examples 1000 --epochs 1 --batch-size 16 --lr 2e-4 --max-length 256 --seed 42 \
        --json > "$RUN/korquad_$name.log"
done
for f in "$RUN"/wp.json "$RUN"/morph.json "$RUN"/nsmc_*/results.json "$RUN"/korquad_*/results.json; do
    python -c "import json, sys; d = json.load(open(sys.argv[1])); print(sys.argv[1], d.get('best') or
        {k: d.get(k) for k in ('mlm_accuracy', 'mlm_loss', 'nsp_accuracy', 'tokens_seen')})" "$f"
done
