"""The numbers BERT's recipes agree on, named once.

Settings, the command line, tasks and pipelines take their defaults from here, so a
default changes in one place.  The values are those of the original BERT code
(google-research/bert: run_pretraining.py, run_classifier.py, run_squad.py).
"""

#: Label value that the losses skip: positions that are not masked (MLM), pieces after
#: the first of a word and special tokens (tagging).  The reference uses the same value.
IGNORE_INDEX = -100

# ---------------------------------------------------------------- pretraining
MLM_PROBABILITY = 0.15          # share of tokens chosen for prediction
MASK_REPLACE = 0.8              # ... of which 80% become [MASK],
RANDOM_REPLACE = 0.1            # 10% a random token, and the rest (10%) stay as they are
NSP_RANDOM_PROBABILITY = 0.5    # share of sentence pairs whose B is a random sentence
SHORT_SEQ_PROBABILITY = 0.1     # share of pairs made shorter than the maximum, as in the paper
HELD_OUT_EVERY = 50             # every 50th document is held out to measure MLM/NSP accuracy

# ---------------------------------------------------------------- fine-tuning
MAX_SEQ_LENGTH = 128            # tokens per example, [CLS] and [SEP]s included

# ---------------------------------------------------------------- extractive QA (SQuAD)
QA_MAX_SEQ_LENGTH = 384         # tokens per window: [CLS] question [SEP] context piece [SEP]
DOC_STRIDE = 128                # tokens the windows of a long context move by
MAX_QUERY_LENGTH = 64           # longer questions are cut to this many tokens
MAX_ANSWER_LENGTH = 30          # longest answer span considered, in tokens
N_BEST_SIZE = 20                # start/end candidates kept per window
