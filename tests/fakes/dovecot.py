"""A throwaway Dovecot IMAP server for tests, from Debian's dovecot-imapd package.

    dv = ThrowawayDovecot(user="help@qopi-bot.test", password="secret").start()
    dv.port                          # 127.0.0.1:PORT, plain IMAP (STARTTLS offered when tls=True)
    dv.append(raw_bytes)             # "deliver" a message into INBOX over real IMAP (stdlib imaplib)
    dv.uids("INBOX"), dv.messages("QOPI/Done")
    dv.stop(); dv.start()            # a server restart: same port, same maildir
    dv.cleanup()

Like tests/fakes/postgres.py: a temp directory holds the config, a passwd-file and the
maildir; the master runs in the foreground (`dovecot -F`) as a child process. As root the
mail files belong to the `dovecot` system user (Dovecot refuses to run mail as root); as a
normal user everything runs as that user. The hierarchy separator is "/" as on Microsoft 365
and Gmail. `tls=True` adds a self-signed certificate (CA file in `ca_file`) for an implicit
TLS listener (`tls_port`) and STARTTLS; `idle=False` hides IDLE so clients must poll;
`oauth2_introspection_url` turns on XOAUTH2 checked against that HTTP endpoint.
"""

from __future__ import annotations

import atexit
import imaplib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["ThrowawayDovecot", "DovecotUnavailable", "find_dovecot"]


class DovecotUnavailable(RuntimeError):
    """No dovecot binary on this machine."""


def find_dovecot() -> str:
    for candidate in (os.environ.get("QOPI_DOVECOT_BIN", ""), shutil.which("dovecot") or "", "/usr/sbin/dovecot"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise DovecotUnavailable("dovecot not found. Install Debian's package: apt-get install dovecot-imapd "
                             "(or set QOPI_DOVECOT_BIN)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.3).close()
        return True
    except OSError:
        return False


class ThrowawayDovecot:
    host = "127.0.0.1"

    def __init__(self, *, user: str = "help@qopi-bot.test", password: str = "secret", tls: bool = False,
                 idle: bool = True, oauth2_introspection_url: str = "") -> None:
        self.user, self.password = user, password
        self.tls, self.idle, self.oauth2_url = tls, idle, oauth2_introspection_url
        self.port = _free_port()
        self.tls_port = _free_port() if tls else 0
        self.base = Path(tempfile.mkdtemp(prefix="qopi-dovecot-"))
        os.chmod(self.base, 0o755)  # the imap processes run as the mail user and must reach the maildir
        self.mail = self.base / "mail"
        self.mail.mkdir()
        self.ca_file = str(self.base / "cert.pem")
        self.log_file = self.base / "dovecot.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._mail_user = "dovecot" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        if os.geteuid() == 0:
            pw = pwd.getpwnam(self._mail_user)
            os.chown(self.mail, pw.pw_uid, pw.pw_gid)
        self._write_config()
        atexit.register(self.cleanup)

    # ----------------------------------------------------------------- config
    def _write_config(self) -> None:
        b = self.base
        (b / "passwd").write_text(f"{self.user}:{{PLAIN}}{self.password}\n")
        me = pwd.getpwuid(os.geteuid()).pw_name
        internal = ("dovecot", "dovenull") if os.geteuid() == 0 else (me, me)
        ssl = "no"
        if self.tls:
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                            "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                            "-keyout", str(b / "key.pem"), "-out", self.ca_file],
                           check=True, capture_output=True, timeout=60)
            ssl = f"yes\nssl_cert = <{self.ca_file}\nssl_key = <{b / 'key.pem'}"
        mechanisms = "plain login" + (" xoauth2 oauthbearer" if self.oauth2_url else "")
        oauth = ""
        if self.oauth2_url:
            (b / "oauth2.conf").write_text(
                f"introspection_mode = post\nintrospection_url = {self.oauth2_url}\n"
                "username_attribute = username\nactive_attribute = active\nactive_value = true\n"
                "tokeninfo_url = \nforce_introspection = yes\n")
            oauth = f"passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = {b / 'oauth2.conf'}\n}}\n"
        capability = "" if self.idle else (
            "imap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE LITERAL+ UIDPLUS MOVE NAMESPACE\n")
        (b / "dovecot.conf").write_text(f"""
base_dir = {b}/run
state_dir = {b}/state
log_path = {self.log_file}
instance_name = qopi-test-{b.name}
protocols = imap
listen = 127.0.0.1
ssl = {ssl}
disable_plaintext_auth = no
auth_mechanisms = {mechanisms}
default_internal_user = {internal[0]}
default_login_user = {internal[1]}
first_valid_uid = 1
mail_location = maildir:{self.mail}/%u
{capability}
namespace inbox {{
  inbox = yes
  separator = /
}}
{oauth}passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {b}/passwd
}}
userdb {{
  driver = static
  args = uid={self._mail_user} gid={self._mail_user} home={self.mail}/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.tls_port}
  }}
}}
service anvil {{
  chroot =
}}
""")
        for d in ("run", "state"):
            (b / d).mkdir(exist_ok=True)

    # ----------------------------------------------------------------- lifecycle
    def start(self, timeout: float = 20.0) -> ThrowawayDovecot:
        if self.proc is not None and self.proc.poll() is None:
            return self
        self.proc = subprocess.Popen([find_dovecot(), "-F", "-c", str(self.base / "dovecot.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not _accepts(self.port):
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"dovecot exited with {self.proc.returncode}: {err}\n{self.log()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"dovecot did not listen on {self.port}\n{self.log()}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        """A server going away: the master and every imap process end, connections drop."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        deadline = time.monotonic() + 10
        while _accepts(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def cleanup(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    # ----------------------------------------------------------------- a client for the test's side
    def client(self) -> imaplib.IMAP4:
        c = imaplib.IMAP4(self.host, self.port, timeout=30)
        c.login(self.user, self.password)
        return c

    def append(self, raw: bytes, folder: str = "INBOX", date: float | None = None) -> int:
        """Put a message into `folder` as a delivery would; returns its UID."""
        c = self.client()
        try:
            typ, data = c.append(folder, None, imaplib.Time2Internaldate(date or time.time()), raw)
            assert typ == "OK", data
            found = re.search(rb"APPENDUID \d+ (\d+)", data[0] or b"")
            return int(found.group(1)) if found else 0
        finally:
            c.logout()

    def append_many(self, raws: list[bytes], folder: str = "INBOX") -> None:
        c = self.client()
        try:
            for raw in raws:
                typ, data = c.append(folder, None, None, raw)
                assert typ == "OK", data
        finally:
            c.logout()

    def uids(self, folder: str = "INBOX") -> list[int]:
        """UIDs in `folder`; [] when it does not exist."""
        c = self.client()
        try:
            typ, _ = c.select(f'"{folder}"', readonly=True)
            if typ != "OK":
                return []
            typ, data = c.uid("SEARCH", "ALL")
            return [int(u) for u in (data[0] or b"").split()]
        finally:
            c.logout()

    def messages(self, folder: str = "INBOX") -> list[bytes]:
        c = self.client()
        try:
            typ, _ = c.select(f'"{folder}"', readonly=True)
            if typ != "OK":
                return []
            typ, data = c.uid("FETCH", "1:*", "(BODY.PEEK[])")
            return [part[1] for part in data if isinstance(part, tuple)]
        finally:
            c.logout()

    def delete_folder(self, folder: str) -> None:
        c = self.client()
        try:
            c.delete(f'"{folder}"')
        finally:
            c.logout()
