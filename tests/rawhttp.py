"""A request whose path is sent byte for byte: httpx resolves ``..`` segments before sending, http.client does not."""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit


def raw_request(base_url: str, method: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    """(status, JSON body) of ``method path`` sent unchanged to the server at ``base_url``."""
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()
