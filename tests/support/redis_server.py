"""A throwaway Redis server for the tests, the Celery broker: Debian's ``redis-server`` on a
free loopback port, its files in a temporary folder, nothing saved to disk, stopped at the
end of the session (`make test` installs it)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.postgres_server import _free_port


class RedisServer:
    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(
                "redis-server not found: run 'make test' (it installs it) or "
                "'apt-get install redis-server'"
            )
        self.binary = binary
        self.root = Path(tempfile.mkdtemp(prefix="komeet-sync-redis-"))
        self.port = _free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> str:
        self.process = subprocess.Popen(
            [self.binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir",
             str(self.root), "--save", "", "--appendonly", "no", "--daemonize", "no",
             "--logfile", str(self.root / "redis.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = self.root / "redis.log"
                raise RuntimeError(
                    f"redis-server did not start: {log.read_text()[-2000:] if log.exists() else ''}"
                )
            time.sleep(0.05)
        return self.url

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        try:
            if self.process is not None:
                self.process.terminate()
                self.process.wait(timeout=10)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
