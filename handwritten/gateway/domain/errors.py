"""Responses the gateway writes itself, byte-compatible with Kong 3.8's.

Two kinds, as in Kong:

- ``kong.response.error(status, message)`` (no route, rate limit, upstream errors):
  Kong's error template, content-negotiated on ``Accept``, with the request id;
- ``kong.response.exit(status, table)`` (jwt, pre-function): the table as compact JSON.

Texts come from Kong 3.8.1: ``kong/pdk/response.lua``, ``kong/tools/http.lua``,
``kong/error_handlers.lua``, ``kong/runloop/handler.lua``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

JSON_TYPE = "application/json; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"
PLAIN_TYPE = "text/plain; charset=utf-8"
XML_TYPE = "application/xml; charset=utf-8"

NO_ROUTE = "no Route matched with those values"
RATE_LIMITED = "API rate limit exceeded"
UNAUTHORIZED = "Unauthorized"

#: Kong's default messages by status (``HTTP_ERROR_MESSAGES`` of the PDK).
DEFAULT_MESSAGES: Mapping[int, str] = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    408: "Request timeout",
    413: "Payload too large",
    429: "Too many requests",
    500: "An unexpected error occurred",
    502: "An invalid response was received from the upstream server",
    503: "The upstream server is currently unavailable",
    504: "The upstream server is timing out",
}

_TEMPLATES: Mapping[str, str] = {
    JSON_TYPE: '{\n  "message":"%s",\n  "request_id":"%s"\n}',
    HTML_TYPE: (
        '<!doctype html>\n<html>\n  <head>\n    <meta charset="utf-8">\n'
        "    <title>Error</title>\n  </head>\n  <body>\n    <h1>Error</h1>\n"
        "    <p>%s.</p>\n    <p>request_id: %s</p>\n  </body>\n</html>\n"
    ),
    PLAIN_TYPE: "%s\nrequest_id: %s\n",
    XML_TYPE: (
        '<?xml version="1.0" encoding="UTF-8"?>\n<error>\n  <message>%s</message>\n'
        "  <requestid>%s</requestid>\n</error>\n"
    ),
}

#: Media types Kong negotiates (``MIME_TYPES`` of ``kong/tools/http.lua``); any other
#: type, and ``*/*``, gets JSON.
_BY_MEDIA_TYPE: Mapping[str, str] = {
    "application/json": JSON_TYPE,
    "text/html": HTML_TYPE,
    "text/plain": PLAIN_TYPE,
    "application/xml": XML_TYPE,
}
_BY_MAIN_TYPE: Mapping[str, str] = {"application": JSON_TYPE, "text": PLAIN_TYPE}
_ACCEPT_ITEM = re.compile(
    r"((?:[a-z0-9][a-z0-9!#$&^_+.-]+|\*)/(?:[a-z0-9][a-z0-9!#$&^_+.-]+|\*))(.*)", re.IGNORECASE
)
_QUALITY = re.compile(r";\s*q\s*=\s*(1(?:\.0{0,3})?|0(?:\.\d{0,3})?)\s*(?:;|$)", re.IGNORECASE)


@dataclass(frozen=True)
class GatewayResponse:
    """A response written by the gateway itself (it never reached the upstream)."""

    status: int
    body: bytes
    content_type: str
    headers: tuple[tuple[str, str], ...] = field(default=())


def response_type(accept: str | None) -> str:
    """The content type of an error for this ``Accept``: Kong's pick of the value with
    the highest quality (the first among equals)."""
    best, best_quality = JSON_TYPE, 0.0
    for item in (accept or "").split(","):
        match = _ACCEPT_ITEM.match(item.strip())
        if not match:
            continue
        quality_match = _QUALITY.search(match.group(2))
        quality = float(quality_match.group(1)) if quality_match else 1.0
        if quality > best_quality:
            best, best_quality = _mime_type(match.group(1)), quality
    return best


def _mime_type(media_type: str) -> str:
    main, _, sub = media_type.partition("/")
    if sub == "*":
        return JSON_TYPE if main == "*" else _BY_MAIN_TYPE.get(main, JSON_TYPE)
    return _BY_MEDIA_TYPE.get(media_type, JSON_TYPE)


def kong_error(
    status: int,
    message: str | None,
    *,
    request_id: str,
    accept: str | None,
    headers: tuple[tuple[str, str], ...] = (),
) -> GatewayResponse:
    """``kong.response.error(status, message)``: the template with the request id."""
    content_type = response_type(accept)
    text = message if message is not None else DEFAULT_MESSAGES.get(status, "")
    body = _TEMPLATES[content_type] % (text, request_id)
    return GatewayResponse(status, body.encode(), content_type, headers)


def cjson(body: Mapping[str, Any]) -> bytes:
    """JSON as lua-cjson writes it: compact, and ``/`` escaped."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).replace("/", "\\/").encode()


def kong_exit(
    status: int, body: Mapping[str, Any], headers: tuple[tuple[str, str], ...] = ()
) -> GatewayResponse:
    """``kong.response.exit(status, table, headers)``: the table as JSON."""
    return GatewayResponse(status, cjson(body), JSON_TYPE, headers)
