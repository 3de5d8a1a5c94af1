"""A throwaway PostgreSQL cluster for tests, from Debian's postgresql binaries.

    pg = ThrowawayPostgres()
    pg.start()                      # initdb on first start, then pg_ctl start
    url = pg.url()                  # postgresql+asyncpg://postgres@127.0.0.1:PORT/qopi_test
    pg.stop()                       # fast shutdown: "the database went down"
    pg.start()                      # same port, same data
    pg.cleanup()                    # stop and delete everything

PostgreSQL refuses to run as root, so when euid is 0 the cluster files belong to
the ``postgres`` system user (Debian's package creates it; ``nobody`` is the
fallback) and initdb / pg_ctl run through ``runuser -u USER --``. As a normal
user everything runs as that user. Listens on 127.0.0.1 only, trust auth,
fsync off. Raises ``PostgresUnavailable`` when no binaries are found.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from typing import List, Optional, Sequence

__all__ = ["ThrowawayPostgres", "PostgresUnavailable", "PostgresError", "find_pg_bindir"]


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


class PostgresError(RuntimeError):
    """The throwaway cluster failed to initialise/start/stop."""


_REQUIRED = ("initdb", "pg_ctl", "postgres")


def _has_bins(d: str) -> bool:
    return all(os.access(os.path.join(d, b), os.X_OK) for b in _REQUIRED)


def _version_key(path: str) -> tuple:
    m = re.search(r"/postgresql/(\d+)(?:\.(\d+))?/", path + "/")
    return (int(m.group(1)), int(m.group(2) or 0)) if m else (0, 0)


def find_pg_bindir() -> str:
    """Locate a bin directory holding initdb, pg_ctl and postgres.

    Order: $QOPI_PG_BINDIR, ``pg_config --bindir``, the newest
    /usr/lib/postgresql/*/bin, initdb on PATH (symlinks resolved)."""
    tried: List[str] = []
    env = os.environ.get("QOPI_PG_BINDIR")
    if env:
        tried.append(env)
        if _has_bins(env):
            return env
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        if out:
            tried.append(out)
            if _has_bins(out):
                return out
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True):
        tried.append(d)
        if _has_bins(d):
            return d
    initdb = shutil.which("initdb")
    if initdb:
        d = os.path.dirname(os.path.realpath(initdb))
        tried.append(d)
        if _has_bins(d):
            return d
    raise PostgresUnavailable(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found; looked in: "
        + (", ".join(tried) or "nothing (no pg_config, no /usr/lib/postgresql/*/bin, no initdb on PATH)")
        + ". Install Debian's package: apt-get install postgresql (or set QOPI_PG_BINDIR)."
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _port_accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class ThrowawayPostgres:
    """One disposable cluster in a temp directory, on a free loopback port."""

    host = "127.0.0.1"
    superuser = "postgres"

    def __init__(
        self,
        *,
        database: str = "qopi_test",
        port: Optional[int] = None,
        bindir: Optional[str] = None,
        start_timeout: float = 60.0,
        base_dir: Optional[str] = None,
    ) -> None:
        self.database = database
        self.port = port or free_port(self.host)
        self._bindir = bindir
        self.start_timeout = start_timeout
        self._base_parent = base_dir
        self.base: Optional[str] = None
        self.datadir: Optional[str] = None
        self.sockdir: Optional[str] = None
        self.logfile: Optional[str] = None
        self.run_as: Optional[str] = None
        self._initialised = False
        self._db_created = False
        self._atexit_registered = False
        self.startup_seconds: Optional[float] = None  # last start() duration
        self.init_seconds: Optional[float] = None  # initdb duration

    # ----------------------------------------------------------------- helpers
    @property
    def bindir(self) -> str:
        if self._bindir is None:
            self._bindir = find_pg_bindir()
        return self._bindir

    def _bin(self, name: str) -> str:
        return os.path.join(self.bindir, name)

    def _server_cmd(self, args: Sequence[str]) -> List[str]:
        if self.run_as is None:
            return list(args)
        runuser = shutil.which("runuser") or "/usr/sbin/runuser"
        if os.access(runuser, os.X_OK):
            return [runuser, "-u", self.run_as, "--", *args]
        su = shutil.which("su") or "/bin/su"
        return [su, "-s", "/bin/sh", self.run_as, "-c", shlex.join(args)]

    def _run_server_tool(self, args: Sequence[str], timeout: float, what: str) -> subprocess.CompletedProcess:
        cmd = self._server_cmd(args)
        env = dict(os.environ, LC_ALL="C", LANG="C")
        env.pop("PGDATA", None)
        try:
            proc = subprocess.run(
                cmd, cwd=self.base, env=env, capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired as e:
            raise PostgresError(
                f"{what} timed out after {timeout}s: {shlex.join(cmd)}\n"
                f"stdout: {e.stdout}\nstderr: {e.stderr}\n{self._log_excerpt()}"
            ) from None
        if proc.returncode != 0:
            raise PostgresError(
                f"{what} failed (exit {proc.returncode}): {shlex.join(cmd)}\n"
                f"stdout: {proc.stdout}\nstderr: {proc.stderr}\n{self._log_excerpt()}"
            )
        return proc

    def _log_excerpt(self, limit: int = 8000) -> str:
        if not self.logfile or not os.path.exists(self.logfile):
            return "(no server log)"
        try:
            with open(self.logfile, "r", errors="replace") as f:
                text = f.read()
        except OSError as e:
            return f"(server log unreadable: {e})"
        return f"--- server log {self.logfile} ---\n{text[-limit:]}--- end of server log ---"

    def server_log(self) -> str:
        if not self.logfile or not os.path.exists(self.logfile):
            return ""
        with open(self.logfile, "r", errors="replace") as f:
            return f.read()

    def _choose_user(self) -> Optional[str]:
        if os.geteuid() != 0:
            return None
        for name in ("postgres", "nobody"):
            try:
                pwd.getpwnam(name)
                return name
            except KeyError:
                continue
        raise PostgresError(
            "running as root but neither a 'postgres' nor a 'nobody' user exists; PostgreSQL refuses to run as root"
        )

    def _prepare_dirs(self) -> None:
        self.run_as = self._choose_user()
        self.base = tempfile.mkdtemp(prefix="qopi-pg-", dir=self._base_parent)
        self.datadir = os.path.join(self.base, "data")
        self.sockdir = os.path.join(self.base, "sock")
        self.logfile = os.path.join(self.base, "postgres.log")
        os.mkdir(self.sockdir, 0o700)
        open(self.logfile, "a").close()
        if self.run_as is not None:
            pw = pwd.getpwnam(self.run_as)
            for path in (self.base, self.sockdir, self.logfile):
                os.chown(path, pw.pw_uid, pw.pw_gid)
            # mkdtemp's parent (/tmp) must be traversable; it normally is (1777).
        if not self._atexit_registered:
            atexit.register(self.cleanup)
            self._atexit_registered = True

    def _initdb(self) -> None:
        t0 = time.monotonic()
        self._run_server_tool(
            [
                self._bin("initdb"),
                "-D", self.datadir,
                "-U", self.superuser,
                "-A", "trust",
                "-E", "UTF8",
                "--no-locale",
                "--no-sync",
            ],
            timeout=120,
            what="initdb",
        )
        conf = os.path.join(self.datadir, "postgresql.conf")
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.sockdir}'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "100",
            "shared_buffers": "32MB",
            "logging_collector": "off",
            "log_min_messages": "warning",
            "log_connections": "off",
            "timezone": "'UTC'",
            "max_wal_size": "256MB",
        }
        # The data dir belongs to the server user; root can still append to it.
        with open(conf, "a") as f:
            f.write("\n# qopi-bot throwaway test cluster\n")
            for k, v in settings.items():
                f.write(f"{k} = {v}\n")
        self._initialised = True
        self.init_seconds = time.monotonic() - t0

    # ----------------------------------------------------------------- lifecycle
    @property
    def running(self) -> bool:
        if not self.datadir or not os.path.exists(os.path.join(self.datadir, "postmaster.pid")):
            return False
        return _port_accepts(self.host, self.port)

    def start(self) -> "ThrowawayPostgres":
        """initdb (first time), start the server on ``self.port``, wait until it accepts
        connections, and create ``self.database`` (first time). Idempotent."""
        t0 = time.monotonic()
        if self.base is None:
            self._prepare_dirs()
        if not self._initialised:
            self._initdb()
        if self.running:
            return self
        if _port_accepts(self.host, self.port):
            raise PostgresError(f"port {self.port} on {self.host} is already taken by another process")
        self._run_server_tool(
            [
                self._bin("pg_ctl"),
                "-D", self.datadir,
                "-l", self.logfile,
                "-w",
                "-t", str(int(self.start_timeout)),
                "start",
            ],
            timeout=self.start_timeout + 15,
            what="pg_ctl start",
        )
        self._wait_ready(self.start_timeout)
        if not self._db_created:
            if self.database != "postgres":
                self.create_database(self.database, exist_ok=True)
            self._db_created = True
        self.startup_seconds = time.monotonic() - t0
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        isready = self._bin("pg_isready")
        last = ""
        while time.monotonic() < deadline:
            if os.access(isready, os.X_OK):
                p = subprocess.run(
                    [isready, "-h", self.host, "-p", str(self.port), "-U", self.superuser, "-d", "postgres", "-t", "2"],
                    capture_output=True, text=True, timeout=10,
                )
                last = (p.stdout + p.stderr).strip()
                if p.returncode == 0:
                    return
            elif _port_accepts(self.host, self.port):
                return
            time.sleep(0.1)
        raise PostgresError(
            f"PostgreSQL on {self.host}:{self.port} not ready after {timeout}s (pg_isready: {last})\n{self._log_excerpt()}"
        )

    def stop(self, mode: str = "fast") -> None:
        """Shut the server down (``fast``; ``immediate`` simulates a crash). Data stays."""
        if not self.datadir or not os.path.exists(os.path.join(self.datadir, "postmaster.pid")):
            return
        self._run_server_tool(
            [self._bin("pg_ctl"), "-D", self.datadir, "-m", mode, "-w", "-t", "60", "stop"],
            timeout=75,
            what=f"pg_ctl stop -m {mode}",
        )

    def restart(self) -> "ThrowawayPostgres":
        self.stop()
        return self.start()

    def cleanup(self) -> None:
        """Stop the server (if running) and delete the data directory."""
        if self.base is None:
            return
        try:
            self.stop(mode="immediate")
        except Exception:
            pass
        shutil.rmtree(self.base, ignore_errors=True)
        self.base = self.datadir = self.sockdir = self.logfile = None
        self._initialised = False
        self._db_created = False

    def __enter__(self) -> "ThrowawayPostgres":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()

    # ----------------------------------------------------------------- URLs / databases
    def url(self, driver: str = "postgresql+asyncpg", database: Optional[str] = None) -> str:
        """SQLAlchemy URL, e.g. postgresql+asyncpg://postgres@127.0.0.1:PORT/qopi_test.
        ``driver="postgresql"`` gives a plain libpq/asyncpg DSN."""
        return f"{driver}://{self.superuser}@{self.host}:{self.port}/{database or self.database}"

    def dsn(self, database: Optional[str] = None) -> str:
        """DSN for asyncpg.connect / psql."""
        return self.url("postgresql", database)

    def _client(self, tool: str, *args: str, database: str = "postgres") -> subprocess.CompletedProcess:
        cmd = [self._bin(tool), "-h", self.host, "-p", str(self.port), "-U", self.superuser, *args]
        env = dict(os.environ, PGCONNECT_TIMEOUT="10")
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)

    def psql(self, sql: str, database: Optional[str] = None) -> str:
        """Run SQL with psql (unaligned, tuples only); returns stdout."""
        p = self._client("psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                         "-d", database or self.database, "-c", sql)
        if p.returncode != 0:
            raise PostgresError(f"psql failed: {p.stderr.strip()}")
        return p.stdout

    def create_database(self, name: str, exist_ok: bool = False) -> str:
        """Create database ``name``; returns its SQLAlchemy (asyncpg) URL."""
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", name):
            raise ValueError(f"unsafe database name: {name!r}")
        p = self._client("createdb", name)
        if p.returncode != 0 and not (exist_ok and "already exists" in p.stderr):
            raise PostgresError(f"createdb {name} failed: {p.stderr.strip()}\n{self._log_excerpt(2000)}")
        return self.url(database=name)

    def drop_database(self, name: str) -> None:
        p = self._client("dropdb", "--if-exists", "--force", name)
        if p.returncode != 0:
            raise PostgresError(f"dropdb {name} failed: {p.stderr.strip()}")
