"""Baselines beside a series classifier's accuracy: majority class and 1-NN Euclidean."""

from __future__ import annotations

import json
import math

import torch

from elman.cli import main
from elman.data.labelled import Examples
from elman.tasks.classify import task as classify

NAN = math.nan


def test_nearest_is_euclidean_and_tolerates_unequal_lengths_and_gaps():
    reference = [
        torch.zeros(3),
        torch.full((4,), 5.0),
        torch.tensor([[1.0, 1.0], [1.0, 1.0]])[:, 0],
    ]
    queries = [torch.full((6,), 4.0), torch.tensor([NAN, 0.1]), torch.tensor([0.9, 1.2, 0.0])]
    assert classify.nearest(reference, queries) == [1, 0, 2]
    x = torch.randn(7, 5, 2)
    q = torch.randn(4, 5, 2)
    plain = torch.cdist(q.flatten(1), x.flatten(1)).argmin(1).tolist()
    assert classify.nearest(list(x), list(q)) == plain


def test_baselines_on_held_out_examples():
    train = Examples(
        "series", [torch.zeros(3), torch.ones(3), torch.ones(3) * 0.9], ["a", "b", "b"]
    )
    scored = Examples("series", [torch.zeros(3), torch.ones(3) * 0.1, torch.ones(3)], list("aab"))
    out = classify.baselines(train, scored)
    assert out == {"majority_class": 1 / 3, "nn1_euclidean": 1.0}
    text = Examples("text", ["x", "y"], ["a", "a"])
    assert classify.baselines(text, text) == {"majority_class": 1.0}


def write_ts(path, cases) -> None:
    lines = ["@problemName toy", "@univariate true", "@classLabel true a b", "@data"]
    lines += [",".join(f"{v:.3f}" for v in x) + f":{y}" for x, y in cases]
    path.write_text("\n".join(lines) + "\n")


def toy_cases(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    cases = []
    for i in range(n):
        label = "ab"[i % 2]
        base = torch.linspace(0, 1, 12) * (1 if label == "a" else -1)
        cases.append(((base + 0.05 * torch.randn(12, generator=g)).tolist(), label))
    return cases


def test_train_and_evaluate_print_the_baselines(tmp_path, capsys):
    write_ts(tmp_path / "toy_TRAIN.ts", toy_cases(20, 0))
    write_ts(tmp_path / "toy_TEST.ts", toy_cases(10, 1))
    out = tmp_path / "run"
    data = ["--ts", str(tmp_path / "toy_TRAIN.ts"), "--ts-test", str(tmp_path / "toy_TEST.ts")]
    tiny = ["--hidden", "4", "--batch-size", "4", "--steps", "3", "--eval-every", "3"]
    assert main(["train", "classify", *data, "--out", str(out), *tiny, "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "test split: accuracy" in printed
    assert "1-NN Euclidean 1.0000, majority class 0.5000" in printed
    assert main(["evaluate", str(out)]) == 0
    result = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert result["baselines"] == {"majority_class": 0.5, "nn1_euclidean": 1.0}
    long_case = tmp_path / "toy_TEST.ts"  # 12 values of about 6 characters a line
    assert main(["predict", str(out), str(long_case), "--max-chars", "40"]) == 2
    err = capsys.readouterr().err
    assert "toy_TEST.ts line 5: " in err and "more than --max-chars 40" in err
    assert (
        main(
            [
                "predict",
                str(out),
                str(tmp_path / "toy_TEST.ts"),
                "--format",
                "csv",
                "--max-chars",
                "100",
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "id,label,p_a,p_b" and lines[1].startswith("0,") and len(lines) == 11
    logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    trained = [row for row in logged if "train_loss" in row]
    assert trained and all("examples_per_s" in r and "tokens_per_s" not in r for r in trained)


def test_the_baseline_line_flags_a_model_no_better_than_them():
    from elman.tasks.classify.command import baseline_line

    r = {"data": "test split", "accuracy": 0.5, "nn1_euclidean": 0.52, "majority_class": 0.18}
    line = baseline_line(r | {"conv": False})
    assert line.startswith("test split: accuracy 0.5000, baselines: 1-NN Euclidean 0.5200")
    assert line.endswith("; the model is no better than a baseline (try --conv)")
    assert baseline_line(r | {"conv": True}).endswith("no better than a baseline")
    assert baseline_line(r | {"conv": True, "accuracy": 0.9}).endswith("majority class 0.1800")
