"""Floor 1 — text: from raw strings to WordPiece ids, and back.

    names.py            one name per switch (do_lower_case, strip_accents, tokenize_chinese_chars)
    basic.py            BERT's BasicTokenizer rules: cleaning, lower-casing, accents, punctuation,
                        CJK characters, optional Korean morpheme cuts (no torch needed)
    wordpiece.py        vocab.txt, greedy longest-match-first WordPiece, the per-word cache
    encoding.py         [CLS] A [SEP] B [SEP] with segment ids, truncation, padding, tensors, decoding
    tokenizer.py        BertTokenizer: the call surface (tok(text, pair, ...), encode/decode, explain)
    tokenizer_files.py  save_pretrained / from_pretrained: vocab.txt, tokenizer_config.json,
                        special_tokens_map.json, tokenizer.json
    corpus.py           raw text files -> documents -> sentences, streamed
    merges.py           the merge rules of vocab training: by frequency or by likelihood
    vocab.py            training a WordPiece vocabulary from raw text (train_vocab)
    coverage.py         does a vocabulary cover the text? measured, and said when it does not
    domain.py           domain words into a published vocabulary's [unused] slots, same size

Nothing here imports a model; every floor above may import this one.
"""
