"""Slack's settings, read from Slack's own variable names (``SLACK_…``), apart so that every Slack module can
take them without importing the listeners."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from qa.slack_scopes import BadSlackSetting


class SlackSettings(BaseSettings):
    """Slack's own variable names (no ``QA_`` prefix), as Slack's docs and tools spell them."""

    model_config = SettingsConfigDict(env_prefix="SLACK_", extra="ignore")

    signing_secret: SecretStr | None = Field(None, description="Verifies that requests come from Slack.")
    bot_token: SecretStr | None = Field(None, description="The bot's xoxb- token for Slack's Web API.")
    app_token: SecretStr | None = Field(None, description="An xapp- app-level token: Slack over Socket Mode.")
    api_url: str = Field("https://slack.com/api/", description="Slack Web API base URL (tests point it elsewhere).")
    channel_collections: str | None = Field(
        None, description="Channel ids to collections, `C0HR=hr;C0ENG=eng,default` (`*`: all); unset: all read all."
    )
    dm_collections: str | None = Field(
        None, description="Collections DMs read (`hr,eng` or `*`); unset: all, or none once channels are mapped."
    )
    command_visibility: Literal["in_channel", "ephemeral"] = Field(
        "ephemeral", description="Who sees /ask answers: the whole channel or only the asker."
    )
    max_citations: int = Field(3, ge=1, le=10, description="Citations shown under each answer.")
    socket_ping_interval: float = Field(
        10,
        ge=1,
        le=300,
        description="Socket Mode: seconds between pings; a silently dropped socket is replaced "
        "after about one interval.",
    )
    history_messages: int = Field(10, ge=0, le=100, description="Earlier thread messages passed as chat history.")

    @property
    def http(self) -> bool:
        """The Events API routes: both the signing secret and the bot token are set."""
        return _set(self.signing_secret) and _set(self.bot_token)

    @property
    def socket(self) -> bool:
        """Socket Mode: an app-level token is set (with the bot token, checked by ``check``)."""
        return _set(self.app_token)

    def check(self) -> None:
        """Refuse a Socket Mode configuration that cannot work, naming the variable (never the token)."""
        if not self.socket:
            return
        assert self.app_token is not None
        if not self.app_token.get_secret_value().startswith("xapp-"):
            kind = self.app_token.get_secret_value().partition("-")[0]
            raise BadSlackSetting(
                f"SLACK_APP_TOKEN must be an app-level token starting with xapp- (Basic Information > App-Level "
                f"Tokens, scope connections:write), not a {kind}- token"
            )
        if not _set(self.bot_token):
            raise BadSlackSetting("SLACK_APP_TOKEN is set but SLACK_BOT_TOKEN is not: Socket Mode needs both")


def _set(secret: SecretStr | None) -> bool:
    return bool(secret and secret.get_secret_value())
