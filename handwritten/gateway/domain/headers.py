"""HTTP header lists as a proxy sees them: ordered, repeatable, case-insensitive."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

#: RFC 9110 §7.6.1 connection-specific headers: never forwarded by a proxy. ``Expect`` is
#: answered by our own server (100-continue) and ``Host`` is the upstream's.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


class HeaderList:
    """Ordered ``(name, value)`` pairs; lookups ignore the name's case.

    Mirrors the PDK calls the plugins use: ``set`` replaces every value of a name
    (``kong.service.request.set_header``), ``remove`` drops them all (``clear_header``).
    """

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = list(items)

    @classmethod
    def from_raw(cls, raw: Iterable[tuple[bytes, bytes]]) -> HeaderList:
        """From ASGI's ``[(name, value), ...]`` byte pairs (latin-1, as HTTP/1.1)."""
        return cls((name.decode("latin-1"), value.decode("latin-1")) for name, value in raw)

    def raw(self) -> list[tuple[bytes, bytes]]:
        """As ASGI byte pairs, names lower-cased."""
        return [
            (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in self._items
        ]

    def get(self, name: str) -> str | None:
        """The first value of ``name``, or None."""
        wanted = name.lower()
        return next((value for key, value in self._items if key.lower() == wanted), None)

    def get_all(self, name: str) -> list[str]:
        wanted = name.lower()
        return [value for key, value in self._items if key.lower() == wanted]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def set(self, name: str, value: str) -> None:
        """Replace every value of ``name`` with ``value`` (appended at the end)."""
        self.remove(name)
        self._items.append((name, value))

    def add(self, name: str, value: str) -> None:
        self._items.append((name, value))

    def remove(self, *names: str) -> None:
        wanted = {name.lower() for name in names}
        self._items = [(key, value) for key, value in self._items if key.lower() not in wanted]

    def copy(self) -> HeaderList:
        return HeaderList(self._items)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"HeaderList({self._items!r})"


def connection_listed(headers: HeaderList) -> set[str]:
    """Header names a ``Connection`` header declares hop-by-hop (lower-cased)."""
    return {
        token.strip().lower()
        for value in headers.get_all("connection")
        for token in value.split(",")
        if token.strip()
    }


def strip_hop_by_hop(headers: HeaderList) -> HeaderList:
    """A copy without hop-by-hop headers (also those the Connection header names)."""
    dropped = HOP_BY_HOP | connection_listed(headers)
    return HeaderList((name, value) for name, value in headers if name.lower() not in dropped)


def upstream_request_headers(
    client: HeaderList,
    *,
    client_ip: str,
    scheme: str,
    server_port: int,
    original_path: str,
    upstream_host: str | None,
) -> HeaderList:
    """What the upstream receives, before plugins change it.

    As Kong without ``trusted_ips``: the client's ``X-Forwarded-For`` is extended with
    the peer address, while ``X-Forwarded-Proto/Host/Port/Path`` and ``X-Real-IP`` come
    from this connection (a client cannot spoof them). ``upstream_host`` replaces
    ``Host`` (``preserve_host: false``); None keeps the client's.
    """
    headers = strip_hop_by_hop(client)
    host = client.get("host") or ""
    headers.remove("expect")
    if upstream_host is not None:
        headers.remove("host")
    forwarded_for = ", ".join([*client.get_all("x-forwarded-for"), client_ip])
    headers.set("X-Real-IP", client_ip)
    headers.set("X-Forwarded-For", forwarded_for)
    headers.set("X-Forwarded-Proto", scheme)
    headers.set("X-Forwarded-Host", _without_port(host))
    headers.set("X-Forwarded-Port", str(server_port))
    headers.set("X-Forwarded-Path", original_path)
    headers.remove("x-forwarded-prefix")
    if upstream_host is not None:
        headers.set("Host", upstream_host)
    return headers


def _without_port(host: str) -> str:
    if host.startswith("["):  # IPv6 literal
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if ":" in host else host
