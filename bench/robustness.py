"""Hostile inputs through every ``elman`` command and the HTTP server (issue 21's robustness
table): of every bad input a user can give, how many end in a clear error, a traceback, a 5xx
or a hang.

Tiny runs of every task are trained once into a temporary folder (and copied, then tampered
with: headers that are not an object, not JSON, disagree with the tensors, name another task
or nest 100,000 parentheses; truncated files). Then every case runs in a fresh copy of the
runs it names, at most ``--workers`` at a time, each with one torch thread, an address-space
cap and a time limit, and ends as one of:

- error: exit 2, no ``Traceback``, and an ``elman: error: ...`` line (or argparse's ``elman
  CMD: error: ...``) with at most two lines after it;
- ok: exit 0 (for a case marked as one that must be refused, it is also listed as accepted);
- traceback: ``Traceback`` in stderr or exit 1; crash: killed by a signal (e.g. a C++ abort);
- unclear: any other exit, or an error message of more than a few lines;
- hang: still running at the time limit (busy instead where the case asks for that much work:
  a billion training steps or generated characters).

The server (one ``elman serve`` of every run, in its own process) gets malformed and hostile
requests on every endpoint and the sessions API: a reply is error (4xx with a JSON
``detail``), ok, 5xx, traceback (one in the server's log during the request), hang, crash
(the server died: it is restarted), unclear (4xx without JSON), or changed (an error reply to
a session step, after which the session's step count moved).

Cases run in a fork of this process, which has imported Elman already (``elman.cli.main``
in the child; ~0.3 s per case instead of ~4 s of imports); ``--exec`` runs each in a new
``elman`` process instead, exactly as a user does.

    python bench/robustness.py                          # everything: 5-15 minutes
    python bench/robustness.py --only generate --only http --limit 20
    python bench/robustness.py --match tampered --exec   # rerun a part as real processes

A run of every command writes ``bench/results/robustness.json`` and ``.md`` (a selection
prints its table and writes files only with ``--out``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import resource
import shlex
import shutil
import signal
import sqlite3
import struct
import sys
import tempfile
import time
import traceback
import urllib.request
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness import Row, markdown_table, metadata, summary, write_results

HERE = Path(__file__).parent
ELMAN = str(Path(sys.executable).parent / "elman")
BAD_NUMBERS = ("0", "-1", "1000000000", "NaN", "1e308", str(2**70))
# Huge values of these ask for much work (or, for serve's --port, move the server off the
# port probed): a time-out there is "busy", not a hang.
SLOW_OPTIONS = {"--steps", "--epochs", "--length", "--time-limit", "--limit", "--sample-length"}
SLOW_OPTIONS |= {"--port", "--accumulate"}
MEMORY = 6 << 30  # address-space cap per case: a 15 GB allocation fails instead of swapping
CLEAR = re.compile(r"^elman(?: [\w-]+)*: error: ")
FAILED = ("traceback", "crash", "hang", "unclear", "5xx", "changed")
RUN = ["--steps", "2", "--eval-every", "2", "--no-progress"]
TRAIN = {  # the tiny, valid training of each run: name -> arguments after `elman train`
    name: line.split()
    for name, line in {
        "charlm": "charlm {data}/t.txt --embedding 8 --hidden 8 --layers 1 --batch-size 4 "
        "--seq-len 16 --sample-length 5",
        "wordlm": "wordlm {data}/w.txt --test {data}/w.txt --embedding 8 --hidden 8 --layers 1 "
        "--min-freq 1 --batch-size 2 --seq-len 5 --sample-length 5",
        "classify": "classify --train {data}/c.csv --hidden 6 --embedding 6 --batch-size 4 "
        "--no-bidirectional",
        "series": "classify --ts {data}/m.ts --hidden 6 --batch-size 4 --no-bidirectional "
        "--no-conv",  # the conv branch does not stream: its sessions are the ones tried
        "tag": "tag --train {data}/t.tsv --valid {data}/t.tsv --word-embedding 6 "
        "--char-embedding 3 --char-filters 4 --hidden 6 --min-freq 1 --batch-size 2",
        "seq2seq": "seq2seq --pairs {data}/p.tsv --embedding 6 --hidden 6 --batch-size 4 "
        "--max-target 12",
        "forecast": "forecast {data}/s.csv --target value --no-calendar --no-normalize "
        "--context 12 --horizon 4 --hidden 8 --layers 1 --samples 10",
        "music": "music --chorales --limit 5 --cache {data}/chorales.safetensors --hidden 8 "
        "--batch-size 2",
    }.items()
}


LENIENT = {  # data files a command may accept: missing values are filled (--missing), a
    # text column is not read without --time-col, detect scores a series shorter than the context
    "nan.csv": ("train", "forecast", "backtest", "detect"),
    "bad-date.csv": ("forecast", "backtest", "detect"),
    "five.csv": ("detect",),
}
TAMPERS = ("not-object", "invalid-json", "config-mismatch", "other-task", "nested-rng", "truncated")


@dataclass(frozen=True)
class Case:
    """One command line. ``args`` may hold ``{data}`` (the data folder), ``{scratch}`` (an
    empty folder of its own), ``{file}`` (an existing file there), ``{port}`` (a free port)
    and ``{run:NAME}`` (a fresh copy of the run ``NAME``, e.g. ``charlm`` or
    ``tampered/charlm-truncated``). expect: "error" when a refusal is the only right end."""

    command: str
    args: tuple[str, ...]
    expect: str = "any"
    stdin: str | None = None  # a file under {data} fed as standard input
    slow_ok: bool = False

    @property
    def line(self) -> str:
        return "elman " + shlex.join(self.args)


@dataclass(frozen=True)
class Request:
    """One HTTP request to the server of every run; ``{sid}`` in the path is a fresh session
    of ``session`` (a run name), opened with ``options``."""

    command: str
    method: str
    path: str
    body: bytes | None = None
    session: str | None = None
    options: dict = field(default_factory=dict)
    expect: str = "error"

    @property
    def line(self) -> str:
        body = "" if self.body is None else " " + self.body[:160].decode("utf-8", "replace")
        return f"{self.method} {self.path}{body}"


@dataclass
class Result:
    command: str
    line: str
    kind: str
    expect: str
    last: str = ""  # the last stderr line, or the reply's detail

    def row(self) -> dict:
        return {"command": self.command, "case": self.line, "kind": self.kind, "last": self.last}


# ---- outcomes ----------------------------------------------------------------------------------


def last_line(text: str) -> str:
    """The error line (with how many lines follow it), else the last line of ``text``."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    at = next((i for i, ln in enumerate(lines) if CLEAR.match(ln)), None)
    if at is None:
        return lines[-1][:300] if lines else ""
    more = len(lines) - at - 1
    return lines[at][:300] + (f" (and {more} more lines)" if more else "")


def outcome(rc: int | None, stderr: str, slow_ok: bool = False) -> str:
    """The end of one command: see the module's docstring. ``rc`` None: it was stopped."""
    if rc is None:
        return "busy" if slow_ok else "hang"
    if "Traceback (most recent call last)" in stderr or rc == 1:
        return "traceback"
    if rc < 0:
        return "crash"
    if rc == 0:
        return "ok"
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    at = next((i for i, ln in enumerate(lines) if CLEAR.match(ln)), None)
    if rc == 2 and at is not None and len(lines) - at <= 3:
        return "error"
    return "unclear"


def reply_outcome(status: int | None, body: bytes, logged_traceback: bool) -> str:
    """The end of one request; ``status`` None: no reply in time (the caller tells a dead
    server, crash, from a hang)."""
    if status is None:
        return "hang"
    if status >= 500:
        return "5xx"
    if logged_traceback:
        return "traceback"
    if status < 400:
        return "ok"
    try:
        return "error" if "detail" in json.loads(body) else "unclear"
    except (ValueError, TypeError):
        return "unclear"


# ---- fixtures: data files, tiny runs, tampered copies ------------------------------------------


def write_data(folder: Path) -> None:
    """Valid inputs of every task, and hostile ones (empty, not UTF-8, one 50 MB line, ...)."""
    from elman.data.text import bundled_corpus_path, read_text

    folder.mkdir(parents=True, exist_ok=True)
    sentences = ["the cat sat on the mat", "a dog ran to the cat", "the mat was red"] * 6
    rows = [("great film", "pos"), ("awful plot", "neg"), ("a great plot", "pos")] * 5
    tagged = "the\tat\ncat\tnn\nran\tvbd\n\na\tat\ndog\tnn\nsat\tvbd\n"
    pairs = [("cat", "K AE T"), ("tac", "T AE K"), ("act", "AE K T"), ("at", "AE T")] * 5
    wave = [round(math.sin(k / 3) + 0.05 * math.cos(7 * k), 4) for k in range(120)]
    cases = [f"{k},{k + 1},{k % 3}:{-k},{k},1:{'up' if k % 2 else 'down'}" for k in range(12)]
    header = "@problemName m\n@univariate false\n@dimensions 2\n@equalLength true\n"
    files = {
        "t.txt": read_text(bundled_corpus_path())[:4000],
        "w.txt": "\n".join(sentences) + "\n",
        "lines.txt": "great film\nthe cat sat\n",
        "c.csv": "text,label\n" + "".join(f"{t},{y}\n" for t, y in rows),
        "t.tsv": (tagged + "\n") * 5,
        "p.tsv": "".join(f"{s}\t{t}\n" for s, t in pairs),
        "words.txt": "cat\ntac\n",
        "s.csv": "value\n" + "".join(f"{v}\n" for v in wave),
        "m.ts": header + "@classLabel true up down\n@data\n" + "\n".join(cases),
        "empty.txt": "",
        "five.csv": "value\n1\n2\n3\n4\n5\n",
        "wrongcol.csv": "foo,bar\n" + "".join(f"{v},{v}\n" for v in wave),
        "huge-values.csv": "value\n" + "".join(f"{v * 1e308}\n" for v in wave),
        "nan.csv": "value\n"
        + "".join(f"{'nan' if k % 7 == 0 else v}\n" for k, v in enumerate(wave)),
        "bad-date.csv": "day,value\n" + "".join(f"day {k},{v}\n" for k, v in enumerate(wave)),
        "labels.csv": "value,label\n" + "".join(f"{v},{int(v > 0.9)}\n" for v in wave),
        "notabs.tsv": "the cat sat\na dog ran\n" * 5,
        "three.tsv": "".join(f"{s}\t{t}\textra\n" for s, t in pairs),
        "numbers.txt": "\n".join(["1"] * 13),
    }
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    (folder / "binary.txt").write_bytes(b"\xff\xfe\x00caf\xe9\n\x80\x81 the cat\n" * 20)
    (folder / "adir").mkdir(exist_ok=True)
    with open(folder / "huge.txt", "w") as f:  # one 50 MB line of words
        f.write("the cat sat on the mat " * (50_000_000 // 23))
    from elman.serve.store import SCHEMA

    with sqlite3.connect(folder / "bad-options.sqlite") as db:  # a row whose options are not JSON
        db.execute(SCHEMA)
        row = "('x', '', 'charlm', '{not json', x'00', 1, 0, 0)"
        db.execute(f"INSERT OR REPLACE INTO sessions VALUES {row}")
    db.close()


def train_runs(root: Path, names: Iterable[str], workers: int, mode: str) -> list[Result]:
    """Train each named run into ``root/runs`` (through the same runner as the cases),
    unless it is there from an earlier run of this script (``--keep``)."""
    names = [n for n in names if not (root / "runs" / n / "last.safetensors").exists()]
    cases = [
        Case("fixture", ("train", *TRAIN[n], "--out", f"{root}/runs/{n}", *RUN)) for n in names
    ]
    results = run_cases(cases, root, workers, mode, timeout=300, keep=True)
    return [r for r in results if r.kind != "ok"]


def rewrite_header(path: Path, change) -> None:
    """Replace the Elman JSON in a safetensors file's metadata by ``change(text)``: the
    8-byte header length, the header (padded with spaces to 8 bytes), the tensors as they were."""
    data = path.read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + n])
    header["__metadata__"]["elman"] = change(header["__metadata__"]["elman"])
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + n :])


def _nested(meta: dict, key: str, value) -> bool:
    """Set the first ``key`` found in nested dicts of ``meta``; whether one was found."""
    for k, v in meta.items():
        if k == key and isinstance(v, int):
            meta[k] = value(v)
            return True
        if isinstance(v, dict) and _nested(v, key, value):
            return True
    return False


def tamper(text: str, kind: str) -> str:
    """The header JSON ``text`` tampered with as ``kind`` (one of TAMPERS but truncated)."""
    meta = json.loads(text)
    if kind == "not-object":
        return json.dumps([meta.get("task"), 1, 2])
    if kind == "invalid-json":
        return text[: len(text) // 2]
    if kind == "config-mismatch":
        for key in ("hidden", "embedding", "word_embedding"):
            if _nested(meta.get("task_config", meta), key, lambda v: 2 * v + 1):
                break
    elif kind == "other-task":
        meta["task"] = "forecast" if meta.get("task") != "forecast" else "charlm"
    elif kind == "nested-rng":
        meta["rng_python"] = "(" * 100_000
    else:
        raise ValueError(f"unknown tamper {kind!r}")
    return json.dumps(meta)


def tamper_runs(root: Path, names: Iterable[str]) -> None:
    for name in names:
        for kind in TAMPERS:
            target = root / "tampered" / f"{name}-{kind}"
            shutil.copytree(root / "runs" / name, target, dirs_exist_ok=True)
            for ckpt in target.glob("*.safetensors"):
                if kind == "truncated":
                    ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
                else:
                    rewrite_header(ckpt, lambda text, kind=kind: tamper(text, kind))


# ---- running command lines ---------------------------------------------------------------------


def resolve(case: Case, root: Path, scratch: Path) -> tuple[list[str], int | None]:
    """The command line with its placeholders filled (copying runs into ``scratch``)."""
    port = None
    out = []
    for arg in case.args:
        for name in re.findall(r"\{run:([\w/.-]+)\}", arg):
            copy = scratch / name.replace("/", "_")
            if not copy.exists():
                shutil.copytree(root / ("" if "/" in name else "runs") / name, copy)
            arg = arg.replace(f"{{run:{name}}}", str(copy))
        if "{port}" in arg:
            from elman.serve.launch import free_port

            port = free_port()
            arg = arg.replace("{port}", str(port))
        if "{file}" in arg:
            (scratch / "existing.txt").write_text("a file of the user's\n")
            arg = arg.replace("{file}", str(scratch / "existing.txt"))
        out.append(arg.replace("{data}", str(root / "data")).replace("{scratch}", str(scratch)))
    return out, port


def _child(argv: list[str], stdin: str, out: str, err: str, mode: str) -> None:
    """In the forked child: files as stdin/stdout/stderr, limits, then the command."""
    code = 1
    try:
        os.setpgid(0, 0)
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))
        for fd, (path, flags) in enumerate(
            [(stdin, os.O_RDONLY), (out, os.O_WRONLY | os.O_CREAT), (err, os.O_WRONLY | os.O_CREAT)]
        ):
            os.dup2(os.open(path, flags, 0o644), fd)
        if mode == "exec":
            os.execv(ELMAN, [ELMAN, *argv])
        from elman.cli import main

        code = main(argv)
    except SystemExit as e:  # argparse; what `sys.exit(main())` would do with its code
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # what the interpreter would print for an uncaught exception
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # the child ends whatever happened
                stream.flush()
        os._exit(code)


def _serving(port: int | None) -> bool:
    if port is None:
        return False
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=0.5) as r:
            return r.status == 200
    except OSError:
        return False


@dataclass
class Running:
    case: Case
    pid: int
    scratch: Path
    port: int | None
    started: float


def run_cases(
    cases: list[Case],
    root: Path,
    workers: int,
    mode: str,
    timeout: float,
    keep: bool = False,
    done=None,
    slow: float = 15.0,
) -> list[Result]:
    """Run ``cases``, ``workers`` at a time, from this one thread (forking from a process
    with threads could copy a held lock into the child). ``done(result)`` after each; a case
    that asks for much work (``slow_ok``) gets ``slow`` seconds at most."""
    queue, running, results = list(enumerate(cases)), {}, [None] * len(cases)
    limits = (timeout, min(timeout, slow))
    try:
        _loop(queue, running, results, root, workers, mode, limits, keep, done)
    finally:  # interrupted: no case outlives the script
        for r in running.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(r.pid, signal.SIGKILL)
    return results


def _loop(queue, running, results, root, workers, mode, limits, keep, done) -> None:
    while queue or running:
        while queue and len(running) < workers:
            i, case = queue.pop(0)
            scratch = root / "cases" / str(i)
            scratch.mkdir(parents=True, exist_ok=True)
            try:
                argv, port = resolve(case, root, scratch)
            except OSError as e:
                results[i] = Result(case.command, case.line, "unclear", case.expect, f"setup: {e}")
                continue
            stdin = str(root / "data" / case.stdin) if case.stdin else os.devnull
            sys.stdout.flush(), sys.stderr.flush()  # else the child would print them again
            pid = os.fork()
            if pid == 0:
                _child(argv, stdin, str(scratch / ".out"), str(scratch / ".err"), mode)
            running[i] = Running(case, pid, scratch, port, time.monotonic())
        time.sleep(0.05)
        for i, r in list(running.items()):
            limit = limits[r.case.slow_ok]
            status = _finished(r, limit)
            if status is False:
                continue
            del running[i]
            err = (r.scratch / ".err").read_text(errors="replace")
            kind = "ok" if status == "serving" else outcome(status, err, r.case.slow_ok)
            results[i] = Result(r.case.command, r.case.line, kind, r.case.expect, last_line(err))
            if not keep:
                shutil.rmtree(r.scratch, ignore_errors=True)
            if done is not None:
                done(results[i])


def _finished(r: Running, limit: float):
    """False while ``r`` runs; else its exit code (negative: a signal), None when it was
    stopped at ``limit``, or "serving" once a server it started answers /health."""
    pid, status = os.waitpid(r.pid, os.WNOHANG)
    if pid:
        return os.waitstatus_to_exitcode(status)
    serving = _serving(r.port)
    if not serving and time.monotonic() - r.started < limit:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(r.pid, signal.SIGKILL)
    os.waitpid(r.pid, 0)
    return "serving" if serving else None


# ---- the command-line cases --------------------------------------------------------------------


def parser_of(words: list[str]) -> argparse.ArgumentParser:
    from elman.cli import _parser

    p = _parser()
    for word in words:
        sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
        p = sub.choices[word]
    return p


def numeric_options(words: list[str]) -> list[str]:
    """The long names of the int and float options of ``elman WORDS``."""
    return [a.option_strings[-1] for a in parser_of(words)._actions if _numeric(a.type)]


def _numeric(kind) -> bool:
    """Whether an argparse type reads numbers: int, float, or a checking function that
    returns one (e.g. elman.tasks.options.integer)."""
    returns = getattr(kind, "__annotations__", {}).get("return")
    return kind in (int, float) or returns in ("int", "float", int, float)


def numbers(command: str, base: list[str], options: Iterable[str]) -> list[Case]:
    """Every bad number in each option, after a valid command line ``base``; NaN must be
    refused (the others may be legitimate for some options)."""
    return [
        Case(
            command, (*base, opt, v), "error" if v == "NaN" else "any", slow_ok=opt in SLOW_OPTIONS
        )
        for opt in options
        for v in BAD_NUMBERS
    ]


def inputs(command: str, before: list[str], after: list[str] = ()) -> list[Case]:
    """The input file between ``before`` and ``after``: missing, a folder, empty, not UTF-8,
    one 50 MB line."""
    files = ["{scratch}/missing.txt", "{data}/adir", "{data}/empty.txt", "{data}/binary.txt"]
    cases = [Case(command, (*before, f, *after), "error") for f in files]
    return [*cases, Case(command, (*before, "{data}/huge.txt", *after))]


def expect(data: str, command: str) -> str:
    return "any" if command in LENIENT.get(data, ()) else "error"


def outputs(
    command: str, base: list[str], option: str, file_ok: bool = False, folder: bool = False
) -> list[Case]:
    """``option`` naming an existing folder (refused unless ``folder``: the option names
    one), an existing file (refused unless ``file_ok``: a command without --overwrite must
    not replace it), and a file in a folder that does not exist."""
    return [
        Case(command, (*base, option, "{scratch}"), "any" if folder else "error"),
        Case(command, (*base, option, "{file}"), "any" if file_ok else "error"),
        Case(command, (*base, option, "{scratch}/no/such/folder/x"), "any"),
    ]


def train_cases() -> list[Case]:
    from elman.fields import help_of
    from elman.train import TrainConfig

    shared = {"--" + k.replace("_", "-") for k in help_of(TrainConfig)} | {"--epochs"}
    cases = []
    for name, args in TRAIN.items():
        cmd, base = f"train {name}", ["train", *args, "--out", "{scratch}/out", *RUN]
        own = [
            o for o in numeric_options(["train", args[0]]) if name == "charlm" or o not in shared
        ]
        cases += [Case(cmd, tuple(base)), *numbers(cmd, base, own)]
        cases += outputs(cmd, base, "--out")[1:2]
        cases.append(Case(cmd, (*base, "--out", "{run:" + name + "}"), "error"))
    c = "train charlm"
    tiny = TRAIN["charlm"][2:]
    cases += inputs(c, ["train", "charlm"], [*tiny, "--out", "{scratch}/o", *RUN])
    w = ["--out", "{scratch}/o", *TRAIN["wordlm"][4:], *RUN]
    cases += inputs("train wordlm", ["train", "wordlm"], w)
    cases += [
        Case("train wordlm", ("train", "wordlm", "--brown", f, *w), "error")
        for f in ("{data}/t.txt", "{scratch}/none")
    ]
    cases += [
        Case(
            "train wordlm",
            ("train", "wordlm", "{data}/w.txt", "--valid", "{data}/adir", *w),
            "error",
        )
    ]
    k = ["--out", "{scratch}/o", *TRAIN["classify"][3:], *RUN]
    cases += inputs("train classify", ["train", "classify", "--train"], k)
    cases += [
        Case("train classify", ("train", "classify", "--train", f"{{data}}/{f}", *k), "error")
        for f in ("wrongcol.csv", "five.csv", "t.tsv")
    ]
    cases += [
        Case("train classify", ("train", "classify", "--ts", "{data}/t.txt", *k), "error"),
        Case("train classify", ("train", "classify", "--ucr", "{scratch}/none", *k), "error"),
        Case("train classify", ("train", "classify", "--sentiment", "{data}/t.txt", *k), "error"),
        Case(
            "train classify",
            ("train", "classify", *TRAIN["classify"][1:3], "--ts", "{data}/m.ts", *k),
            "error",
        ),
    ]
    t = ["--out", "{scratch}/o", *TRAIN["tag"][5:], *RUN]
    cases += inputs("train tag", ["train", "tag", "--train"], t)
    cases += [Case("train tag", ("train", "tag", "--train", "{data}/notabs.tsv", *t), "error")]
    cases += [Case("train tag", ("train", "tag", "--brown", "{data}/t.txt", *t), "error")]
    s = ["--out", "{scratch}/o", *TRAIN["seq2seq"][3:], *RUN]
    cases += inputs("train seq2seq", ["train", "seq2seq", "--pairs"], s)
    cases += [
        Case("train seq2seq", ("train", "seq2seq", "--pairs", "{data}/three.tsv", *s), "error")
    ]
    cases += [Case("train seq2seq", ("train", "seq2seq", "--cmudict", "{data}/t.txt", *s), "error")]
    f = ["--out", "{scratch}/o", *TRAIN["forecast"][2:], *RUN]
    cases += inputs("train forecast", ["train", "forecast"], f)
    bad = [(x, []) for x in ("five.csv", "wrongcol.csv", "huge-values.csv", "nan.csv")]
    bad += [("bad-date.csv", ["--time-col", "day"]), ("s.csv", ["--target", "nope"])]
    bad += [("s.csv", ["--id-col", "nope"]), ("s.csv", ["--freq", "XYZ"])]
    bad += [("s.csv", ["--levels", "0.3"]), ("s.csv", ["--head", "nope"])]
    bad += [("s.csv", ["--mode", "nope"]), ("s.csv", ["--scaling", "nope"])]
    cases += [
        Case(
            "train forecast", ("train", "forecast", f"{{data}}/{x}", *f, *extra), expect(x, "train")
        )
        for x, extra in bad
    ]
    m = [
        "train",
        "music",
        "--chorales",
        "--limit",
        "5",
        "--hidden",
        "8",
        "--out",
        "{scratch}/o",
        *RUN,
    ]
    cases += [
        Case("train music", (*m, "--cache", x), "error") for x in ("{data}/t.txt", "{data}/adir")
    ]
    melodies = ("train", "music", "--melodies", "--match", "zzzz", *m[5:])
    cases.append(Case("train music", melodies, "error"))
    return cases


BASE = {  # a valid command line of each command that loads a run
    "generate": ["generate", "{run:charlm}", "--length", "5", "--seed", "1"],
    "predict": ["predict", "{run:classify}", "{data}/lines.txt"],
    "translate": ["translate", "{run:seq2seq}", "{data}/words.txt"],
    "explain": ["explain", "{run:charlm}", "First Citizen", "--out", "{scratch}/ex"],
    "forecast": ["forecast", "{run:forecast}", "{data}/s.csv"],
    "backtest": ["backtest", "{run:forecast}", "{data}/s.csv", "--origins", "2"],
    "detect": ["detect", "{run:forecast}", "{data}/s.csv"],
    "evaluate": ["evaluate", "{run:charlm}"],
    "export": ["export", "{run:charlm}", "--out", "{scratch}/m.onnx"],
    "resume": ["resume", "{run:charlm}", "--steps", "4"],
    "serve": ["serve", "{run:charlm}", "--port", "{port}", "--log-level", "error"],
}
MUSIC_LINE = ["generate", "{run:music}", "--length", "4", "--midi", "{scratch}/a.mid"]
OTHER_BASE = {  # options that only a run of another task reads: their own valid line
    ("generate", "--primer-steps"): MUSIC_LINE,
    ("generate", "--primer-piece"): MUSIC_LINE,
    ("generate", "--beam"): ["generate", "{run:wordlm}", "--prompt", "the", "--length", "3"],
    ("generate", "--nbest"): ["generate", "{run:wordlm}", "--prompt", "the", "--beam", "2"],
    ("predict", "--top-k"): ["predict", "{run:wordlm}", "{data}/lines.txt"],
    ("evaluate", "--beam"): ["evaluate", "{run:seq2seq}", "{data}/p.tsv"],
    ("evaluate", "--alpha"): ["evaluate", "{run:seq2seq}", "{data}/p.tsv"],
    ("explain", "--beam"): ["explain", "{run:seq2seq}", "cat", "--png", "{scratch}/a.png"],
    ("explain", "--alpha"): ["explain", "{run:seq2seq}", "cat", "--png", "{scratch}/a.png"],
    ("detect", "--risk"): ["detect", "{run:forecast}", "{data}/s.csv", "--rule", "pot"],
}
LOADS = {  # the runs each command reads (tampered copies of them go through it)
    "generate": ["charlm"],
    "predict": ["classify"],
    "translate": ["seq2seq"],
    "explain": ["charlm"],
    "forecast": ["forecast"],
    "backtest": ["forecast"],
    "detect": ["forecast"],
    "evaluate": list(TRAIN),
    "export": list(TRAIN),
    "resume": list(TRAIN),
    "serve": list(TRAIN),
}


def with_run(base: list[str], run: str) -> tuple[str, ...]:
    """``base`` with its run replaced by ``run``."""
    return tuple(re.sub(r"\{run:[\w/.-]+\}", "{run:" + run + "}", a) for a in base)


def _tamper_expect(command: str, kind: str) -> str:
    """Only resume reads the Python RNG state: elsewhere a nested one may go unnoticed."""
    return "any" if kind == "nested-rng" and command != "resume" else "error"


def loading_cases(command: str) -> list[Case]:
    """Valid, numeric, tampered and wrong-task cases of a command that loads a run."""
    base = BASE[command]
    cases = [Case(command, tuple(base))]
    for opt in numeric_options([command]):
        cases += numbers(command, OTHER_BASE.get((command, opt), base), [opt])
    for run in LOADS[command]:
        cases += [
            Case(command, with_run(base, f"tampered/{run}-{k}"), _tamper_expect(command, k))
            for k in TAMPERS
        ]
    wrong = [r for r in ("charlm", "classify", "forecast", "music") if r not in LOADS[command]]
    cases += [Case(command, with_run(base, r), "error") for r in wrong[:2]]
    for d in ("{scratch}/missing", "{scratch}", "{data}/t.txt"):  # no run, an empty folder, a file
        cases.append(Case(command, tuple(d if a.startswith("{run:") else a for a in base), "error"))
    return cases


def command_cases() -> list[Case]:
    """Each loading command's own hostile cases, beyond those of ``loading_cases``."""
    g, p, tr = BASE["generate"], ["predict"], BASE["translate"][:2]
    mid = ["generate", "{run:music}", "--length", "4"]
    cases = [
        Case("generate", (*g, "--prompt", "\u2603 snowman"), "error"),
        Case("generate", (*g, "--prompt", "First " * 20_000)),
        Case("generate", (*g, "--midi", "{scratch}/a.mid"), "error"),
        Case("generate", (*g, "--beam", "2"), "error"),
        Case("generate", (*mid, "--midi", "{scratch}")),
        Case("generate", (*mid, "--midi", "{scratch}/no/such/a.mid")),
        Case(
            "generate",
            (*mid, "--primer-midi", "{data}/t.txt", "--midi", "{scratch}/a.mid"),
            "error",
        ),
        Case(
            "generate",
            (*mid, "--primer-midi", "{scratch}/none.mid", "--midi", "{scratch}/a.mid"),
            "error",
        ),
        Case("generate", (*mid, "--prompt", "hello", "--midi", "{scratch}/a.mid"), "error"),
    ]
    for run in ("wordlm", "classify", "tag"):
        cases += inputs("predict", [*p, "{run:" + run + "}"])
        cases.append(Case("predict", (*p, "{run:" + run + "}", "-"), stdin="binary.txt"))
    cases += [
        Case("predict", (*p, "{run:classify}", "{data}/wrongcol.csv"), "error"),
        Case("predict", (*p, "{run:classify}", "{data}/m.ts"), "error"),
        Case("predict", (*p, "{run:series}", "{data}/lines.txt"), "error"),
        Case("predict", (*p, "{run:series}", "{data}/m.ts", "--format", "csv")),
        Case("predict", (*p, "{run:tag}", "{data}/lines.txt", "--top-k", "3"), "error"),
        Case("predict", (*p, "{run:seq2seq}", "{data}/lines.txt"), "error"),
    ]
    cases += inputs("translate", tr)
    cases += [
        Case("translate", (*tr, "-"), "error", stdin="empty.txt"),
        Case("translate", (*BASE["translate"], "--beam", "2", "--nbest", "5"), "error"),
        Case("translate", (*BASE["translate"], "--temperature", "1", "--beam", "3"), "error"),
    ]
    e, s2 = BASE["explain"], ["explain", "{run:seq2seq}", "cat"]
    cases += outputs("explain", e[:3], "--out", folder=True)
    cases += outputs("explain", s2, "--png")
    cases += [
        Case("explain", (*e, "--signal", "{scratch}/none.txt"), "error"),
        Case("explain", (*e, "--signal", "{data}/binary.txt"), "error"),
        Case("explain", (*e, "--signal", "{data}/numbers.txt"), "error"),
        Case("explain", (*e, "--signal", "nonsense"), "error"),
        Case("explain", (*e, "--kind", "z"), "error"),
        Case("explain", (*e, "--kind", "nope"), "error"),
        Case("explain", ("explain", "{run:charlm}", "", "--out", "{scratch}/ex"), "error"),
        Case(
            "explain", ("explain", "{run:charlm}", "\u2603\u2603", "--out", "{scratch}/ex"), "error"
        ),
        Case("explain", ("explain", "{run:charlm}", "the cat " * 12_500, "--out", "{scratch}/ex")),
        Case("explain", (*e, "--png", "{scratch}/a.png"), "error"),
        Case("explain", (*s2, "--out", "{scratch}/ex"), "error"),
        Case("explain", ("explain", "{run:wordlm}", "the cat", "--out", "{scratch}/ex")),
        Case("explain", ("explain", "{run:seq2seq}", "", "--png", "{scratch}/a.png"), "error"),
    ]
    f, fc = BASE["forecast"], BASE["forecast"][:2]
    cases += outputs("forecast", f, "--plot")
    cases += [
        Case("forecast", (*f, "--plot", "{scratch}/plot.tmp"), "any"),
        Case("forecast", (*f, "--future", "{data}/s.csv"), "error"),
        Case("forecast", (*f, "--future", "{scratch}/none.csv"), "error"),
    ]
    series = ["five.csv", "wrongcol.csv", "huge-values.csv", "nan.csv", "bad-date.csv"]
    for command in ("forecast", "backtest", "detect"):
        cases += inputs(command, fc if command == "forecast" else [command, "{run:forecast}"])
        cases += [
            Case(command, (*BASE[command][:2], f"{{data}}/{x}"), expect(x, command)) for x in series
        ]
    d = BASE["detect"]
    cases += [
        Case("detect", (*d, "--label-col", "nope"), "error"),
        Case("detect", (*d, "--metrics", "{scratch}/m.json"), "error"),
        Case("detect", (*d, "--risk", "2"), "error"),
        Case("detect", (*d, "--score", "nll")),
        Case("detect", ("detect", "{run:forecast}", "{data}/labels.csv", "--label-col", "label")),
    ]
    dl = ["detect", "{run:forecast}", "{data}/labels.csv", "--label-col", "label"]
    cases += outputs("detect", dl, "--metrics", file_ok=True)
    cases += [
        Case("backtest", (*BASE["backtest"], "--stride", "0"), "error"),
        Case("backtest", (*BASE["backtest"], "--baselines", "ets")),
    ]
    ev = ["evaluate"]
    data = {"wordlm": "w.txt", "classify": "c.csv", "series": "m.ts", "tag": "t.tsv"}
    data |= {"seq2seq": "p.tsv", "charlm": "t.txt"}
    for run, x in data.items():
        cases.append(Case("evaluate", (*ev, "{run:" + run + "}", f"{{data}}/{x}")))
        cases += inputs("evaluate", [*ev, "{run:" + run + "}"])[:4]
    cases += [
        Case("evaluate", (*ev, "{run:" + run + "}"), "any") for run in TRAIN if run != "charlm"
    ]
    cases += [
        Case("evaluate", (*ev, "{run:tag}", "{data}/notabs.tsv"), "error"),
        Case("evaluate", (*ev, "{run:seq2seq}", "{data}/three.tsv"), "error"),
        Case(
            "evaluate", (*ev, "{run:classify}", "{data}/c.csv", "--label-column", "nope"), "error"
        ),
        Case("evaluate", (*ev, "{run:classify}", "{data}/wrongcol.csv"), "error"),
        Case("evaluate", (*ev, "{run:charlm}", "{data}/t.txt", "--beam", "3"), "error"),
    ]
    x = BASE["export"]
    cases += outputs("export", x[:2], "--out")
    cases += [
        Case("export", ("export", "{run:" + run + "}", "--out", "{scratch}/m")) for run in TRAIN
    ]
    cases += [Case("export", ("export", "{run:classify}", "--mode", "step"), "error")]
    r = ["resume"]
    cases += [Case("resume", (*r, "{run:" + run + "}", "--steps", "3")) for run in TRAIN]
    cases += [Case("resume", (*r, "{run:" + run + "}")) for run in ("charlm", "wordlm", "forecast")]
    cases += [Case("resume", (*r, "{run:charlm}", "--steps", "1"))]
    sv = BASE["serve"]
    cases += [
        Case("serve", ("serve", *["{run:" + run + "}" for run in TRAIN], "--port", "{port}")),
        Case("serve", (*sv, "--state", "{scratch}"), "error"),
        Case("serve", (*sv, "--state", "{data}/t.txt"), "error"),
        Case("serve", (*sv, "--state", "{scratch}/no/such/s.sqlite"), "error"),
        Case("serve", (*sv, "--state", "{data}/bad-options.sqlite")),
        Case("serve", (*sv, "--host", "0.0.0.0"), "error"),
        Case("serve", (*sv, "--token", ""), "error"),
        Case("serve", ("serve", "{run:charlm}", "{run:charlm}", "--port", "{port}"), "error"),
    ]
    return cases


def cli_cases() -> list[Case]:
    cases = train_cases()
    for command in BASE:
        cases += loading_cases(command)
    return cases + command_cases()


# ---- the server --------------------------------------------------------------------------------

HUGE_INT = 2**70
SESSION_OPTIONS = {"seq2seq": {"source": "cat"}}


def j(value) -> bytes:
    """JSON as Python writes it: NaN and Infinity included, which strict JSON has not."""
    return json.dumps(value).encode()


def http_requests() -> list[Request]:
    gen, R = "/models/charlm/generate", Request
    bad_values = [float("nan"), float("inf"), 1e308, HUGE_INT, -1, 0, "x", None, [1]]
    reqs = [
        R("http models", "GET", "/health", expect="ok"),
        R("http models", "GET", "/models", expect="ok"),
        R("http models", "GET", "/models/nope"),
        R("http models", "GET", "/models/" + "x" * 5000),
        R("http models", "DELETE", "/models/charlm"),
    ]
    for key in ("seed", "length", "temperature", "top_k", "top_p"):
        reqs += [
            R("http generate", "POST", gen, j({"prompt": "First", "length": 5, key: v}), expect=e)
            for v in bad_values
            for e in ["error" if isinstance(v, str | list) or not math.isfinite(v or 0) else "any"]
        ]
    reqs += [
        R("http generate", "POST", gen, j({"prompt": "\u2603", "length": 5})),
        R("http generate", "POST", gen, j({"prompt": "First " * 100_000, "length": 5})),
        R("http generate", "POST", gen, b'{"prompt": "\xff\xfe", "length": 5}'),
        R("http generate", "POST", gen, b'{"length": 5,'),
        R("http generate", "POST", gen, b""),
        R("http generate", "POST", gen, j([1, 2])),
        R("http generate", "POST", gen, j({"length": 5, "nope": 1})),
        R("http generate", "POST", gen, j({"length": 5, "stream": "yes"})),
        R("http generate", "POST", gen, b"{" * 100_000 + b"}" * 100_000),
        R("http generate", "POST", gen, b'{"prompt": "' + b"a" * 3_000_000 + b'"}'),
        R("http generate", "POST", "/models/music/generate", j({"length": 4, "stream": True})),
        R(
            "http generate",
            "POST",
            "/models/music/generate",
            j({"length": 4, "frames": [[float("nan")]]}),
        ),
        R(
            "http generate",
            "POST",
            "/models/music/generate",
            j({"length": 4, "frames": [[HUGE_INT]]}),
        ),
        R("http generate", "POST", "/models/music/generate", j({"length": 4, "tokens": ["x"]})),
        R("http generate", "POST", "/models/forecast/generate", j({"length": 4})),
        R(
            "http generate",
            "POST",
            "/models/wordlm/generate",
            j({"prompt": "the", "length": HUGE_INT}),
        ),
    ]
    cl = "/models/classify/classify"
    reqs += [
        R("http classify", "POST", cl, j(body))
        for body in (
            {"texts": []},
            {"texts": [""]},
            {"texts": ["great " * 150_000]},
            {"texts": ["x"] * 100_000},
            {"texts": [5]},
            {"texts": ["a"], "series": [[1.0]]},
            {"series": [[1.0, 2.0]]},
            {},
        )
    ]
    reqs += [
        R("http classify", "POST", "/models/series/classify", j({"series": [s]}))
        for s in (
            [[float("nan"), 1]],
            [[1e308, -1e308]],
            [[HUGE_INT, 1]],
            [],
            [[1, 2, 3]],
            [[1]] * 100_000,
        )
    ]
    reqs.append(R("http classify", "POST", "/models/series/classify", j({"texts": ["up"]})))
    tg = "/models/tag/tag"
    reqs += [
        R("http tag", "POST", tg, j(body))
        for body in (
            {"sentences": [[]]},
            {"sentences": [[""]]},
            {"texts": [""]},
            {"texts": ["the " * 200_000]},
            {"sentences": [["the"]], "texts": ["the"]},
            {"sentences": "the cat"},
        )
    ]
    td = "/models/seq2seq/transduce"
    reqs += [
        R("http transduce", "POST", td, j({"inputs": ["cat"]} | body))
        for body in (
            {"inputs": []},
            {"inputs": [""]},
            {"inputs": ["\x00\u2603"]},
            {"inputs": ["cat" * 200_000]},
            {"beam": 0},
            {"beam": HUGE_INT},
            {"beam": 2, "nbest": 5},
            {"alpha": float("nan")},
            {"alpha": 1e308},
            {"alpha": float("inf")},
        )
    ]
    fc = "/models/forecast/forecast"
    values = [[], [1e308, -1e308] * 20, [float("nan")] * 20, [float("inf")] * 20, [1.0]]
    values += [[HUGE_INT] * 20, [0.5] * 200_000]
    reqs += [R("http forecast", "POST", fc, j({"values": v})) for v in values]
    reqs += [
        R("http forecast", "POST", fc, j({"values": [0.5] * 20} | extra))
        for extra in ({"series": "nope"}, {"start": "not a date", "freq": "D"}, {"freq": "XYZ"})
    ]
    reqs += open_requests() + step_requests()
    legit = {j(b) for b in LEGIT}
    return [replace(r, expect="any") if r.body in legit else r for r in reqs]


LEGIT = [  # bodies that may well be answered: odd but legitimate (not listed as accepted)
    {"series": [[[HUGE_INT, 1]]]},
    {"sentences": [[""]]},
    {"inputs": ["\x00\u2603"]},
    {"values": [HUGE_INT] * 20},
    {"values": [0.5] * 20, "series": "nope"},
    {"values": [0.5] * 20, "start": "not a date", "freq": "D"},
    {"values": [0.5] * 20, "freq": "XYZ"},
    {"model": "forecast", "options": {"threshold": 1e308}},
    {"model": "forecast", "options": {"series": "nope"}},
    {"text": "zzzz qqqq"},
    {"text": "\x00"},
    {"tokens": []},
    {"values": [HUGE_INT]},
]


def open_requests() -> list[Request]:
    R, path = Request, "/sessions"
    reqs = [
        R("http sessions", "POST", path, j({"model": "nope"})),
        R("http sessions", "POST", path, j({"model": "tag"})),
        R("http sessions", "POST", path, j({"model": "charlm", "nope": 1})),
        R("http sessions", "POST", path, j({"model": 5})),
        R("http sessions", "POST", path, b'{"model": "charlm", "options": {"top_k": NaN}}'),
        R("http sessions", "GET", "/sessions/nope"),
        R("http sessions", "DELETE", "/sessions/nope"),
        R("http sessions", "GET", "/sessions/{sid}", session="charlm", expect="ok"),
        R("http sessions", "DELETE", "/sessions/{sid}", session="forecast", expect="ok"),
    ]
    options = {
        "forecast": [
            {"threshold": float("nan")},
            {"threshold": float("inf")},
            {"threshold": 1e308},
            {"threshold": HUGE_INT},
            {"threshold": {"nested": float("nan")}},
            {"series": 5},
            {"series": "nope"},
            {"nope": 1},
        ],
        "charlm": [{"top_k": v} for v in (0, -1, HUGE_INT, float("nan"), 1e308, "x")],
        "seq2seq": [{}, {"source": ""}, {"source": 5}, {"source": "cat" * 100_000}],
        "wordlm": [{"top_k": {"a": [float("inf")]}}],
    }
    for model, each in options.items():
        reqs += [R("http sessions", "POST", path, j({"model": model, "options": o})) for o in each]
    return reqs


def step_requests() -> list[Request]:
    """Steps of every session kind with wrong or extreme observations; a failed step must
    leave its session as it was."""
    bodies = {
        "charlm": [{"text": "\u2603"}, {"text": ""}, {"text": "a" * 900_000}, {"values": [1.0]}],
        "wordlm": [{"text": "zzzz qqqq"}, {"tokens": ["the"]}],
        "classify": [{"text": "\x00"}, {"values": [1.0]}],
        "series": [{"frames": [[float("nan"), 1.0]]}, {"frames": [[1e308, 1]]}, {"frames": [[1]]}],
        "seq2seq": [{"tokens": ["ZZ"]}, {"tokens": []}, {"text": "cat"}],
        "forecast": [
            {"values": [1e308, -1e308]},
            {"values": [float("nan")]},
            {"values": [float("inf")]},
            {"values": [HUGE_INT]},
            {"values": []},
            {"values": [0.5] * 20_000},
            {"text": "1"},
        ],
        "music": [{"frames": [[HUGE_INT]]}, {"frames": [[-1]]}, {"frames": [[float("nan")]]}],
    }
    reqs = [
        Request(
            "http step", "POST", "/sessions/{sid}/step", j(b), model, SESSION_OPTIONS.get(model, {})
        )
        for model, each in bodies.items()
        for b in each
    ]
    reqs += [
        Request("http step", "POST", "/sessions/nope/step", j({"text": "a"})),
        Request("http step", "POST", "/sessions/{sid}/step", b'{"values": [NaN]', "forecast"),
        Request(
            "http step", "POST", "/sessions/{sid}/step", j({"text": "a", "values": [1]}), "charlm"
        ),
    ]
    return reqs


class Server:
    """``elman serve`` of every run in its own process, its log in a file; restarted when
    a request killed it."""

    def __init__(self, root: Path, names: list[str], timeout: float) -> None:
        self.root, self.names, self.timeout = root, names, timeout
        self.log = root / "server.log"
        self.start()

    def start(self) -> None:
        import subprocess

        from elman.serve.launch import free_port

        self.port = free_port()
        runs = [str(self.root / "runs" / n) for n in self.names]
        cmd = [sys.executable, "-m", "elman.cli", "serve", *runs, "--port", str(self.port)]
        cmd += ["--threads", "1", "--state", str(self.root / f"state-{self.port}.sqlite")]
        cmd += ["--log-level", "warning", "--max-sessions-per-client", "100000"]
        env = os.environ | {"OMP_NUM_THREADS": "1"}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=log, env=env)
        deadline = time.monotonic() + 300
        while not _serving(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"elman serve did not start; see {self.log}")
            time.sleep(0.2)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


def send(client, server: Server, req: Request) -> Result:
    """One request; for a session step, the session's step count before and after."""
    import httpx

    path, sid = req.path, None
    try:
        if req.session is not None:
            body = {"model": req.session, "options": req.options}
            opened = client.post(f"{server.url}/sessions", json=body)
            if opened.status_code != 201:  # the case cannot run: say why
                why = f"opening its session: {opened.status_code} {opened.text[:250]}"
                return Result(req.command, req.line, "unclear", req.expect, why)
            sid = opened.json()["id"]
            path = path.replace("{sid}", sid)
        before = _steps(client, server, sid)
        mark = server.log.stat().st_size
        headers = {"content-type": "application/json"}
        reply = client.request(req.method, server.url + path, content=req.body, headers=headers)
        with open(server.log, "rb") as f:
            logged = b"Traceback" in f.read()[mark:]
        kind = reply_outcome(reply.status_code, reply.content, logged)
        if kind == "error" and before is not None and _steps(client, server, sid) != before:
            kind = "changed"
        detail = reply.text[:300].replace("\n", " ")
        return Result(req.command, req.line, kind, req.expect, f"{reply.status_code} {detail}")
    except httpx.TimeoutException:
        return Result(req.command, req.line, "hang", req.expect, "no reply in time")
    except (httpx.TransportError, KeyError, ValueError) as e:
        dead = server.proc.poll() is not None
        if dead:
            server.start()
        return Result(req.command, req.line, "crash" if dead else "unclear", req.expect, str(e))


def _steps(client, server: Server, sid: str | None) -> int | None:
    if sid is None:
        return None
    return client.get(f"{server.url}/sessions/{sid}").json().get("steps")


def run_requests(
    reqs: list[Request], root: Path, names: list[str], timeout: float, done
) -> list[Result]:
    import httpx

    server = Server(root, names, timeout)
    results = []
    try:
        with httpx.Client(timeout=timeout) as client:
            for req in reqs:
                results.append(send(client, server, req))
                done(results[-1])
    finally:
        server.stop()
    return results


# ---- results -----------------------------------------------------------------------------------

CLI_METRICS = {"tracebacks": ("traceback", "crash"), "hangs": ("hang",)}
HTTP_METRICS = {
    "server_5xx": ("5xx", "crash"),
    "tracebacks": ("traceback",),
    "hangs": ("hang",),
}


def metric_rows(results: list[Result]) -> list[Row]:
    """Per command and in total: tracebacks, 5xx replies and hangs (target 0 each), and for
    session steps the failed steps that changed their session."""
    commands = list(dict.fromkeys(r.command for r in results))
    rows: list[Row] = []
    totals: Counter = Counter()
    for command in commands:
        kinds = Counter(r.kind for r in results if r.command == command)
        metrics = dict(HTTP_METRICS if command.startswith("http") else CLI_METRICS)
        if command == "http step":
            metrics["sessions_changed"] = ("changed",)
        for metric, counted in metrics.items():
            value = sum(kinds[k] for k in counted)
            totals[metric] += value
            rows.append(_row(f"{command}: {metric}", value, sum(kinds.values())))
    for metric in ("tracebacks", "server_5xx", "hangs"):
        rows.append(_row(f"total: {metric}", totals[metric], len(results)))
    return rows


def _row(name: str, value: int, cases: int) -> Row:
    return {
        "name": name,
        "value": value,
        "cases": cases,
        "target": 0,
        "better": "lower",
        "met": value == 0,
    }


def markdown(meta: dict, results: list[Result], rows: list[Row], planned: int) -> str:
    kinds = ["error", "ok", "accepted", *FAILED[:4], "busy", "5xx", "changed"]
    body = []
    for command in dict.fromkeys(r.command for r in results):
        mine = [r for r in results if r.command == command]
        count = Counter(r.kind for r in mine)
        count["accepted"] = sum(r.kind == "ok" and r.expect == "error" for r in mine)
        body.append([command, str(len(mine)), *(str(count[k]) for k in kinds)])
    failing = [r for r in results if r.kind in FAILED]
    accepted = [r for r in results if r.kind == "ok" and r.expect == "error"]
    lines = [
        "# Robustness: hostile inputs through every command and the server",
        "",
        f"{meta['date']}, {meta['machine']}. {meta['budget']}. {summary(rows, planned)}",
        "",
        *markdown_table(["command", "cases", *kinds], body),
        "",
        "accepted: exit 0 or a 2xx for a case that must be refused (counted in ok too).",
        "",
        f"## Failing cases ({len(failing)})",
        "",
        *(f"- {r.command} [{r.kind}]: `{_brief(r.line, 400)}` -> {r.last[:300]}" for r in failing),
        "",
        f"## Accepted: exit 0 or a 2xx where a refusal was expected ({len(accepted)})",
        "",
        *(f"- {r.command}: `{_brief(r.line, 400)}`" for r in accepted),
        "",
    ]
    return "\n".join(lines)


def save(out: Path, stem: str, results: list[Result], planned: int, budget: str) -> None:
    rows = metric_rows(results)
    meta = metadata(
        "robustness",
        budget,
        "tiny runs of every task trained here, tampered copies of them, generated bad inputs",
    )
    doc = {
        **meta,
        "counts": {
            c: dict(Counter(r.kind for r in results if r.command == c))
            for c in dict.fromkeys(r.command for r in results)
        },
        "failing": [r.row() for r in results if r.kind in FAILED],
        "accepted": [r.row() for r in results if r.kind == "ok" and r.expect == "error"],
    }
    write_results(out, stem, doc, rows, planned, markdown(meta, results, rows, planned))


# ---- main --------------------------------------------------------------------------------------


def select(items: list, only: list[str] | None, match: str | None, limit: int | None) -> list:
    """The items whose command starts with one of ``only`` and whose line holds ``match``;
    at most ``limit`` per command."""
    chosen, seen = [], Counter()
    for item in items:
        if only and not any(item.command.startswith(o) for o in only):
            continue
        if match and match not in item.line:
            continue
        seen[item.command] += 1
        if limit is None or seen[item.command] <= limit:
            chosen.append(item)
    return chosen


def needed_runs(cases: list[Case], http: bool) -> list[str]:
    found = {
        m.split("/")[-1].split("-")[0]
        for c in cases
        for a in c.args
        for m in re.findall(r"\{run:([\w/.-]+)\}", a)
    }
    if http:
        found |= set(TRAIN)
    return [n for n in TRAIN if n in found]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--only",
        action="append",
        help="commands starting with this (repeatable): e.g. generate, 'train charlm', train, http",
    )
    p.add_argument("--match", help="only cases whose command line holds this text")
    p.add_argument("--limit", type=int, help="at most N cases per command")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per case")
    p.add_argument(
        "--slow-timeout",
        type=float,
        default=15.0,
        help="seconds for a case asking for much work (a billion steps): busy after that",
    )
    p.add_argument("--exec", action="store_true", help="each case in a new `elman` process")
    p.add_argument(
        "--out",
        type=Path,
        help="results folder (default: bench/results for a "
        "run of everything; a selection writes files only with --out)",
    )
    p.add_argument("--keep", type=Path, help="build fixtures here and keep them")
    a = p.parse_args()
    os.environ["OMP_NUM_THREADS"] = "1"
    import matplotlib.pyplot  # noqa: F401 - imported once here, so each forked case skips them
    import pandas  # noqa: F401
    import torch

    import elman.cli  # noqa: F401

    torch.set_num_threads(1)
    whole = not (a.only or a.match or a.limit)
    out = a.out or (HERE / "results" if whole else None)
    cases = select(cli_cases(), a.only, a.match, a.limit)
    reqs = select(http_requests(), a.only, a.match, a.limit)
    mode = "exec" if a.exec else "fork"
    budget = f"{a.timeout:g} s per case, {a.workers} workers, 1 torch thread each, {mode}"
    root = a.keep or Path(tempfile.mkdtemp(prefix="elman-robustness-"))
    try:
        started = time.monotonic()
        write_data(root / "data")
        names = needed_runs(cases, bool(reqs))
        failed = train_runs(root, names, a.workers, mode)
        if failed:
            raise SystemExit(f"training the tiny runs failed: {[r.row() for r in failed]}")
        tamper_runs(root, names)
        print(
            f"fixtures ready in {time.monotonic() - started:.0f} s: {len(cases)} command "
            f"lines, {len(reqs)} requests",
            flush=True,
        )
        results: list[Result] = []
        planned = len(metric_rows([Result(c.command, "", "ok", "") for c in [*cases, *reqs]]))

        def done(r: Result) -> None:
            results.append(r)
            if r.kind in FAILED:
                print(f"{r.kind:>9}  {_brief(r.line)}\n           {r.last[:160]}", flush=True)
            if out is not None and len(results) % 50 == 0:
                save(out, "robustness", sorted_like(results, cases, reqs), planned + 999, budget)

        run_cases(cases, root, a.workers, mode, a.timeout, done=done, slow=a.slow_timeout)
        if reqs:
            run_requests(reqs, root, names, a.timeout, done)
        results = sorted_like(results, cases, reqs)
        rows = metric_rows(results)
        print(markdown(metadata("robustness", budget, ""), results, rows, planned))
        if out is not None:
            save(out, "robustness", results, planned, budget)
        print(f"{len(results)} cases in {time.monotonic() - started:.0f} s", flush=True)
    finally:
        if a.keep is None:
            shutil.rmtree(root, ignore_errors=True)


def _brief(line: str, width: int = 140) -> str:
    """``line`` cut to ``width`` characters in the middle: the hostile part is at its end."""
    return line if len(line) <= width else line[: width // 3] + " ... " + line[-2 * width // 3 :]


def sorted_like(results: list[Result], cases: list[Case], reqs: list[Request]) -> list[Result]:
    """``results`` in the order of the command table."""
    order = {c: i for i, c in enumerate(dict.fromkeys(x.command for x in [*cases, *reqs]))}
    return sorted(results, key=lambda r: order.get(r.command, len(order)))


if __name__ == "__main__":
    main()
