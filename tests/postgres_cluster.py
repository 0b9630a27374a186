"""A throwaway PostgreSQL cluster for the tests, started once per session when the server's
binaries are on this machine.

`initdb` + `pg_ctl` in a temporary folder: listening on 127.0.0.1 on a free port, its unix
socket in that folder, fsync off (`-F`), so it costs about a second to start. Never the system
service. As root (CI), the cluster runs as an unprivileged user (`postgres` when the package
made one, else `nobody`): initdb refuses root. Each test gets a database of its own, copied
from a template that is migrated already (`CREATE DATABASE ... TEMPLATE`), dropped after it.

The binaries are found in $POSTGRES_BIN, else the newest /usr/lib/postgresql/<version>/bin,
else beside an `initdb` on PATH.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

# Odd characters on purpose: the URL carries it percent-encoded, and every message masks it.
PASSWORD = "pw/with:odd@chars-f7c1"
USER = "bot"
TEMPLATE = "bot_template"


class ClusterUnavailable(RuntimeError):
    """No server binaries, or the cluster would not start (the reason is the message)."""


def find_bindir() -> Path | None:
    given = os.environ.get("POSTGRES_BIN")
    if given:
        return Path(given)

    def version(path: str) -> tuple[int, ...]:
        part = Path(path).parent.parent.name
        return tuple(int(p) for p in part.split(".") if p.isdecimal())

    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version)
    if candidates:
        return Path(candidates[-1]).parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class _RunAs:
    uid: int | None
    gid: int | None

    @classmethod
    def for_cluster(cls) -> _RunAs:
        if os.geteuid() != 0:
            return cls(None, None)
        for name in ("postgres", "nobody"):
            with contextlib.suppress(KeyError):
                entry = pwd.getpwnam(name)
                return cls(entry.pw_uid, entry.pw_gid)
        raise ClusterUnavailable("running as root and no unprivileged user to run PostgreSQL")

    def run(self, args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        extra: dict[str, object] = {}
        if self.uid is not None:
            extra = {"user": self.uid, "group": self.gid, "extra_groups": []}
        return subprocess.run(  # type: ignore[call-overload, no-any-return]
            args, capture_output=True, text=True, check=False, **extra, **kwargs
        )


class PostgresCluster:
    def __init__(self, bindir: Path, *, durable: bool = False) -> None:
        """`durable`: fsync and synchronous commits on, as in production (benchmarks)."""
        self.bindir = bindir
        self.durable = durable
        self.folder = Path(tempfile.mkdtemp(prefix="bot-pg-"))
        self.data = self.folder / "data"
        self.port = _free_port()
        self.run_as = _RunAs.for_cluster()
        self._count = 0
        self._running = False

    def url(self, database: str) -> str:
        return f"postgresql://{USER}:{quote(PASSWORD, safe='')}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        if self.run_as.uid is not None:
            os.chown(self.folder, self.run_as.uid, self.run_as.gid or -1)
        password_file = self.folder / "password"
        password_file.write_text(PASSWORD + "\n")
        if self.run_as.uid is not None:
            os.chown(password_file, self.run_as.uid, self.run_as.gid or -1)
        self._must(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                USER,
                f"--pwfile={password_file}",
                # TCP asks for the password (as production does); the socket is the tests' own.
                "--auth-host=scram-sha-256",
                "--auth-local=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
            "initdb",
        )
        # fsync off for the tests: a throwaway cluster.
        fast = ["-F", "-c full_page_writes=off", "-c synchronous_commit=off"]
        options = " ".join(
            [
                *([] if self.durable else fast),
                f"-p {self.port}",
                "-h 127.0.0.1",
                f"-k {self.folder}",
                "-c max_connections=200",
                "-c shared_buffers=128MB",
            ]
        )
        self._must(
            [
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.folder / "server.log"),
                "-w",
                "-t",
                "60",
                "-o",
                options,
                "start",
            ],
            "pg_ctl start",
        )
        self._running = True
        self.sql(f"CREATE DATABASE {TEMPLATE}")
        # On a thread of its own: the caller may be inside a running event loop.
        with concurrent.futures.ThreadPoolExecutor(1) as thread:
            thread.submit(asyncio.run, self._migrate_template()).result()

    async def _migrate_template(self) -> None:
        from bot.store.insurers import read_insurers_file, sync_insurers
        from bot.store.setup import open_database

        db = await open_database(self.url(TEMPLATE))
        try:
            await sync_insurers(db, read_insurers_file())
        finally:
            await db.close()

    def _must(self, args: list[str], what: str) -> None:
        done = self.run_as.run(args)
        if done.returncode != 0:
            log = self.folder / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise ClusterUnavailable(f"{what} failed: {done.stderr.strip()} {tail}".strip())

    def sql(self, statement: str) -> None:
        """One statement as the cluster's superuser, over the unix socket."""
        done = subprocess.run(
            [
                str(self.bindir / "psql"),
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                str(self.folder),
                "-p",
                str(self.port),
                "-U",
                USER,
                "-d",
                "postgres",
                "-c",
                statement,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{statement}: {done.stderr.strip()}")

    def create_database(self, *, empty: bool = False) -> str:
        """A fresh database, migrated, with the insurers loaded (or `empty`); its name."""
        self._count += 1
        name = f"test_{os.getpid()}_{self._count}"
        self.sql(f"CREATE DATABASE {name} TEMPLATE {'template0' if empty else TEMPLATE}")
        return name

    def drop_database(self, name: str) -> None:
        self.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    @contextlib.contextmanager
    def database(self, *, empty: bool = False) -> Iterator[str]:
        """A fresh database's URL while the block runs."""
        name = self.create_database(empty=empty)
        try:
            yield self.url(name)
        finally:
            self.drop_database(name)

    def stop(self) -> None:
        """Everything it started, stopped; its folder removed. Safe to call twice."""
        if self._running:
            self._running = False
            self.run_as.run(
                [str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]
            )
        shutil.rmtree(self.folder, ignore_errors=True)


def start_cluster(*, durable: bool = False) -> PostgresCluster:
    bindir = find_bindir()
    if bindir is None or not (bindir / "initdb").exists():
        raise ClusterUnavailable("no PostgreSQL server binaries (initdb) on this machine")
    cluster = PostgresCluster(bindir, durable=durable)
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        raise
    return cluster
