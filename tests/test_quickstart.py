"""The quickstart's whole path (corpus → vocab → data → pretraining → predictions), made short."""
from bertkit.apps.quickstart import run_quickstart


def test_quickstart_runs_end_to_end_and_explains_itself(tmp_path, capsys):
    result = run_quickstart(out_dir=str(tmp_path), size="tiny", vocab_size=2000, steps=12)
    out = capsys.readouterr().out
    for marker in ("[1/5] corpus", "[2/5] WordPiece vocab", "[3/5] pretraining data", "[4/5] pretraining",
                   "[5/5] try the model", "Love is like the [MASK]", "I will be back after 6", "MLM acc"):
        assert marker in out, marker
    assert "'I love Paris' → [CLS] i " in out and "[SEP]" in out
    assert result["steps"] == 12 and 0.0 <= result["mlm_accuracy"] <= 1.0
    model_dir = tmp_path / "bert" / "model"
    assert (model_dir / "model.safetensors").exists() and (model_dir / "vocab.txt").exists()
