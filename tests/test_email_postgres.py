"""The email worker on PostgreSQL (the multi-process deployment): NUL bytes and odd charsets
store fine. (An unmigrated database: tests/test_unmigrated_database.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from qopi_bot.migrate import upgrade
from qopi_bot.store import Store
from tests.email_support import CORPUS, manifest, norm, practice_messages, running_worker, send, settings_for, settle
from tests.fakes.pg_fixture import postgres_server, postgres_url  # noqa: F401  (fixtures)
from tests.fakes.smtp_sink import SmtpSink, smtp_sink  # noqa: F401  (fixture)

pytestmark = pytest.mark.postgres
FILES = ["44_malformed_nul_byte.eml", "13_windows1252_base64.eml", "18_attachment_patient_chart.eml",
         "20_subset_downtown_site.eml", "34_bounce_dsn_multipart_report.eml"]


async def test_worker_on_postgres(tmp_path: Path, smtp_sink: SmtpSink, postgres_url: str) -> None:  # noqa: F811
    store = Store.from_url(postgres_url)
    await upgrade(store)
    await store.close()
    entries = {e["file"]: e for e in manifest()}
    settings = settings_for(tmp_path / "unused.sqlite3", smtp_sink, DATABASE_URL=postgres_url)
    async with running_worker(settings) as worker:
        for name in FILES:
            await send(worker, (CORPUS / name).read_bytes(), entries[name]["envelope_from"])
        await settle(worker.store, timeout=20)
        texts = [norm(t) for _, _, t in await practice_messages(worker.store)]
        for name in FILES[:4]:
            assert any(norm(entries[name]["question_contains"]) in t for t in texts), name
        # 4 answers + 1 staff case mail; the bounce is not answered.
        assert len(smtp_sink.messages) == 5
