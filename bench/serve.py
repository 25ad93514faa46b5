"""``elman serve`` under load on loopback (issue 9's serving benchmark).

A 2-layer, 256-wide character LSTM (trained a few steps on the bundled Shakespeare: speed
does not depend on how good it is) is served by ``elman serve`` in its own process with one
torch thread; the other core runs the clients. N concurrent clients (N in 1, 16, 64) each
open a session and step it 1,000 times, one character per request, waiting for each reply.
Reported per case: throughput (steps/s, all clients), p50/p99 step latency as the client
sees it, errors (non-200 replies), and lost state: after the run every session must report
1,000 steps and its last reply must equal a Python ``Stream`` fed the same text. At N=64 the
server is then killed (SIGKILL) and restarted on its SQLite file, and every session must
resume exactly (its next reply equal to the Python stream's).

Cases: micro-batching on (``--max-batch 64``) and off (1); sessions persisted after every
step (default) or only at shutdown. Also the server's memory per open session (RSS growth
over 500 sessions) and, in-process, one step's latency at B=1 against a batch of streams.

    python bench/serve.py            # ~5 minutes; --steps 200 for a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import torch
from harness import Row, markdown_table, metadata, summary, write_results

from elman.data.text import bundled_corpus_path, read_text
from elman.serve.launch import launch
from elman.tasks.lm.stream import Stream
from elman.tasks.registry import load_run
from elman.tasks.streams import feed_together

HERE = Path(__file__).parent
ELMAN = str(Path(sys.executable).parent / "elman")
TOP_K = 5


def train(folder: Path) -> Path:
    out = folder / "lstm-2x256"
    args = ["train", "charlm", "--out", str(out), "--cell", "lstm", "--hidden", "256"]
    args += ["--layers", "2", "--embedding", "64", "--steps", "20", "--batch-size", "16"]
    args += ["--seq-len", "64", "--eval-every", "20", "--no-progress", "--sample-length", "5"]
    subprocess.run([ELMAN, *args], check=True, capture_output=True)
    return out


def start(run: Path, state: Path, max_batch: int, persist: str) -> tuple[subprocess.Popen, str]:
    options = ["--state", str(state), "--max-batch", str(max_batch), "--persist", persist]
    options += ["--log-level", "warning", "--max-sessions-per-client", "10000"]
    return launch([run], *options, threads=1)


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(next(ln.split()[1] for ln in f if ln.startswith("VmRSS")))


class Connection:
    """One keep-alive HTTP/1.1 connection that posts JSON and reads the reply. The load runs
    on this bare client because httpx spent about 2 ms of CPU per request here, so on two
    cores it, not the server, set the pace (first full run: 376 steps/s at N=16)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, url: str) -> Connection:
        host, port = url.removeprefix("http://").split(":")
        return cls(*await asyncio.open_connection(host, int(port)))

    async def post(self, path: str, body: dict) -> tuple[int, bytes]:
        data = json.dumps(body).encode()
        head = f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        self.writer.write(f"{head}Content-Length: {len(data)}\r\n\r\n".encode() + data)
        lines = (await self.reader.readuntil(b"\r\n\r\n")).split(b"\r\n")
        length = next(
            int(h.split(b":")[1]) for h in lines if h.lower().startswith(b"content-length")
        )
        return int(lines[0].split()[1]), await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def _client(url: str, sid: str, text: str, lat: list, errors: list) -> dict:
    reply: dict = {}
    c = await Connection.open(url)
    for ch in text:
        t0 = time.perf_counter()
        status, body = await c.post(f"/sessions/{sid}/step", {"text": ch})
        lat.append(time.perf_counter() - t0)
        if status != 200:
            errors.append(status)
        else:
            reply = json.loads(body)
    c.close()
    return reply


async def load(url: str, texts: list[str]) -> dict:
    """Every text streamed through its own session by its own concurrent client."""
    async with httpx.AsyncClient(base_url=url, timeout=60) as c:
        warm = (await c.post("/sessions", json={"model": "lstm-2x256"})).json()["id"]
        await _client(url, warm, "warm up " * 8, [], [])  # first calls allocate and load code
        await c.delete(f"/sessions/{warm}")
        opened = [await c.post("/sessions", json={"model": "lstm-2x256"}) for _ in texts]
        ids = [r.json()["id"] for r in opened]
        lat: list[float] = []
        errors: list[int] = []
        t0 = time.perf_counter()
        replies = await asyncio.gather(
            *(_client(url, i, t, lat, errors) for i, t in zip(ids, texts, strict=True))
        )
        wall = time.perf_counter() - t0
        steps = [(await c.get(f"/sessions/{i}")).json()["steps"] for i in ids]
    ms = np.array(lat) * 1e3
    return {
        "ids": ids,
        "replies": replies,
        "steps": steps,
        "throughput": len(lat) / wall,
        "p50": float(np.percentile(ms, 50)),
        "p99": float(np.percentile(ms, 99)),
        "errors": len(errors),
    }


def expected(model, vocab, texts: list[str]) -> list[list[str]]:
    """The top tokens after each whole text, from Python streams (one batched pass)."""
    streams = [Stream(model) for _ in texts]
    outs = feed_together(streams, [vocab.encode(t) for t in texts])
    return [[vocab.chars[i] for i in o[-1].topk(TOP_K).indices] for o in outs]


def lost(result: dict, want: list[list[str]], length: int) -> int:
    bad = 0
    for reply, steps, top in zip(result["replies"], result["steps"], want, strict=True):
        got = [d["token"] for d in reply.get("next", [])]
        bad += steps != length or got != top
    return bad


def restart_check(run, state, url_proc, texts, model, vocab) -> int:
    """Kill -9 the server, restart it on its state file: sessions whose next step differs."""
    proc, result = url_proc
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc, url = start(run, state, 64, "step")
    try:
        nxt = [(r, t + "e") for r, t in zip(result["ids"], texts, strict=True)]
        want = expected(model, vocab, [t for _, t in nxt])
        bad = 0
        for (sid, _), top in zip(nxt, want, strict=True):
            r = httpx.post(f"{url}/sessions/{sid}/step", json={"text": "e"}, timeout=60)
            bad += r.status_code != 200 or [d["token"] for d in r.json()["next"]] != top
        return bad
    finally:
        proc.terminate()
        proc.wait()


def memory(run: Path, folder: Path, count: int = 500) -> float:
    """KiB of server RSS per open session (each stepped once), over ``count`` sessions."""
    proc, url = start(run, folder / "memory.sqlite", 64, "step")
    try:
        with httpx.Client(base_url=url, timeout=60) as c:
            ids = [
                c.post("/sessions", json={"model": "lstm-2x256"}).json()["id"] for _ in range(20)
            ]
            for i in ids:
                c.post(f"/sessions/{i}/step", json={"text": "a"})
            before = rss_kib(proc.pid)
            for _ in range(count):
                sid = c.post("/sessions", json={"model": "lstm-2x256"}).json()["id"]
                c.post(f"/sessions/{sid}/step", json={"text": "a"})
            return (rss_kib(proc.pid) - before) / count
    finally:
        proc.terminate()
        proc.wait()


def in_process(model, repeat: int = 300) -> dict[int, float]:
    """Microseconds per call of one step (one token) for B streams stepped together."""
    out = {}
    torch.set_num_threads(1)
    for batch in (1, 16, 64):
        streams = [Stream(model) for _ in range(batch)]
        x = [torch.tensor([3])] * batch
        for _ in range(20):
            feed_together(streams, x) if batch > 1 else streams[0].feed(x[0])
        t0 = time.perf_counter()
        for _ in range(repeat):
            feed_together(streams, x) if batch > 1 else streams[0].feed(x[0])
        out[batch] = (time.perf_counter() - t0) / repeat * 1e6
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=1000, help="steps per client")
    p.add_argument("--clients", type=int, nargs="+", default=[1, 16, 64])
    a = p.parse_args()
    corpus = read_text(bundled_corpus_path())
    folder = Path(tempfile.mkdtemp(prefix="elman-serve-bench-"))
    run = train(folder)
    loaded = load_run(run)
    model, vocab = loaded.model, loaded.vocab
    rows: list[Row] = []
    table = []
    cases = [(n, 64, "step") for n in a.clients] + [(n, 1, "step") for n in a.clients]
    cases += [(max(a.clients), 64, "shutdown")]
    for n, max_batch, persist in cases:
        texts = [corpus[k * 997 : k * 997 + a.steps] for k in range(n)]
        state = folder / f"s-{n}-{max_batch}-{persist}.sqlite"
        proc, url = start(run, state, max_batch, persist)
        result = asyncio.run(load(url, texts))
        missing = lost(result, expected(model, vocab, texts), a.steps)
        restarted = None
        if n == max(a.clients) and max_batch > 1 and persist == "step":
            restarted = restart_check(run, state, (proc, result), texts, model, vocab)
        else:
            proc.terminate()
            proc.wait()
        name = f"N={n}, batching {'on' if max_batch > 1 else 'off'}, persist {persist}"
        table.append(
            [
                name,
                f"{result['throughput']:,.0f}",
                f"{result['p50']:.2f}",
                f"{result['p99']:.2f}",
                str(result["errors"]),
                str(missing),
                "-" if restarted is None else str(restarted),
            ]
        )
        print(" | ".join(table[-1]), flush=True)
        base = {"case": name, "throughput": result["throughput"], "p50_ms": result["p50"]}
        rows.append(base | {"name": f"{name}: p99 ms", "value": result["p99"]})
        if n == 16 and max_batch > 1:  # the target, on the default configuration
            rows[-1] |= {"target": 20.0, "better": "lower", "met": result["p99"] < 20}
        if n == 64:
            bad = result["errors"] + missing + (restarted or 0)
            rows.append(
                {"name": f"{name}: errors + lost", "value": bad, "target": 0, "better": "lower"}
                | {"met": bad == 0}
            )
    per_session = memory(run, folder)
    micro = in_process(model)
    meta = metadata(
        "serve",
        f"{a.steps} steps per client; server: 1 torch thread; clients: 1 process, asyncio, "
        "one keep-alive connection each",
        "2-layer 256-wide character LSTM (Shakespeare vocabulary), one character per step",
    )
    md = [f"# Serving benchmark\n\n{meta['machine']}; {meta['date']}; {meta['budget']}\n"]
    md += markdown_table(
        ["case", "steps/s", "p50 ms", "p99 ms", "errors", "lost state", "lost after kill -9"],
        table,
    )
    md += [f"\nServer memory per open session: {per_session:.1f} KiB (RSS over 500 sessions).\n"]
    md += ["In-process step latency (one token, 1 thread):\n"]
    md += markdown_table(
        ["streams stepped together", "µs per call", "µs per stream"],
        [[str(b), f"{t:,.0f}", f"{t / b:,.1f}"] for b, t in micro.items()],
    )
    rows.append({"name": "memory per session KiB", "value": per_session})
    rows += [{"name": f"in-process B={b} µs", "value": t} for b, t in micro.items()]
    md += ["", summary(rows, len(rows))]
    write_results(HERE / "results", "serve", meta, rows, len(rows), "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
