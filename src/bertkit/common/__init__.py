"""Floor 0 — common: what every floor shares and nothing else.

    errors.py     BertkitError and its kinds: the errors a user can cause and fix
    files.py      atomic writes: a file or a directory is replaced whole, or not at all
    defaults.py   the numbers BERT's recipes agree on (15% masking, QA windows 384/128/64/30, ...)

It imports nothing from bertkit.
"""
