"""Which collections a Slack conversation may read: ``SLACK_CHANNEL_COLLECTIONS`` and ``SLACK_DM_COLLECTIONS``.

Read once, strictly, at start-up: a typo would otherwise open a channel to the wrong documents, or silently to
none. A conversation no variable opens is ``Unmapped``: the bot says so and never answers from elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from qa import collections
from qa.collections import Scope
from qa.errors import QAError

CHANNELS_VAR = "SLACK_CHANNEL_COLLECTIONS"
DMS_VAR = "SLACK_DM_COLLECTIONS"
ALL = "*"
CHANNEL_ID = re.compile(r"[CG][A-Z0-9]+")  # public (C) and private or group (G) conversations; DMs are D
CHANNELS_EXAMPLE = "C0123HR=hr;C0456ENG=eng,default"


class BadSlackSetting(QAError):
    """A Slack variable that cannot be read: the service refuses to start, naming the variable."""


@dataclass(frozen=True)
class Unmapped:
    """A conversation that no variable gives documents to; ``variable`` is the one an admin sets."""

    variable: str
    channel: str

    @property
    def message(self) -> str:
        if self.variable == DMS_VAR:
            return f"Direct messages have no documents here. An admin can open some with {DMS_VAR}, e.g. `hr,eng`."
        return (
            f"This channel has no documents. An admin can open some to it with {CHANNELS_VAR}, "
            f"e.g. `{self.channel}=hr`."
        )


@dataclass(frozen=True)
class ChannelScopes:
    """``channels``: channel id -> scope, or None when every channel reads every collection; ``dms`` alike."""

    channels: Mapping[str, Scope] | None = None
    dms: Scope | Unmapped = None

    def scope(self, channel: str, *, direct: bool) -> Scope | Unmapped:
        """The collections a question asked in ``channel`` may be answered from (``direct``: a DM)."""
        if direct:
            return Unmapped(DMS_VAR, channel) if isinstance(self.dms, Unmapped) else self.dms
        if self.channels is None:
            return None
        if channel in self.channels:
            return self.channels[channel]
        return Unmapped(CHANNELS_VAR, channel)


def is_direct(channel: str, channel_type: str | None = None) -> bool:
    """Slack names DMs ``D…``; message events also say ``channel_type: im`` (slash commands do not)."""
    return channel_type == "im" or channel.startswith("D")


def read(channels: str | None, dms: str | None) -> ChannelScopes:
    """Both variables' values (None: unset). Once channels are mapped, DMs read nothing unless mapped too:
    anyone in the workspace can DM the bot, so a DM must not become the way around the channel mapping."""
    mapping = None if channels is None else parse_channels(channels)
    if dms is not None:
        direct: Scope | Unmapped = parse_collections(dms, DMS_VAR)
    else:
        direct = None if mapping is None else Unmapped(DMS_VAR, "")
    return ChannelScopes(mapping, direct)


def parse_channels(value: str) -> dict[str, Scope]:
    """``C0HR=hr;C0ENG=eng,default;C0ALL=*``: channel ids to collections, ``;`` between channels."""
    entries = [entry.strip() for entry in value.split(";") if entry.strip()]
    if not entries:
        raise BadSlackSetting(
            f"{CHANNELS_VAR} is empty: unset it (every channel reads every collection) or map channel ids to "
            f"collections, e.g. {CHANNELS_VAR}={CHANNELS_EXAMPLE!r}"
        )
    mapping: dict[str, Scope] = {}
    for entry in entries:
        channel, sep, names = (part.strip() for part in entry.partition("="))
        if not sep:
            raise BadSlackSetting(f"{CHANNELS_VAR}: {entry!r} has no '=': write CHANNEL_ID=COLLECTION[,COLLECTION]")
        if not CHANNEL_ID.fullmatch(channel):
            hint = f"; direct messages are opened by {DMS_VAR}" if channel[:1] == "D" else ""
            raise BadSlackSetting(
                f"{CHANNELS_VAR}: {channel!r} is not a channel id; use the id from the channel's details "
                f"(like C0123ABCD), not its name{hint}"
            )
        if channel in mapping:
            raise BadSlackSetting(f"{CHANNELS_VAR}: channel {channel} is mapped twice")
        mapping[channel] = parse_collections(names, CHANNELS_VAR, channel)
    return mapping


def parse_collections(value: str, variable: str, channel: str | None = None) -> Scope:
    """``hr,eng`` -> those collections; ``*`` -> every collection (None)."""
    where = f"{variable} ({channel})" if channel else variable
    names = [name.strip() for name in value.split(",")]
    if names == [ALL]:
        return None
    if not any(names):
        raise BadSlackSetting(f"{where} names no collection: list some (hr,eng) or write {ALL} for all")
    if ALL in names:
        raise BadSlackSetting(f"{where}: {ALL} means every collection and stands alone, not beside names")
    try:
        return frozenset(collections.check(name) for name in names)
    except collections.BadCollection as exc:
        raise BadSlackSetting(f"{where}: {exc}") from None
