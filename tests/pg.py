"""A throwaway PostgreSQL server for tests: Debian's postgresql binaries, a fresh data dir, a free port.

How it works: ``pg_server`` (a pytest fixture, one server per test session) finds initdb and postgres
under /usr/lib/postgresql/*/bin (or on PATH), creates a data directory with
``tempfile.mkdtemp`` (pytest's tmp dirs under /tmp/pytest-of-root are not traversable
by another user), runs ``initdb`` with trust authentication, starts ``postgres``
listening on 127.0.0.1 only at a free port with its socket in the same directory, waits
until it answers, and yields a ``PgServer`` whose ``new_database()`` creates an empty
database and returns its URL. PostgreSQL refuses to run as root, so as root both run as
the ``postgres`` system user (created by the Debian package) through ``runuser``, and the
data dir is handed to that user. The server is stopped (SIGTERM, then SIGKILL) and the
directory removed at the end. Without the binaries the tests skip and say why.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

#: Longest the server may take to accept connections after it is started, in seconds.
START_TIMEOUT_S = 60.0
#: Longest a stopping server may take before it is killed, in seconds.
STOP_TIMEOUT_S = 15.0
#: The system user PostgreSQL runs as when the tests run as root.
PG_USER = "postgres"


def find_bin_dir() -> str | None:
    """The directory of initdb and postgres (the newest Debian version first), or None."""
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: p.split("/")[-2], reverse=True):
        if os.path.exists(os.path.join(candidate, "initdb")) and os.path.exists(os.path.join(candidate, "postgres")):
            return candidate
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb and shutil.which("postgres") else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PgServer:
    port: int
    user: str
    _names: Iterator[int] = field(default_factory=itertools.count)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """An empty database of its own; returns its URL."""
        import psycopg

        name = f"t{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)


def _as_pg_user(command: list[str], as_root: bool) -> list[str]:
    return ["runuser", "-u", PG_USER, "--", *command] if as_root else command


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (no initdb/postgres under /usr/lib/postgresql/*/bin or on PATH); "
                    "apt-get install postgresql (.ci/run does) to run the PostgreSQL indexer tests")
    as_root = os.geteuid() == 0
    if as_root:
        try:
            pg = pwd.getpwnam(PG_USER)
        except KeyError:
            pytest.skip(f"running as root and there is no {PG_USER!r} system user to run PostgreSQL as "
                        f"(Debian's postgresql package creates it)")
    root = tempfile.mkdtemp(prefix="shopchain-pg-")
    data = os.path.join(root, "data")
    os.mkdir(data, 0o700)
    if as_root:
        os.chmod(root, 0o755)
        os.chown(data, pg.pw_uid, pg.pw_gid)
        user = PG_USER
    else:
        user = pwd.getpwuid(os.geteuid()).pw_name
    port = _free_port()
    proc = None
    try:
        subprocess.run(_as_pg_user([os.path.join(bin_dir, "initdb"), "-D", data, "-U", user, "-A", "trust",
                                    "-E", "UTF8", "--locale=C", "--no-sync"], as_root),
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        log = open(os.path.join(root, "server.log"), "wb")
        proc = subprocess.Popen(_as_pg_user([os.path.join(bin_dir, "postgres"), "-D", data, "-p", str(port),
                                             "-h", "127.0.0.1", "-k", data, "-c", "fsync=off",
                                             "-c", "full_page_writes=off"], as_root),
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        server = PgServer(port, user)
        _wait_ready(server, proc, root)
        yield server
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"initdb failed: {exc.stderr.decode(errors='replace')[-2000:]}") from None
    finally:
        if proc is not None:
            _stop(proc)
        shutil.rmtree(root, ignore_errors=True)


def _wait_ready(server: PgServer, proc: subprocess.Popen, root: str) -> None:
    import psycopg

    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            with open(os.path.join(root, "server.log"), errors="replace") as f:
                raise RuntimeError(f"postgres exited with {proc.returncode}: {f.read()[-2000:]}")
        try:
            with psycopg.connect(server.url(), connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"postgres did not accept connections on port {server.port} "
                                   f"within {START_TIMEOUT_S} s") from None
            time.sleep(0.1)


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server (a smart shutdown), SIGKILL its process group if it lingers."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass
