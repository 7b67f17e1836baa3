"""``python -m tfloss elbo`` end to end in its small setting: table, JSON, CSV, PNG."""

import csv
import json

import pytest

from tfloss.cli import main


@pytest.mark.slow
def test_elbo_command_writes_results(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TFLOSS_SMALL", "1")
    out = tmp_path / "elbo"
    rc = main(["elbo", "--out", str(out), "--epochs", "1", "--hidden", "16", "--samples", "2",
               "--scalings", "per_example,blundell_pi"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "[per_example] epoch 1/1" in printed and "test_accuracy" in printed
    results = json.loads((out / "results.json").read_text())
    runs = {r["scaling"]: r for r in results["runs"]}
    assert set(runs) == {"per_example", "blundell_pi"}
    assert runs["per_example"]["beta"] == pytest.approx(1 / 256, rel=1e-6)  # 256 examples in the small setting
    for r in runs.values():
        assert 0.0 <= r["test_accuracy"] <= 1.0
        assert 0.0 <= r["predictive_entropy"] <= 2.303  # at most log(10)
        assert r["kl"] > 0 and len(r["history"]["nll"]) == 1
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert [row["scaling"] for row in rows] == ["per_example", "blundell_pi"]
    assert (out / "training.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_elbo_command_rejects_unknown_scaling(tmp_path):
    with pytest.raises(SystemExit, match="unknown scaling 'one_over_n'"):
        main(["elbo", "--out", str(tmp_path), "--scalings", "one_over_n"])
