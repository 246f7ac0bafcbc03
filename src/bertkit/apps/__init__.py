"""Floor 7 — apps: complete programs built from the floors below.

    quickstart.py   vocab + BERT-Tiny on Python's own docs, then try it
    search.py       semantic search: index, query, cross-encoder re-ranker
    serve.py        the web demo (FastAPI; page in static/)
    viz.py          attention pictures: PNG grid + HTML viewer
    upload.py       push_to_hub: share a model folder on the Hugging Face Hub
    model_card.py   the README.md model card that upload writes (front matter, scores, command)
"""
