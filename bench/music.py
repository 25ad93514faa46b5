"""Polyphonic music: test NLL per time step on music21's Bach chorales for an LSTM, a GRU and
a tanh RNN on the same budget (issue 8's benchmark), plus a melody model on Essen folk tunes
and a MIDI sample from each.

Preprocessing (ours, stated because the published JSB figures use theirs): all 371 chorales
of ``music21.corpus.chorales.Iterator()``, sampled at every quarter note, each transposed to
C major / C minor by music21's key analysis, the training pieces' pitch range (not all 88
keys: a pitch never played costs almost nothing either way), a seeded 62/19/19% split by
chorale (229/71/71). Boulanger-Lewandowski et al. 2012's JSB set is also quarter notes in
C major / minor with 229/76/77 chorales; theirs were prepared from other scores, so figures
are comparable in scale, not to the decimal.

Metric: -Σ_t Σ_p log p(v_{t,p} | v_{<t}) / (test steps), nats, on the best-validation
checkpoint. Target (issue 8): LSTM and GRU <= 8.5 (published: LSTM 8.45, GRU 8.43, tanh
RNN 8.91, Chung et al. 2014 / Boulanger-Lewandowski et al. 2012).

    python bench/music.py                 # chorales x 3 cells, melody; ~15 min on 2 cores
    python bench/music.py --cells lstm --steps 300 --name screen_music
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import torch
from harness import Row, markdown_table, metadata, summary
from harness import write_results as write_files

from elman.tasks.music import sampling
from elman.tasks.music import task as music
from elman.tasks.music.command import default_cache
from elman.tasks.registry import load_run
from elman.train import TrainConfig

PUBLISHED = {"lstm": 8.45, "gru": 8.43, "rnn": 8.91}
TARGET = 8.5
HERE = Path(__file__).parent


def run(case: dict) -> Row:
    torch.set_num_threads(1)
    a = case["args"]
    out = HERE / "runs" / "music" / case["name"].replace(" ", "_")
    config = music.MusicConfig(
        kind=case["kind"],
        cell=case["cell"],
        hidden=a.hidden,
        layers=a.layers,
        dropout=a.dropout,
        batch_size=a.batch,
        augment=a.augment if case["kind"] == "chorales" else 0,
    )
    train = TrainConfig(
        steps=case["steps"], lr=a.lr, eval_every=a.eval_every, clip_norm=5.0, progress=False
    )
    start = time.perf_counter()
    music.train(case["source"], config, train, out)
    loaded = load_run(out)
    result = loaded.evaluate(split="test")
    model, encoding, meta = loaded.model, loaded.encoding, loaded.meta
    primer = sampling.primer_from(meta, 0, 8)
    piece = sampling.generate(model, encoding, primer, 56, 1.0, seed=0)
    sample = HERE / "results" / f"music_sample_{case['name'].replace(' ', '_')}.mid"
    sampling.write_midi(piece, encoding, config.step, sample)
    key = "nll_per_step" if case["kind"] == "chorales" else "nll_per_note"
    row: Row = {
        "name": case["name"],
        "metric": f"test_{key}",
        "value": result[key],
        "better": "lower",
        "test_pieces": result["pieces"],
        "best_val": meta["metrics"]["val_loss"],
        "best_step": meta["step"],
        "sample_midi": str(sample.relative_to(HERE.parent)),
        "seconds": round(time.perf_counter() - start, 1),
    }
    if case["kind"] == "chorales":
        row["baseline"] = {"published JSB": PUBLISHED[case["cell"]]}
        if case["cell"] in ("lstm", "gru"):
            row.update(target=TARGET, met=result[key] <= TARGET)
    return row


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--cells", nargs="+", choices=("lstm", "gru", "rnn"), default=["lstm", "gru", "rnn"]
    )
    p.add_argument("--steps", type=int, default=3000, help="optimizer steps per chorale model")
    p.add_argument("--melody-steps", type=int, default=2000, help="0: no melody model")
    p.add_argument("--match", default="altdeu10", help="Essen files for the melody model")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--augment", type=int, default=0)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--cache", type=Path, default=default_cache(1.0))
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--out", type=Path, default=HERE / "results")
    p.add_argument("--name", default="music")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> list[Row]:
    a = parse_args(argv)
    torch.set_num_threads(1)  # as in every worker, so the header names the threads used
    chorales = {"kind": "chorales", "seed": 0, "cache": str(a.cache)}
    music.load_source(chorales | {"step": 1.0, "transpose": "c"})  # parse once, cache
    cases = [
        {
            "name": f"chorales {c}",
            "kind": "chorales",
            "cell": c,
            "steps": a.steps,
            "source": chorales,
            "args": a,
        }
        for c in a.cells
    ]
    if a.melody_steps:
        melody = {"kind": "melody", "seed": 0, "match": a.match}
        cases.append(
            {
                "name": "melody lstm",
                "kind": "melody",
                "cell": "lstm",
                "steps": a.melody_steps,
                "source": melody,
                "args": a,
            }
        )
    budget = (
        f"{a.steps} steps per chorale model ({a.melody_steps} melody), batch {a.batch}, "
        f"Adam lr {a.lr} cosine, clip 5, hidden {a.hidden} x {a.layers}, dropout {a.dropout}, "
        f"augment {a.augment}; best-validation checkpoint; {a.jobs} processes x 1 thread"
    )
    data = (
        "music21 chorales (371, sampled at quarter notes, transposed to C, split 229/71/71 by "
        "chorale); "
        f"Essen folk songs ({a.match}*, sixteenth grid, same split rule)"
    )
    meta = metadata("music", budget, data)
    rows: list[Row] = []
    with ProcessPoolExecutor(a.jobs, mp_context=get_context("spawn")) as pool:
        for row in pool.map(run, cases):
            rows.append(row)
            print(
                f"{row['name']}: {row['metric']} {row['value']:.3f} ({row['seconds']} s)",
                flush=True,
            )
            write_files(a.out, a.name, meta, rows, len(cases), markdown(meta, rows, len(cases)))
    print(summary(rows, len(cases)))
    return rows


def markdown(meta: dict[str, object], rows: list[Row], planned: int) -> str:
    body = [
        [
            str(r["name"]),
            str(r["metric"]),
            f"{r['value']:.3f}",
            str(r.get("baseline", {}).get("published JSB", "-")),  # type: ignore[union-attr]
            str(r["best_step"]),
            str(r["sample_midi"]),
        ]
        for r in rows
    ]
    head = ["case", "metric", "value", "published", "best step", "sample"]
    lines = [
        "# Music: chorales NLL per time step (LSTM, GRU, tanh RNN) and a melody model",
        "",
        f"{meta['machine']}; {meta['date']}; {meta['budget']}; {meta['data']}.",
        "",
        *markdown_table(head, body),
        "",
        summary(rows, planned),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
