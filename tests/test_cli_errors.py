"""Every verb: `--help` shows an example; wrong paths and arguments give one clear line, exit 2, no traceback."""
from __future__ import annotations

import pytest

from bertkit.cli import build_parser, main

VERBS = sorted(build_parser()._subparsers._group_actions[0].choices)

BAD_CALLS = {
    "tokenize": ["tokenize", "hi", "--model", "{missing}"],
    "vocab": ["vocab", "{missing}/corpus.txt", "--out", "{tmp}/v"],
    "pretrain": ["pretrain", "{missing}/corpus.txt", "--out", "{tmp}/p"],
    "fill-mask": ["fill-mask", "a [MASK]", "--model", "{missing}"],
    "nsp": ["nsp", "a", "b", "--model", "{missing}"],
    "embed": ["embed", "a", "--model", "{missing}"],
    "finetune": ["finetune", "--task", "sst2", "--model", "{missing}", "--train", "{missing}/t.tsv", "--out", "{tmp}/f"],
    "eval": ["eval", "--model", "{missing}", "--data", "{missing}/d.tsv"],
    "predict": ["predict", "--model", "{missing}", "text"],
    "search": ["search", "query", "q", "--index", "{missing}"],
    "attention": ["attention", "a", "--model", "{missing}", "--out", "{tmp}/a"],
    "serve": ["serve", "--model", "{missing}"],
    "similarity": ["similarity", "a", "b", "--model", "{missing}"],
    "classify": ["classify", "a", "--model", "{missing}"],
    "tag": ["tag", "a", "--model", "{missing}"],
    "bench": ["bench", "no-such-benchmark"],
    "answer": ["answer", "q?", "--context", "c", "--model", "{missing}"],
    "export-onnx": ["export-onnx", "{missing}", "{tmp}/m.onnx"],
    "convert": ["convert", "{missing}", "{tmp}/out"],
    "upload": ["upload", "{missing}", "me/model"],
}
SEARCH_ACTIONS = ["index", "query", "train-reranker"]


@pytest.mark.parametrize("verb", VERBS)
def test_help_has_an_example(verb, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([verb, "--help"])
    assert exit_info.value.code == 0
    assert "example" in capsys.readouterr().out.lower()


@pytest.mark.parametrize("verb", [v for v in VERBS if v != "quickstart"])
def test_wrong_path_is_one_clear_line(verb, tmp_path, capsys):
    assert verb in BAD_CALLS, f"add a bad call for the new verb {verb!r} to this test"
    argv = [a.format(missing=tmp_path / "does-not-exist", tmp=tmp_path) for a in BAD_CALLS[verb]]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("bertkit: error:"), err
    assert any(m in err[0].lower() for m in ("does-not-exist", "not found", "no such", "no benchmark")), err


@pytest.mark.parametrize("action", SEARCH_ACTIONS)
def test_each_search_action_has_its_own_help(action, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["search", action, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert f"bertkit search {action}" in out and "example" in out.lower()


def test_help_shows_every_default(capsys):
    with pytest.raises(SystemExit):
        main(["pretrain", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for shown in ("(default: mini)", "(default 1000;", "(default: 128)", "(default: 0.0005)"):
        assert shown in out


def test_a_run_folder_given_for_its_model_says_did_you_mean(tmp_path, capsys):
    (tmp_path / "run" / "model").mkdir(parents=True)
    (tmp_path / "run" / "model" / "config.json").write_text("{}")
    assert main(["embed", "hi", "--model", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert f"did you mean {tmp_path / 'run' / 'model'}" in err and len(err.strip().splitlines()) == 1


def test_a_bug_is_reported_as_one_and_debug_shows_it(monkeypatch, capsys):
    import bertkit.cli.use as use

    def broken(*args, **kwargs):
        raise KeyError("oops")
    monkeypatch.setattr(use, "make_pipeline", broken)
    assert main(["embed", "hi"]) == 1
    err = capsys.readouterr().err
    assert "internal error" in err and "KeyError" in err and "--debug" in err
    with pytest.raises(KeyError):
        main(["--debug", "embed", "hi"])


def test_unknown_option_exits_with_usage(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fill-mask", "x", "--model", "m", "--top-kk", "3"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --top-kk" in capsys.readouterr().err


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(Exception):
        main(["--debug", "embed", "a", "--model", str(tmp_path / "does-not-exist")])
