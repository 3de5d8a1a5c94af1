"""A local SMTP sink for tests: a stand-in for ``QOPI_SMTP_RELAY`` (and a way to drive
``QOPI_SMTP_LISTEN``).

``SmtpSink`` runs aiosmtpd's threaded ``Controller`` on 127.0.0.1 at a free port, so it
works the same from plain sync tests and from async tests (its event loop lives in its
own thread).  Every accepted message is recorded as a ``ReceivedMessage``.

    sink = SmtpSink().start()
    os.environ["QOPI_SMTP_RELAY"] = sink.address          # "127.0.0.1:PORT"
    ...
    [msg] = sink.wait_for(1, timeout=5)                   # sync tests
    [msg] = await sink.wait_for_async(1, timeout=5)       # async tests (never blocks the loop)
    assert msg.message["Auto-Submitted"] == "auto-replied"

    sink.fail_temporarily()      # DATA answered "451 4.3.0 try later"; nothing recorded
    sink.recover()               # back to 250
    sink.stop(); sink.start()    # connection refused while stopped; same port afterwards

``send_eml`` / ``send_eml_async`` deliver a raw ``.eml`` (bytes) to any SMTP server,
converting bare LF line endings to CRLF as a real MTA would on the wire.
"""

from __future__ import annotations

import asyncio
import re
import smtplib
import socket
import threading
import time
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Iterator, Sequence

import aiosmtplib
from aiosmtpd.controller import Controller

__all__ = [
    "ReceivedMessage",
    "SmtpSink",
    "find_free_port",
    "send_eml",
    "send_eml_async",
    "smtp_sink",
    "to_crlf",
]

_STAGES = ("MAIL", "RCPT", "DATA")


def find_free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing is listening on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def to_crlf(raw: bytes) -> bytes:
    """Bare LF (and lone CR) -> CRLF; what goes over SMTP must use CRLF."""
    return re.sub(rb"\r\n|\r(?!\n)|\n", b"\r\n", raw)


@dataclass(frozen=True)
class ReceivedMessage:
    """One message the sink accepted."""

    mail_from: str  # SMTP MAIL FROM; "" for an empty return path (<>)
    rcpt_tos: tuple[str, ...]  # SMTP RCPT TO addresses, in order
    raw: bytes  # the DATA as received (CRLF line endings, dot-unstuffed)
    message: EmailMessage  # ``raw`` parsed with email.policy.default
    peer: tuple | None = None
    received_at: float = field(default_factory=time.time)

    @property
    def subject(self) -> str | None:
        return self.message["Subject"]

    @property
    def text(self) -> str:
        """The preferred body as text (plain, else HTML source); "" if none."""
        try:
            part = self.message.get_body(preferencelist=("plain", "html"))
            return part.get_content() if part is not None else ""
        except (LookupError, KeyError, ValueError, AssertionError):
            payload = self.message.get_payload(decode=True) or b""
            return payload.decode("utf-8", "replace")


class _Handler:
    """aiosmtpd handler: records messages, or answers with a temporary failure."""

    def __init__(self, sink: "SmtpSink") -> None:
        self._sink = sink

    def _failure(self, stage: str) -> str | None:
        with self._sink._lock:
            fail = self._sink._failure
            if fail is not None and fail[0] == stage:
                self._sink._rejected += 1
                return fail[1]
        return None

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        reply = self._failure("MAIL")
        if reply:
            return reply
        envelope.mail_from = address  # "<>" for an empty reverse-path (must stay truthy)
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self._failure("RCPT")
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self._sink._lock:
            self._sink._data_started += 1
            delay = self._sink._data_delay
        if delay:  # a slow relay: the answer to DATA comes late
            await asyncio.sleep(delay)
        reply = self._failure("DATA")
        if reply:
            return reply
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):  # only if someone builds the sink with decode_data=True
            raw = raw.encode("utf-8", "surrogateescape")
        msg = BytesParser(policy=policy.default).parsebytes(raw)
        self._sink._record(
            ReceivedMessage(
                mail_from="" if envelope.mail_from in (None, "", "<>") else envelope.mail_from,
                rcpt_tos=tuple(envelope.rcpt_tos),
                raw=bytes(raw),
                message=msg,  # type: ignore[arg-type]
                peer=session.peer,
            )
        )
        return "250 2.0.0 OK: queued"


class SmtpSink:
    """Records every message delivered to it.  Thread-safe; sync- and async-friendly."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or find_free_port(host)  # fixed for the sink's lifetime
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._messages: list[ReceivedMessage] = []
        self._failure: tuple[str, str] | None = None
        self._rejected = 0
        self._data_delay = 0.0
        self._data_started = 0
        self._controller: Controller | None = None

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> "SmtpSink":
        """Listen on ``host:port`` (the same port on every start).  Returns self."""
        if self._controller is not None:
            return self
        # A Controller closes its loop on stop(), so each start gets a fresh one.
        deadline = time.monotonic() + 5.0
        while True:
            controller = Controller(
                _Handler(self),
                hostname=self.host,
                port=self.port,
                ready_timeout=5.0,
                enable_SMTPUTF8=True,
                server_hostname="smtp-sink.test",
            )
            try:
                controller.start()
                break
            except OSError:  # port briefly unavailable right after a stop()
                controller.stop(no_assert=True)
                if not controller.loop.is_closed():
                    controller.loop.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self._controller = controller
        return self

    def stop(self) -> None:
        """Stop listening: connections are refused until ``start()``.  Keeps messages."""
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    @property
    def running(self) -> bool:
        return self._controller is not None

    @property
    def address(self) -> str:
        """``"host:port"``, the form QOPI_SMTP_RELAY / QOPI_SMTP_LISTEN take."""
        return f"{self.host}:{self.port}"

    def __enter__(self) -> "SmtpSink":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- failure switch ------------------------------------------------------------
    def fail_temporarily(self, reply: str = "451 4.3.0 try later", stage: str = "DATA") -> None:
        """Answer ``reply`` at ``stage`` (MAIL, RCPT or DATA) until ``recover()``.
        Rejected messages are not recorded; ``rejected_count`` counts the refusals."""
        stage = stage.upper()
        if stage not in _STAGES:
            raise ValueError(f"stage must be one of {_STAGES}")
        with self._lock:
            self._failure = (stage, reply)

    def set_data_delay(self, seconds: float) -> None:
        """Answer DATA only after ``seconds`` (0: at once), like a slow relay."""
        with self._lock:
            self._data_delay = float(seconds)

    @property
    def data_started(self) -> int:
        """How many DATA commands arrived, answered or not (a second send shows here)."""
        with self._lock:
            return self._data_started

    def recover(self) -> None:
        with self._lock:
            self._failure = None

    @property
    def failing(self) -> bool:
        with self._lock:
            return self._failure is not None

    @property
    def rejected_count(self) -> int:
        with self._lock:
            return self._rejected

    # -- recorded messages -------------------------------------------------------------
    def _record(self, received: ReceivedMessage) -> None:
        with self._cond:
            self._messages.append(received)
            self._cond.notify_all()

    @property
    def messages(self) -> list[ReceivedMessage]:
        """A snapshot copy of everything received so far, in arrival order."""
        with self._lock:
            return list(self._messages)

    def __len__(self) -> int:
        with self._lock:
            return len(self._messages)

    def __iter__(self) -> Iterator[ReceivedMessage]:
        return iter(self.messages)

    def messages_to(self, address: str) -> list[ReceivedMessage]:
        """Messages whose envelope recipients include ``address`` (case-insensitive)."""
        a = address.lower()
        return [m for m in self.messages if a in (r.lower() for r in m.rcpt_tos)]

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()
            self._rejected = 0

    def wait_for(self, count: int = 1, timeout: float = 5.0) -> list[ReceivedMessage]:
        """Block until at least ``count`` messages are recorded; return all of them.
        Raises TimeoutError.  Do not call this from a coroutine whose event loop is the
        one that has to send the mail -- use ``wait_for_async`` there."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"SMTP sink got {len(self._messages)} message(s), wanted {count} "
                        f"within {timeout}s"
                    )
                self._cond.wait(min(left, 0.05))
            return list(self._messages)

    async def wait_for_async(
        self, count: int = 1, timeout: float = 5.0, interval: float = 0.02
    ) -> list[ReceivedMessage]:
        """Like ``wait_for`` but polls with ``asyncio.sleep`` so the caller's loop runs."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if len(self._messages) >= count:
                    return list(self._messages)
                got = len(self._messages)
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"SMTP sink got {got} message(s), wanted {count} within {timeout}s"
                )
            await asyncio.sleep(interval)

    def assert_quiet(self, duration: float = 0.3) -> None:
        """Assert nothing arrives for ``duration`` seconds (for "must not reply" tests)."""
        before = len(self)
        time.sleep(duration)
        assert len(self) == before, f"unexpected mail: {self.messages[before:]!r}"

    async def assert_quiet_async(self, duration: float = 0.3) -> None:
        before = len(self)
        await asyncio.sleep(duration)
        assert len(self) == before, f"unexpected mail: {self.messages[before:]!r}"


def _rcpts(rcpt_to: str | Sequence[str]) -> list[str]:
    return [rcpt_to] if isinstance(rcpt_to, str) else list(rcpt_to)


def send_eml(
    host: str,
    port: int,
    raw_bytes: bytes,
    mail_from: str,
    rcpt_to: str | Sequence[str],
    timeout: float = 10.0,
) -> dict:
    """Deliver ``raw_bytes`` as-is (apart from CRLF line endings) with smtplib.
    ``mail_from=""`` sends ``MAIL FROM:<>``.  Returns smtplib's refused-recipients dict;
    raises smtplib.SMTPException subclasses (e.g. SMTPDataError with smtp_code 451)."""
    with smtplib.SMTP(host, port, timeout=timeout) as client:
        return client.sendmail(mail_from, _rcpts(rcpt_to), to_crlf(raw_bytes))


async def send_eml_async(
    host: str,
    port: int,
    raw_bytes: bytes,
    mail_from: str,
    rcpt_to: str | Sequence[str],
    timeout: float = 10.0,
):
    """``send_eml`` with aiosmtplib.  Raises aiosmtplib.SMTPResponseException subclasses
    (``.code == 451`` for a temporary failure) or SMTPConnectError when nothing listens."""
    return await aiosmtplib.send(
        to_crlf(raw_bytes),
        sender=mail_from,
        recipients=_rcpts(rcpt_to),
        hostname=host,
        port=port,
        timeout=timeout,
        start_tls=False,
        use_tls=False,
    )


try:  # a ready-made fixture: ``from tests.fakes.smtp_sink import smtp_sink``
    import pytest

    @pytest.fixture
    def smtp_sink() -> Iterator[SmtpSink]:
        sink = SmtpSink().start()
        try:
            yield sink
        finally:
            sink.stop()

except ImportError:  # pragma: no cover - usable without pytest too
    pass
