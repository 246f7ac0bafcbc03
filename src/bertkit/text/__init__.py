"""Floor 1 — text: from raw strings to WordPiece ids, and back.

    basic.py      BERT's BasicTokenizer rules: cleaning, lower-casing, accents, punctuation,
                  CJK characters, optional Korean morpheme cuts (no torch needed)
    tokenizer.py  BertTokenizer: WordPiece (greedy longest-match-first) and the call surface
                  that builds [CLS] A [SEP] B [SEP] with segment ids, padding and truncation
    vocab.py      training a WordPiece vocabulary from raw text

Nothing here imports a model; every floor above may import this one.
"""
