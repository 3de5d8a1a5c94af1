"""Headers read the same whatever their shape: the plain ones most mail has (read from the
raw text, handlers/email/parse.py) and the ones that need the full RFC 5322 parser (quoted,
commented, encoded, folded) give the sender, name, ids and subject a person would read."""

from __future__ import annotations

import pytest

from qopi_bot_handlers.email.parse import parse_mail


def _mail(from_: str, subject: str = "Score validity", message_id: str = "<q1@riverbend.example.org>",
          extra: str = "") -> bytes:
    return (f"From: {from_}\r\nTo: help@qopi-bot.test\r\nSubject: {subject}\r\nMessage-ID: {message_id}\r\n"
            f"{extra}\r\nIs 74.99% enough to pass?\r\n").encode()


@pytest.mark.parametrize(("from_", "address", "name"), [
    ("Dana Whitfield <dana@riverbend.example.org>", "dana@riverbend.example.org", "Dana Whitfield"),
    ("dana@riverbend.example.org", "dana@riverbend.example.org", ""),
    ("Dana W. <dana@riverbend.example.org>", "dana@riverbend.example.org", "Dana W."),
    ('"Whitfield, Dana" <dana@riverbend.example.org>', "dana@riverbend.example.org", "Whitfield, Dana"),
    ("Dana (quality lead) <dana@riverbend.example.org>", "dana@riverbend.example.org", "Dana"),
    ("<dana@riverbend.example.org>", "dana@riverbend.example.org", ""),
    ("=?utf-8?q?Ren=C3=A9e_Dubois?= <renee@riverbend.example.org>", "renee@riverbend.example.org", "Renée Dubois"),
    ("Dana Whitfield\r\n <dana@riverbend.example.org>", "dana@riverbend.example.org", "Dana Whitfield"),
])
def test_sender_of_every_shape(from_: str, address: str, name: str) -> None:
    mail = parse_mail(_mail(from_))
    assert (mail.from_address, mail.from_name, mail.reply_address) == (address, name, address)


def test_ids_and_subject_plain_and_parsed() -> None:
    plain = parse_mail(_mail("dana@riverbend.example.org", subject="Re: [QOPI] score (Fall 2025)",
                             extra="In-Reply-To: <r1@qopi-bot.test>\r\nReferences: <q0@riverbend.example.org> <r1@qopi-bot.test>\r\n"))
    assert plain.subject == "Re: [QOPI] score (Fall 2025)"
    assert plain.message_id == "<q1@riverbend.example.org>"
    assert plain.thread_ids == ["<q0@riverbend.example.org>", "<r1@qopi-bot.test>"]
    encoded = parse_mail(_mail("dana@riverbend.example.org", subject="=?utf-8?q?Re=3A_validit=C3=A9?=",
                               message_id=" <q1@riverbend.example.org> (sent by client)",
                               extra="References: <q0@riverbend.example.org>\r\n\t<r1@qopi-bot.test>\r\n"))
    assert encoded.subject == "Re: validité"
    assert encoded.message_id == "<q1@riverbend.example.org>"
    assert encoded.references == ["<q0@riverbend.example.org>", "<r1@qopi-bot.test>"]
