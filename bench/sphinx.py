"""PocketSphinx, the side-by-side recogniser of the speech-recognition benchmark (issue 25).

Out of the box: the US-English acoustic model, CMUdict and 3-gram language model shipped in
the ``pocketsphinx`` wheel, every setting at its default. On the 20-utterance try corpus, wider
beams (beam/pbeam 1e-80, wbeam 1e-60), narrower ones (1e-40), language weights 4 and 10 and
no flat-lexicon pass (fwdflat off: 1 word fewer wrong, CER up) gave no clear gain, so the
defaults stay. Each file is one utterance, decoded whole (``full_utt``: batch CMN); the feature
state is reset between files, since it otherwise carries over and changes the next hypothesis.

    python bench/sphinx.py MANIFEST.tsv [--limit N]   # JSON: configuration, WER, CER, speed
    python bench/sphinx.py --check                      # self-check (synthesised speech)
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import jiwer
import pocketsphinx

from elman.data.speech.audio import float_to_pcm16, read_audio, require, write_wav
from elman.data.speech.manifests import read_manifest
from elman.tasks.asr.alphabet import Alphabet

RATE = 16000
# The wheel's models, relative to pocketsphinx.get_model_path().
MODELS = {"hmm": "en-us/en-us", "dict": "en-us/cmudict-en-us.dict", "lm": "en-us/en-us.lm.bin"}
CONFIG = {"samprate": RATE, "loglevel": "FATAL"}  # all else at the installed defaults
# Effective search and front-end settings, read back from the decoder for the record.
REPORTED = "beam wbeam pbeam lw fwdflat fwdflatlw bestpath bestpathlw wip cmn remove_noise feat"
REPORTED += " nfilt lowerf upperf frate"
FILLER = re.compile(r"^(<.*>|\[.*\]|\+\+.*\+\+)$")  # <s>, <sil>, [NOISE], ++GARBAGE++
VARIANT = re.compile(r"\(\d+\)$")  # that(2): the dictionary's second pronunciation


def decoder() -> pocketsphinx.Decoder:
    """A decoder with the shipped models and ``CONFIG`` (~0.6 s to load)."""
    models = {k: pocketsphinx.get_model_path(v) for k, v in MODELS.items()}
    return pocketsphinx.Decoder(**models, **CONFIG)


def configuration(dec: pocketsphinx.Decoder | None = None) -> dict:
    """What PocketSphinx runs with, for a results file: version, models, options set and
    the effective values of the main settings."""
    config = (dec if dec is not None else decoder()).config
    return {
        "recogniser": "PocketSphinx",
        "version": importlib.metadata.version("pocketsphinx"),
        "acoustic_model": MODELS["hmm"],
        "dictionary": MODELS["dict"],
        "language_model": MODELS["lm"],
        "models_from": "the pocketsphinx wheel (pocketsphinx.get_model_path())",
        "sample_rate": RATE,
        "options_set": dict(CONFIG),
        "settings": {k: config[k] for k in REPORTED.split()},
        "input": "each file read as mono 16 kHz, 16-bit PCM, decoded whole as one utterance "
        "(process_raw full_utt=True), feature state reset between files (reinit_feat)",
        "output": "best-path words without fillers or (n) variant marks, lower-cased, "
        "characters other than a-z and ' as spaces",
    }


def normalise(words: Sequence[str]) -> str:
    """Decoder words -> Elman's alphabet: fillers dropped, variant marks removed, lower-cased,
    other characters than a-z and apostrophe turned to spaces (x-ray -> x ray), single spaces."""
    kept = [VARIANT.sub("", w).lower() for w in words if not FILLER.match(w)]
    return " ".join(re.sub(r"[^a-z']+", " ", " ".join(kept)).split())


def transcribe(paths: Sequence[str | Path], dec: pocketsphinx.Decoder | None = None) -> list[str]:
    """One normalised hypothesis per audio file, all through one decoder (``dec`` or a new
    one); a file's hypothesis does not depend on the files before it."""
    dec = dec if dec is not None else decoder()
    out = []
    for path in paths:
        pcm = float_to_pcm16(read_audio(path, rate=RATE))
        dec.reinit_feat()  # else CMN and noise statistics carry over from the last file
        dec.start_utt()
        dec.process_raw(pcm, full_utt=True)
        dec.end_utt()
        out.append(normalise([s.word for s in dec.seg()]))
    return out


def error_rates(references: list[str], hypotheses: list[str]) -> dict:
    """Corpus-level WER and CER (total edits / total reference words or characters, spaces
    included, with jiwer) and the substitution/deletion/insertion counts behind them."""
    if len(references) != len(hypotheses) or not references:
        raise ValueError(
            f"error_rates: expected as many hypotheses as references (at least one), got "
            f"{len(references)} references and {len(hypotheses)} hypotheses"
        )
    if not any(r.split() for r in references):
        raise ValueError("error_rates: references hold no words; WER is undefined")
    w = jiwer.process_words(references, hypotheses)
    c = jiwer.process_characters(references, hypotheses)
    return {
        "wer": w.wer,
        "cer": c.cer,
        "words": sum(map(len, w.references)),
        "chars": sum(map(len, c.references)),
        "word_errors": {"sub": w.substitutions, "del": w.deletions, "ins": w.insertions},
        "char_errors": {"sub": c.substitutions, "del": c.deletions, "ins": c.insertions},
    }


def evaluate(manifest: Path, limit: int | None = None) -> dict:
    """The JSON ``main`` prints. Decode time excludes loading the models; CPU seconds are
    given too, since wall time on a shared machine includes other tenants' stalls."""
    utts = read_manifest(manifest)[:limit]
    seconds = sum(require("soundfile").info(str(u.audio)).duration for u in utts)
    start = time.perf_counter()
    dec = decoder()
    loaded, cpu = time.perf_counter(), time.process_time()
    hyps = transcribe([u.audio for u in utts], dec)
    wall, cpu = time.perf_counter() - loaded, time.process_time() - cpu
    refs = [Alphabet().normalise(u.text) for u in utts]
    return {
        "configuration": configuration(dec),
        "manifest": str(manifest),
        "utterances": len(utts),
        "audio_seconds": round(seconds, 3),
        "load_seconds": round(loaded - start, 3),
        "decode_seconds": round(wall, 3),
        "decode_cpu_seconds": round(cpu, 3),
        "real_time_factor": round(wall / seconds, 4),
        **error_rates(refs, hyps),
    }


def check() -> None:
    from elman.data.speech.synth import Synth

    assert normalise(["<s>", "Three(2)", "<sil>", "[NOISE]", "x-ray", "a.m.", "o'clock"]) == (
        "three x ray a m o'clock"
    )
    r = error_rates(["a b c", "d"], ["a x c", ""])  # mean of per-utterance WERs: 0.67
    assert r["wer"] == 0.5 and r["word_errors"] == {"sub": 1, "del": 1, "ins": 0}, r
    texts = ["three part analysis of the costs", "i do the living room last"]
    with tempfile.TemporaryDirectory() as tmp:
        paths = [Path(tmp) / f"{i}.wav" for i in range(len(texts))]
        for text, path in zip(texts, paths, strict=True):
            write_wav(path, *Synth().speak(text))  # 22050 Hz: read back resampled
        hyps = transcribe(paths)
        assert transcribe(paths[::-1])[::-1] == hyps, "hypotheses depend on the file order"
    assert all(re.fullmatch(r"[a-z' ]*", h) for h in hyps), hyps
    print(json.dumps({"hypotheses": hyps, **error_rates(texts, hyps)}))


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("manifest", type=Path, nargs="?", help="TSV with path and transcript")
    p.add_argument("--limit", type=int, default=None, help="first N utterances only")
    p.add_argument("--check", action="store_true", help="run the self-check and exit")
    a = p.parse_args(argv)
    if a.check:
        return check()
    if a.manifest is None or (a.limit is not None and a.limit < 1):
        p.error(f"expected a manifest and --limit >= 1, got {a.manifest} and {a.limit}")
    print(json.dumps(evaluate(a.manifest, a.limit), indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
