"""Corpus loaders on small samples written here, including malformed lines."""

from __future__ import annotations

import json
import math

import pytest

from elman.data.brown import normalize_tag, read_brown
from elman.data.labelled import read_sentiment, read_table
from elman.data.ucr import read_ts


def test_brown_tags_are_normalised_and_files_split(tmp_path):
    (tmp_path / "ca01").write_text(
        "\n\n\tThe/at-tl Jury/nn-tl-hl said/vbd it's/pps+bez 1-1/2/cd ./.\n\n\tNo/at ./.\n"
    )
    (tmp_path / "cats.txt").write_text("ca01 news\n")
    brown = read_brown(tmp_path)
    assert brown.files["ca01"][0] == [
        ("The", "at"),
        ("Jury", "nn"),
        ("said", "vbd"),
        ("it's", "pps+bez"),
        ("1-1/2", "cd"),
        (".", "."),
    ]
    assert len(brown.sentences()) == 2 and brown.genres == {"ca01": "news"}
    assert normalize_tag("nn-tl+bez-hl") == "nn+bez"
    assert read_brown(tmp_path, normalize=False).files["ca01"][0][1] == ("Jury", "nn-tl-hl")
    (tmp_path / "ca02").write_text("good/jj bad\n")
    with pytest.raises(ValueError, match="ca02 line 1: expected word/tag, got 'bad'"):
        read_brown(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_brown(tmp_path / "nowhere")


def test_brown_split_is_by_file_and_stratified(tmp_path):
    for i in range(1, 21):
        (tmp_path / f"ca{i:02d}").write_text("a/at\n")
    parts = read_brown(tmp_path).split()
    assert {k: len(v) for k, v in parts.items()} == {"train": 16, "valid": 2, "test": 2}
    assert parts["test"] == ["ca10", "ca20"] and parts["valid"] == ["ca09", "ca19"]


def test_sentiment_drops_unlabelled_entries(tmp_path):
    for name in ("amazon", "imdb", "yelp"):
        items = [{"text": f"{name} good  ", "class": 1}, {"text": "", "class": None}]
        (tmp_path / f"{name}.json").write_text(json.dumps(items))
    data = read_sentiment(tmp_path)
    assert list(data.inputs) == ["amazon good", "imdb good", "yelp good"]
    assert data.labels == ["1"] * 3 and list(data.groups) == ["amazon", "imdb", "yelp"]
    (tmp_path / "yelp.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"yelp\.json"):
        read_sentiment(tmp_path)


def test_table_reading_and_its_errors(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('text,label\n"a, b",pos\nc,neg\n')
    data = read_table(path)
    assert list(data.inputs) == ["a, b", "c"] and data.labels == ["pos", "neg"]
    with pytest.raises(ValueError, match="no column 'sentence'; its columns are"):
        read_table(path, "sentence")
    path.write_text("text,label\n ,pos\n")
    with pytest.raises(ValueError, match=r"d\.csv line 2: the 'text' column is empty"):
        read_table(path)


TS = """# comment
@problemName Toy
@univariate false
@dimensions 2
@equalLength false
@classLabel true a b
@data
1,2,3:4,5,6:a
1,?:2,3:b
"""


def test_table_fields_are_bounded_by_max_chars(tmp_path):
    import csv

    path = tmp_path / "long.csv"
    path.write_text("text,label\nshort,a\n" + "w " * 100_000 + ",b\n")  # past csv's own limit
    limit = csv.field_size_limit()
    with pytest.raises(
        ValueError, match=r"long\.csv line 3: a field longer than --max-chars 100000"
    ):
        read_table(path)
    assert len(read_table(path, max_chars=300_000).inputs[1]) == 199_999
    assert csv.field_size_limit() == limit  # the process-wide bound is left as it was
    with pytest.raises(ValueError, match="--max-chars must be an integer >= 1, got 0"):
        read_table(path, max_chars=0)


def test_ts_files_with_missing_values_and_variable_lengths(tmp_path):
    path = tmp_path / "toy.ts"
    path.write_text(TS)
    data = read_ts(path)
    assert data.name == "Toy" and data.classes == ("a", "b") and data.dimensions == 2
    assert data.series[0].tolist() == [[1, 4], [2, 5], [3, 6]]
    assert data.series[1].shape == (2, 2) and math.isnan(data.series[1][1, 0])
    assert data.targets().tolist() == [0, 1]
    with pytest.raises(ValueError, match=r"label\(s\) \['b'\] are not among"):
        data.targets(("a",))
    path.write_text("% ARFF-style comments, as in sktime's UnitTest set\n%\n" + TS)
    assert read_ts(path).series[0].tolist() == [[1, 4], [2, 5], [3, 6]]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("1,x,3:4,5,6:a\n", "toy.ts line 8, dimension 1: expected a number or '\\?', got 'x'"),
        ("1,2,3:a\n", "toy.ts line 8: expected 2 dimension"),
    ],
)
def test_malformed_ts_lines(tmp_path, body, message):
    path = tmp_path / "toy.ts"
    path.write_text(TS.split("@data")[0] + "@data\n" + body)
    with pytest.raises(ValueError, match=message):
        read_ts(path)
