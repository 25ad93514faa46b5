"""``elman serve`` in a process of its own, for scripts, notebooks, tests and benchmarks:
started on a free loopback port and returned once ``/health`` answers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(
    dirs: list[str | Path], *options: str, threads: int = 1, timeout: float = 60.0
) -> tuple[subprocess.Popen, str]:
    """Start ``elman serve DIRS OPTIONS`` on a free port (torch and OpenMP at ``threads``);
    returns the process and its base URL. Raises if it exits or stays silent ``timeout`` s."""
    port = free_port()
    cmd = [sys.executable, "-m", "elman.cli", "serve", *map(str, dirs), "--port", str(port)]
    cmd += ["--threads", str(threads), *options]
    proc = subprocess.Popen(cmd, env=os.environ | {"OMP_NUM_THREADS": str(threads)})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"elman serve exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1) as reply:
                if reply.status == 200:
                    return proc, url
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"elman serve did not answer within {timeout:g} s")


__all__ = ["free_port", "launch"]
