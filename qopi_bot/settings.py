"""Every setting comes from the environment (contract.md section 3), read once, typed.

The fields live in SettingsFields, a plain pydantic model. `Settings` adds pydantic-settings'
reading of the environment and is what every process uses; it is built on first use (module
__getattr__), because importing pydantic-settings costs `qopi-bot ask` about a tenth of its
start-up. `ask` reads the same variables with from_environment(), the same way (names are the
aliases, case-insensitive; values validated by the same fields); tests/test_settings.py checks
that both give the same settings."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


def default_database_url() -> str:
    import platformdirs  # imported lazily: only needed when DATABASE_URL is unset

    data = Path(platformdirs.user_data_dir("qopi-bot", appauthor=False))
    data.mkdir(parents=True, exist_ok=True)
    return f"sqlite+aiosqlite:///{data / 'qopi-bot.sqlite3'}"


def _host_port(value: str, default_port: int) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host:
        return value, default_port
    return host.strip("[]"), int(port)


class SettingsFields(BaseModel):
    # validate_default as in pydantic-settings, so both ways of reading give the same values.
    model_config = ConfigDict(extra="ignore", validate_default=True, title="Settings")

    database_url: str = Field(default="", alias="DATABASE_URL")
    port: int = Field(default=3000, alias="PORT")
    slack_bot_token: str = Field(default="", alias="SLACK_BOT_TOKEN")
    slack_signing_secret: str = Field(default="", alias="SLACK_SIGNING_SECRET")
    slack_app_token: str = Field(default="", alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field(default="https://slack.com/api/", alias="SLACK_API_URL")
    staff_channel: str = Field(default="", alias="QOPI_STAFF_CHANNEL")
    staff_users: str = Field(default="", alias="QOPI_STAFF_USERS")
    help_address: str = Field(default="help@qopi-bot.local", alias="QOPI_HELP_ADDRESS")
    staff_email: str = Field(default="", alias="QOPI_STAFF_EMAIL")
    staff_addresses: str = Field(default="", alias="QOPI_STAFF_ADDRESSES")
    smtp_listen: str = Field(default="127.0.0.1:8025", alias="QOPI_SMTP_LISTEN")
    smtp_relay: str = Field(default="127.0.0.1:1025", alias="QOPI_SMTP_RELAY")
    smtp_starttls: bool = Field(default=False, alias="QOPI_SMTP_STARTTLS")
    smtp_username: str = Field(default="", alias="QOPI_SMTP_USERNAME")
    smtp_password: str = Field(default="", alias="QOPI_SMTP_PASSWORD")
    rounds_file: str = Field(default="", alias="QOPI_ROUNDS_FILE")
    knowledge_dir: str = Field(default="", alias="QOPI_KNOWLEDGE_DIR")
    log_format: Literal["console", "json"] = Field(default="console", alias="QOPI_LOG_FORMAT")
    reply_cap_per_hour: int = Field(default=20, alias="QOPI_REPLY_CAP_PER_HOUR")
    outbox_give_up_after_seconds: int = Field(default=86_400, alias="QOPI_OUTBOX_GIVE_UP_AFTER")
    outbox_max_backoff_seconds: float = Field(default=300.0, alias="QOPI_OUTBOX_MAX_BACKOFF")
    lease_seconds: int = Field(default=60, alias="QOPI_LEASE_SECONDS")
    poll_interval: float = Field(default=0.2, alias="QOPI_POLL_INTERVAL")
    # Second lock on staff email replies (contract section 8): also require the receiving
    # server's Authentication-Results to show DMARC/DKIM passing for the staff domain.
    staff_require_dmarc: bool = Field(default=False, alias="QOPI_STAFF_REQUIRE_DMARC")
    authserv_id: str = Field(default="", alias="QOPI_AUTHSERV_ID")
    # After an outage the web process reads what it missed from Slack, at most this far back.
    slack_catchup_hours: float = Field(default=24.0, alias="QOPI_SLACK_CATCHUP_HOURS")
    # How often web and worker processes look for a changed knowledge folder (contract section 7).
    knowledge_poll_seconds: float = Field(default=10.0, gt=0, le=60, alias="QOPI_KNOWLEDGE_POLL_SECONDS")
    # The web process's public base URL, for staff console sign-in links (contract section 9).
    public_url: str = Field(default="", alias="QOPI_PUBLIC_URL")
    worker_health: str = Field(default="", alias="QOPI_WORKER_HEALTH")  # host:port for the worker's GET /healthz
    # The hosted help mailbox (contract section 11): set QOPI_IMAP_HOST and the worker reads
    # it over IMAP instead of listening for SMTP deliveries. See docs/email.md.
    imap_host: str = Field(default="", alias="QOPI_IMAP_HOST")
    imap_port: int = Field(default=993, alias="QOPI_IMAP_PORT")
    imap_security: Literal["tls", "starttls", "none"] = Field(default="tls", alias="QOPI_IMAP_SECURITY")
    imap_user: str = Field(default="", alias="QOPI_IMAP_USER")
    imap_password: str = Field(default="", alias="QOPI_IMAP_PASSWORD")
    imap_oauth2_token: str = Field(default="", alias="QOPI_IMAP_OAUTH2_TOKEN")
    imap_oauth2_token_file: str = Field(default="", alias="QOPI_IMAP_OAUTH2_TOKEN_FILE")
    imap_folder: str = Field(default="INBOX", alias="QOPI_IMAP_FOLDER")
    imap_done_folder: str = Field(default="QOPI/Done", alias="QOPI_IMAP_DONE_FOLDER")
    imap_backfill: bool = Field(default=False, alias="QOPI_IMAP_BACKFILL")
    # RFC 2177: a client must re-IDLE at least every 29 minutes; 25 leaves room for slow links.
    imap_idle_seconds: float = Field(default=1500.0, gt=0, le=1740, alias="QOPI_IMAP_IDLE_SECONDS")
    imap_poll_seconds: float = Field(default=5.0, gt=0, alias="QOPI_IMAP_POLL_SECONDS")  # servers without IDLE
    # Reminders before a score expires (contract section 10): days before the last day, and
    # how often the web and worker processes look for due ones (at least hourly).
    reminder_days: str = Field(default="30,7", alias="QOPI_REMINDER_DAYS")
    reminder_check_seconds: float = Field(default=600.0, gt=0, le=3600, alias="QOPI_REMINDER_CHECK_SECONDS")

    @field_validator("log_format", "imap_security", mode="before")
    @classmethod
    def _lower(cls, v: str) -> str:
        return v.lower() if isinstance(v, str) else v

    @property
    def db_url(self) -> str:
        return self.database_url or default_database_url()

    @property
    def console_base_url(self) -> str:
        return (self.public_url or f"http://127.0.0.1:{self.port}").rstrip("/")

    @property
    def staff_user_ids(self) -> frozenset[str]:
        return frozenset(u.strip() for u in self.staff_users.split(",") if u.strip())

    @property
    def staff_email_addresses(self) -> frozenset[str]:
        found = {a.strip().lower() for a in self.staff_addresses.split(",") if a.strip()}
        if self.staff_email:
            found.add(self.staff_email.strip().lower())
        return frozenset(found)

    @property
    def reminder_lead_days(self) -> tuple[int, ...]:
        days = {int(d) for d in self.reminder_days.replace(" ", "").split(",") if d.isdigit() and 0 < int(d) <= 366}
        return tuple(sorted(days, reverse=True)) or (30, 7)

    @property
    def smtp_listen_host_port(self) -> tuple[str, int]:
        return _host_port(self.smtp_listen, 8025)

    @property
    def worker_health_host_port(self) -> tuple[str, int] | None:
        return _host_port(self.worker_health, 8026) if self.worker_health else None

    @property
    def smtp_relay_host_port(self) -> tuple[str, int]:
        return _host_port(self.smtp_relay, 1025)


@lru_cache(maxsize=1)
def _settings_class() -> type[Settings]:
    from pydantic_settings import BaseSettings, SettingsConfigDict

    class Settings(SettingsFields, BaseSettings):
        model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    Settings.__module__, Settings.__qualname__ = __name__, "Settings"
    globals()["Settings"] = Settings
    return Settings


if TYPE_CHECKING:
    from pydantic_settings import BaseSettings

    class Settings(SettingsFields, BaseSettings):
        pass
else:
    def __getattr__(name: str) -> Any:
        if name == "Settings":
            return _settings_class()
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return _settings_class()()


def from_environment() -> SettingsFields:
    """The settings as Settings() reads them, without importing pydantic-settings (for `ask`).
    Like pydantic-settings with case_sensitive=False: variable names are lowercased (the last of
    two names differing only in case wins, as there) and each field reads its alias."""
    env = {name.lower(): value for name, value in os.environ.items()}
    data = {field.alias: env[field.alias.lower()] for field in SettingsFields.model_fields.values()
            if field.alias and field.alias.lower() in env}
    return SettingsFields.model_validate(data)
