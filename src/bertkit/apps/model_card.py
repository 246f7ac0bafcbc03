"""The model card (README.md) that `push_to_hub` writes: what a model is, how it was made, how well it does.

The Hub reads the YAML front matter (library_name, pipeline_tag, language, tags, metrics,
base_model) to index and display a model; people read the rest.  Everything comes from files
bertkit saved: config.json (size, labels), task.json (task, family, labels, length) and, when the
folder is the `best/` of a `bertkit finetune --out OUT`, OUT/results.json (data, scores, settings,
from which the command that trained it is rebuilt).
"""
from __future__ import annotations

import dataclasses
import json
import shlex
from pathlib import Path

from bertkit import __version__
from bertkit.common.hub_names import CONFIG, looks_like_path, valid_repo_id
from bertkit.modeling.pretrained import TASK_FILE
from bertkit.tasks import pipeline_tag_of
from bertkit.training.finetune import FinetuneSettings

#: The language of the built-in tasks' data.
TASK_LANGUAGES = {**dict.fromkeys(("sst2", "cola", "mrpc", "mnli", "rte", "stsb", "conll2003", "squad", "squad2"),
                                  "en"),
                  **dict.fromkeys(("nsmc", "kornli", "chatbot_intent", "ko_ner", "korquad"), "ko")}
_NOT_SCORES = ("step", "num_examples", "epoch")


def model_card(folder: Path, repo_id: str, language: str | None = None) -> str:
    """README.md text for the model in `folder`, to be published as `repo_id`."""
    config = _json(folder / CONFIG) or {}
    task = _json(folder / TASK_FILE)
    results = find_results(folder)
    architecture = (config.get("architectures") or ["BertModel"])[0]
    language = language or TASK_LANGUAGES.get((task or {}).get("task"))
    scores = {k: v for k, v in ((results or {}).get("best") or {}).items()
              if k not in _NOT_SCORES and isinstance(v, (int, float))}
    front = {"library_name": "transformers", "pipeline_tag": _pipeline_tag(task, architecture),
             "language": language, "tags": ["bert", "bertkit"] + ([task["task"]] if task else []),
             "metrics": sorted(scores) or None, "base_model": _base_model((results or {}).get("model"))}
    lines = ["---", *(f"{k}: {json.dumps(v, ensure_ascii=False)}" for k, v in front.items() if v), "---", "",
             f"# {repo_id.split('/')[-1]}", "", _summary(config, task, architecture), ""]
    lines += _labels(task, config) + _data(results) + _scores(scores) + _command(results) + _use(repo_id, task,
                                                                                               architecture)
    return "\n".join(lines).rstrip() + "\n"


def find_results(folder: Path) -> dict | None:
    """results.json of the run that saved `folder` (in it, or in its parent when folder is that run's best/)."""
    for path in (folder / "results.json", folder.parent / "results.json"):
        results = _json(path)
        if results and Path(str(results.get("best_dir", folder))).name == folder.name:
            return results
    return None


def _json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _pipeline_tag(task: dict | None, architecture: str) -> str:
    if task:
        return pipeline_tag_of(task.get("family"))     # the Hub's widget and search use it
    return "fill-mask" if architecture in ("BertForMaskedLM", "BertForPreTraining") else "feature-extraction"


def _base_model(name: str | None) -> str | None:
    """The Hub name a run started from (not a local path, which means nothing on the Hub)."""
    if name and name.lower() == "minilm":
        return "sentence-transformers/all-MiniLM-L6-v2"
    return name if name and not looks_like_path(name) and valid_repo_id(name) else None


def _summary(config: dict, task: dict | None, architecture: str) -> str:
    size = (f"{config.get('num_hidden_layers', '?')} layers, hidden size {config.get('hidden_size', '?')}, "
            f"{config.get('num_attention_heads', '?')} heads, vocabulary {config.get('vocab_size', '?')}")
    made = f"made with [bertkit](https://pypi.org/project/bertkit/) {__version__}"
    if task:
        return f"A BERT ({size}) fine-tuned for **{task.get('task')}** ({task.get('family')}, `{architecture}`), {made}."
    return f"A BERT ({size}, `{architecture}`), {made}."


def _labels(task: dict | None, config: dict) -> list[str]:
    names = (task or {}).get("names") or list((config.get("id2label") or {}).values())
    return ["## Labels", "", ", ".join(f"`{n}`" for n in names), ""] if names else []


def _data(results: dict | None) -> list[str]:
    if not results:
        return []
    s = results.get("settings") or {}
    held_out = f"a random {s.get('eval_fraction')} of the training file, held out"
    rows = [("training data", s.get("train") and f"`{Path(s['train']).name}`", results.get("train_examples")),
            ("evaluation data", f"`{Path(s['eval']).name}`" if s.get("eval") else held_out, results.get("eval_examples"))]
    return ["## Data", ""] + [f"* {what}: {src} ({n} examples)" for what, src, n in rows if src] + [""]


def _scores(scores: dict) -> list[str]:
    if not scores:
        return []
    return ["## Results (evaluation data, best epoch)", "", "| metric | value |", "|---|---|",
            *(f"| {k} | {v:.4f} |" for k, v in scores.items()), ""]


def _command(results: dict | None) -> list[str]:
    """`bertkit finetune ...` with the settings that differ from the defaults."""
    settings = (results or {}).get("settings")
    if not settings:
        return []
    args = ["bertkit", "finetune", *_flags(FinetuneSettings(task="t", train="t", out="t"), settings)]
    return ["## Training", "", "```bash", shlex.join(args), "```", ""]


def _flags(defaults, saved: dict) -> list[str]:
    """The command-line flags of the saved settings that differ from `defaults` (nested settings flattened)."""
    args = []
    for field in dataclasses.fields(defaults):
        value, default = saved.get(field.name), getattr(defaults, field.name)
        if field.metadata.get("nested"):
            args += _flags(default, value or {})
            continue
        if field.name in ("task_options", "progress", "resume") or field.metadata.get("cli") is False \
                or value is None or value == default:
            continue
        flag = field.name.replace("_", "-")
        args += [f"--{flag}"] if value is True else [f"--no-{flag}"] if value is False else [f"--{flag}", str(value)]
    return args


def _use(repo_id: str, task: dict | None, architecture: str) -> list[str]:
    lines = ["## Use", "", "```python", f"from bertkit import {architecture}, BertTokenizer",
             f"model = {architecture}.from_pretrained({repo_id!r})",
             f"tokenizer = BertTokenizer.from_pretrained({repo_id!r})", "```", ""]
    if task:
        lines += ["```bash", f'bertkit predict --model {repo_id} "..."', "```", ""]
    return lines + [f"It loads in `transformers` too: `{architecture}.from_pretrained({repo_id!r})`."]
