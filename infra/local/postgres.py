"""A private PostgreSQL cluster for tests and benchmarks: initdb in a temp dir, loopback port.

`initdb` and `postgres` refuse to run as root, and CI runs as root, so when we are root the
server runs as the `postgres` system user (Debian's package creates it).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from infra.local.ports import free_port, wait_until

SUPERUSER = "ledger"


def server_bindir() -> Path:
    """Debian keeps the server binaries off PATH; `pg_config --bindir` names their folder."""
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        msg = "pg_config not found; install PostgreSQL 15 (apt-get install postgresql-15)"
        raise FileNotFoundError(msg)
    bindir = subprocess.run(  # noqa: S603 - the machine's own pg_config
        [pg_config, "--bindir"], check=True, capture_output=True, text=True
    ).stdout.strip()
    return Path(bindir)


@dataclass(frozen=True)
class PostgresAddress:
    host: str
    port: int
    user: str
    password: str
    dbname: str

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{self.user}:{self.password}@{self.host}:{self.port}/{self.dbname}"


class PrivatePostgres:
    """Start with `with PrivatePostgres() as pg:`; the cluster and its files are gone afterwards."""

    def __init__(self, password: str = "ledger") -> None:  # noqa: S107 - a throwaway loopback cluster
        self.password = password
        self.port = free_port()
        self._dir = Path(tempfile.mkdtemp(prefix="ledger-pg-"))
        self._data = self._dir / "data"
        self._process: subprocess.Popen[bytes] | None = None
        self._run_as = "postgres" if os.geteuid() == 0 else None

    def __enter__(self) -> PostgresAddress:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self) -> PostgresAddress:
        bindir = server_bindir()
        if self._run_as:
            entry = pwd.getpwnam(self._run_as)
            os.chown(self._dir, entry.pw_uid, entry.pw_gid)
        pwfile = self._dir / "pw"
        pwfile.write_text(self.password)
        if self._run_as:
            os.chown(pwfile, pwd.getpwnam(self._run_as).pw_uid, -1)
        self._run(
            [
                str(bindir / "initdb"),
                "-D",
                str(self._data),
                "-U",
                SUPERUSER,
                f"--pwfile={pwfile}",
                "-A",
                "scram-sha-256",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )
        log = (self._dir / "server.log").open("wb")
        self._process = subprocess.Popen(  # noqa: S603 - fixed binary, our own arguments
            [
                str(bindir / "postgres"),
                "-D",
                str(self._data),
                "-p",
                str(self.port),
                "-k",
                str(self._dir),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            user=self._run_as,
        )
        address = PostgresAddress("127.0.0.1", self.port, SUPERUSER, self.password, "postgres")
        wait_until(self._accepts_connections, timeout=60, what=f"PostgreSQL on port {self.port}")
        return address

    def create_database(self, name: str) -> PostgresAddress:
        import psycopg  # noqa: PLC0415 - only the tests' cluster needs it here

        with psycopg.connect(self._conninfo("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return PostgresAddress("127.0.0.1", self.port, SUPERUSER, self.password, name)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            # SIGINT is PostgreSQL's "fast" shutdown: it ends open sessions instead of waiting for them.
            self._process.send_signal(signal.SIGINT)
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        shutil.rmtree(self._dir, ignore_errors=True)

    def _conninfo(self, dbname: str) -> str:
        return f"host=127.0.0.1 port={self.port} user={SUPERUSER} password={self.password} dbname={dbname}"

    def _accepts_connections(self) -> bool:
        import psycopg  # noqa: PLC0415

        if self._process is not None and self._process.poll() is not None:
            log = (self._dir / "server.log").read_text(errors="replace")
            msg = f"PostgreSQL exited at start-up:\n{log}"
            raise RuntimeError(msg)
        try:
            with psycopg.connect(self._conninfo("postgres"), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def _run(self, argv: list[str]) -> None:
        result = subprocess.run(argv, capture_output=True, text=True, user=self._run_as, check=False)  # noqa: S603
        if result.returncode != 0:
            msg = f"{Path(argv[0]).name} failed ({result.returncode}): {result.stderr or result.stdout}"
            raise RuntimeError(msg)
