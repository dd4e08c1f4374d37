"""SLACK_CHANNEL_COLLECTIONS and SLACK_DM_COLLECTIONS, read strictly: what each conversation may read."""

from __future__ import annotations

import re

import pytest

from qa.slack_scopes import CHANNELS_VAR, DMS_VAR, BadSlackSetting, ChannelScopes, Unmapped, is_direct, read


def test_unset_reads_every_collection_everywhere_as_before() -> None:
    scopes = read(None, None)
    assert scopes.scope("C0ANY", direct=False) is None and scopes.scope("D0ANY", direct=True) is None


def test_channels_map_to_their_collections_and_others_are_unmapped() -> None:
    scopes = read(" C0HR=hr ; C0ENG = eng, default ;C0ALL=*;", "hr")
    assert scopes.scope("C0HR", direct=False) == frozenset({"hr"})
    assert scopes.scope("C0ENG", direct=False) == frozenset({"eng", "default"})
    assert scopes.scope("C0ALL", direct=False) is None  # `*`: every collection
    assert scopes.scope("C0OTHER", direct=False) == Unmapped(CHANNELS_VAR, "C0OTHER")
    assert scopes.scope("D0001", direct=True) == frozenset({"hr"})


def test_once_channels_are_mapped_dms_read_nothing_unless_mapped_too() -> None:
    """Anyone can DM the bot: a DM must not be the way around the channel mapping."""
    unmapped = read("C0HR=hr", None).scope("D0001", direct=True)
    assert isinstance(unmapped, Unmapped) and DMS_VAR in unmapped.message
    assert read("C0HR=hr", "*").scope("D0001", direct=True) is None


def test_dms_alone_can_be_mapped() -> None:
    scopes = read(None, "eng,default")
    assert scopes.scope("C0ANY", direct=False) is None
    assert scopes.scope("D0001", direct=True) == frozenset({"eng", "default"})


def test_the_reply_names_the_variable_and_the_channel() -> None:
    message = Unmapped(CHANNELS_VAR, "C0OTHER").message
    assert message.startswith("This channel has no documents.") and f"{CHANNELS_VAR}" in message
    assert "`C0OTHER=hr`" in message


@pytest.mark.parametrize(
    ("channels", "dms", "error"),
    [
        ("", None, f"{CHANNELS_VAR} is empty"),
        (" ; ", None, f"{CHANNELS_VAR} is empty"),
        ("C0HR", None, "has no '='"),
        ("general=hr", None, "'general' is not a channel id"),
        ("#hr=hr", None, "'#hr' is not a channel id"),
        ("D0001=hr", None, f"direct messages are opened by {DMS_VAR}"),
        ("C0HR=hr;C0HR=eng", None, "C0HR is mapped twice"),
        ("C0HR=", None, f"{CHANNELS_VAR} (C0HR) names no collection"),
        ("C0HR=HR", None, "collection 'HR' must be 1-64 of lowercase letters"),
        ("C0HR=hr,,eng", None, "collection '' must be"),
        ("C0HR=hr,*", None, "stands alone"),
        ("C0HR=hr", "", f"{DMS_VAR} names no collection"),
        (None, "hr eng", f"{DMS_VAR}: collection 'hr eng' must be"),
    ],
)
def test_bad_values_are_refused_naming_the_variable(channels: str | None, dms: str | None, error: str) -> None:
    with pytest.raises(BadSlackSetting, match=re.escape(error)):
        read(channels, dms)


def test_dms_are_told_apart_by_id_or_channel_type() -> None:
    assert is_direct("D0001") and is_direct("C0001", "im")
    assert not is_direct("C0001", "channel") and not is_direct("G0001")
    assert ChannelScopes().scope("G0PRIVATE", direct=False) is None
