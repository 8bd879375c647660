"""A throw-away PostgreSQL cluster for the tests: Debian's ``postgresql`` binaries, ``initdb`` and
``pg_ctl`` in a temporary folder, listening on 127.0.0.1 on a free port, stopped and removed on
exit.

initdb and postgres refuse to run as root, so as root the cluster runs as ``nobody`` through
``runuser``. TCP connections need the password (scram-sha-256), which clients get from libpq's
``PGPASSWORD``; the socket in the temporary folder is trusted, for ``psql``. fsync is off: the data
is thrown away.
"""

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

SUPERUSER = "postgres"


class PostgresUnavailable(RuntimeError):
    """The server binaries are missing (skip the test, or fail it where CI requires them)."""


def find_pg_bin() -> Path:
    """The folder of initdb, pg_ctl and postgres: on PATH, else Debian's newest
    /usr/lib/postgresql/*/bin (Debian does not put them on PATH)."""
    candidates = [Path(p).resolve().parent for p in filter(None, [shutil.which("initdb")])]
    candidates += sorted(
        (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    for folder in candidates:
        if all((folder / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres", "psql")):
            return folder
    raise PostgresUnavailable(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: "
        "apt-get install postgresql"
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PostgresCluster:
    """``with PostgresCluster() as pg:`` a running server; ``pg.create_database(name)`` returns
    its libpq DSN (no password: that is in ``pg.env()``)."""

    host = "127.0.0.1"

    def __init__(self) -> None:
        self.bin = find_pg_bin()
        self.run_as = "nobody" if os.geteuid() == 0 else None
        self.password = secrets.token_hex(12)
        self.port = 0
        self.root = Path()

    def _run(self, *arguments: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [*(["runuser", "-u", self.run_as, "--"] if self.run_as else []), *arguments]
        return subprocess.run(
            command,
            capture_output=True,
            text=True,
            check=check,
            cwd=self.root,
            env={**os.environ, "LC_ALL": "C", "LANG": "C"},
        )

    def __enter__(self) -> "PostgresCluster":
        self.root = Path(tempfile.mkdtemp(prefix="bam-assets-pg-"))
        self.root.chmod(0o755)
        password_file = self.root / "password"
        password_file.write_text(self.password + "\n")
        if self.run_as:
            shutil.chown(self.root, user=self.run_as)
            shutil.chown(password_file, user=self.run_as)
        data = self.root / "data"
        try:
            self._run(
                str(self.bin / "initdb"),
                *("-D", str(data), "-U", SUPERUSER, f"--pwfile={password_file}"),
                *("--auth-local=trust", "--auth-host=scram-sha-256", "--locale=C", "--no-sync"),
            )
            for _ in range(5):  # another process may take the free port before postgres binds it
                self.port = _free_port()
                options = (
                    f"-c listen_addresses={self.host} -p {self.port} "
                    f"-c unix_socket_directories={self.root} -c fsync=off "
                    "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
                )
                started = self._run(
                    str(self.bin / "pg_ctl"),
                    *("-D", str(data), "-l", str(self.root / "postgres.log"), "-w"),
                    *("-o", options, "start"),
                    check=False,
                )
                if started.returncode == 0:
                    return self
            raise PostgresUnavailable(f"pg_ctl start failed: {started.stderr.strip()}")
        except BaseException:
            self.__exit__()
            raise

    def __exit__(self, *_: object) -> None:
        data = self.root / "data"
        if (data / "postmaster.pid").exists():
            self._run(str(self.bin / "pg_ctl"), "-D", str(data), "-m", "fast", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Runs ``sql`` over the trusted socket; returns psql's unaligned output."""
        result = self._run(
            str(self.bin / "psql"),
            *("-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", str(self.root)),
            *("-p", str(self.port), "-U", SUPERUSER, "-d", database, "-c", sql),
        )
        return result.stdout

    def create_database(self, name: str) -> str:
        self.psql(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def dsn(self, database: str) -> str:
        return f"host={self.host} port={self.port} dbname={database} user={SUPERUSER}"

    def env(self) -> dict[str, str]:
        """libpq's variables for this server: the password never goes into a DSN."""
        return {"PGPASSWORD": self.password}
