"""E-mail (.eml) through the standard library's email package: the headers a reader asks about, then the body
(plain text preferred, HTML reduced to its text), then the names of the attachments."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser
from pathlib import Path

from qa.errors import BadDocument
from qa.extract.base import Extracted, Options, clean, squeeze
from qa.extract.text import html_to_text

HEADERS = ("From", "To", "Cc", "Date", "Subject")


def read_eml(path: Path, options: Options) -> Extracted:
    message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    if not any(message.get(name) for name in ("From", "To", "Subject", "Date", "Message-ID")):
        raise BadDocument("not an e-mail message (no From, To, Subject or Date header)")
    lines = [f"{name}: {squeeze(str(message[name]))}" for name in HEADERS if message.get(name)]
    body = message.get_body(preferencelist=("plain", "html"))
    if body is not None:
        content = body.get_content()
        text = html_to_text(content)[0] if body.get_content_type() == "text/html" else clean(content).strip()
        lines.extend(["", text])
    attachments = [part.get_filename() for part in message.iter_attachments() if part.get_filename()]
    if attachments:
        lines.extend(["", "Attachments: " + ", ".join(attachments)])
    subject = squeeze(str(message.get("Subject", "")))
    return Extracted("\n".join(lines).strip(), subject or None)
