"""A real redis-server on 127.0.0.1 for the guard tests and the guard benchmark (nothing written to disk)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["REDIS_MISSING", "Server", "calls_by_command", "free_port", "have_redis_server"]

REDIS_MISSING = "redis-server is not installed (scripts/install-redis.sh installs Debian's)"
"""The reason to skip when :data:`shutil.which` finds no redis-server."""


def have_redis_server() -> bool:
    """Whether the redis-server binary is installed."""
    return shutil.which("redis-server") is not None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def calls_by_command(client: Any) -> dict[str, int]:
    """Calls per command since the server started (INFO commandstats)."""
    stats = client.info("commandstats")
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}


@dataclass
class Server:
    port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        options = {"bind": "127.0.0.1", "port": str(self.port), "dir": str(self.workdir)}
        options |= {"save": "", "appendonly": "no", "daemonize": "no"}  # nothing written, no fork
        argv = ["redis-server", *(part for name, value in options.items() for part in (f"--{name}", value))]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(host="127.0.0.1", port=self.port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.02)
        client.close()

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None
