"""Kong 3.x route matching (``router_flavor = traditional_compatible``, the default).

Paths are prefix matches on the normalised request path (``kong/tools/uri.lua``: only
percent-encoded unreserved characters are decoded, dot segments removed, slashes
merged). Among the routes that match, Kong picks the highest priority
(``kong/router/transform.lua``'s ``get_priority``): first the number of attributes a
route sets (methods, hosts, headers, paths…), then plain hosts, then the length of
the matched path. A route with several paths competes once per path. Equal
priorities keep the file's order (Kong breaks such ties by route id).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

#: Characters that keep (or get) their percent-encoding: RFC 3986's reserved set.
_RESERVED = frozenset("!*'();:@&=+$,/?%#[]")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
_NEEDS_ESCAPE = re.compile(r"[^!#$&'()*+,/:;=?@\[\]A-Za-z0-9\-_.~%]")


def normalize_path(raw: str, *, merge_slashes: bool = True) -> str:
    """Kong's ``normalize(uri, merge_slashes)``.

    ``%2e`` decodes to ``.`` first, so ``/a/%2e%2e/b`` is ``/b``; ``%2F`` stays encoded
    (a reserved character keeps its meaning, upper-cased).
    """
    if raw in ("", "/"):
        return raw
    if "%" in raw:
        raw = _PERCENT.sub(_decode_unreserved, raw)
    if "." not in raw and (not merge_slashes or "//" not in raw):
        return raw
    output: list[str] = []
    uri = raw
    while uri:
        if uri == "/.":
            uri = "/"
        elif uri == "/..":
            uri = "/"
            if output:
                output.pop()
        elif uri in (".", ".."):
            uri = ""
        elif uri.startswith("../"):
            uri = uri[3:]
        elif uri.startswith(("./", "/./")):
            uri = uri[2:]
        elif uri.startswith("/../"):
            uri = uri[3:]
            if output:
                output.pop()
        elif merge_slashes and uri.startswith("//"):
            uri = uri[1:]
        else:
            cut = uri.find("/", 1)
            if cut == -1:
                output.append(uri)
                uri = ""
            else:
                output.append(uri[:cut])
                uri = uri[cut:]
    return "".join(output)


def _decode_unreserved(match: re.Match[str]) -> str:
    char = chr(int(match.group(1), 16))
    return match.group(0).upper() if char in _RESERVED else char


def escape_path(path: str) -> str:
    """Kong's ``escape``: what the upstream request line carries.

    Paths here are byte strings decoded as latin-1 (one char per byte), as the
    request line arrived; each byte outside the safe set becomes ``%XX``.
    """
    if not _NEEDS_ESCAPE.search(path):
        return path
    return _NEEDS_ESCAPE.sub(lambda m: "".join(f"%{ord(c):02X}" for c in m.group(0)), path)


@dataclass(frozen=True)
class RouteMatcher:
    """The matching attributes of one route (``name`` identifies it)."""

    name: str
    paths: tuple[str, ...] = ()
    methods: frozenset[str] = frozenset()
    hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class RouteMatch:
    """The route a request matched, and which of its paths (None: it has none)."""

    route: RouteMatcher
    path: str | None


@dataclass(frozen=True)
class _Candidate:
    route: RouteMatcher
    path: str | None
    priority: tuple[int, int, int]
    order: int


class Router:
    """Finds the route of a request, as Kong's router does."""

    def __init__(self, routes: Sequence[RouteMatcher]) -> None:
        candidates: list[_Candidate] = []
        for order, route in enumerate(routes):
            for path in route.paths or (None,):
                candidates.append(_Candidate(route, path, _priority(route, path), order))
        # Highest priority first; equal priorities in file order.
        self._candidates = sorted(
            candidates, key=lambda c: (tuple(-p for p in c.priority), c.order)
        )

    def match(self, method: str, path: str, host: str | None = None) -> RouteMatch | None:
        """The route for ``method`` on the normalised ``path``, or None (Kong's 404)."""
        hostname = _hostname(host)
        for candidate in self._candidates:
            route = candidate.route
            if route.methods and method not in route.methods:
                continue
            if candidate.path is not None and not path.startswith(candidate.path):
                continue
            if route.hosts and not any(_host_matches(h, hostname) for h in route.hosts):
                continue
            return RouteMatch(route, candidate.path)
        return None


def upstream_path(service_path: str, request_path: str, matched: str | None, *, strip: bool) -> str:
    """The upstream request path (Kong's ``path_handling: v0``).

    ``strip_path`` removes the matched prefix; the rest is appended to the service's
    path as is (v0 concatenates: ``/s`` + ``req`` is ``/sreq``).
    """
    rest = request_path[len(matched) :] if strip and matched else request_path
    if not service_path:
        return rest if rest.startswith("/") else "/" + rest
    if service_path.endswith("/") and rest.startswith("/"):
        rest = rest[1:]
    return service_path + rest


def _priority(route: RouteMatcher, path: str | None) -> tuple[int, int, int]:
    weight = sum(1 for attribute in (route.methods, route.hosts, route.paths) if attribute)
    plain_hosts = int(bool(route.hosts) and not any("*" in h for h in route.hosts))
    return (weight, plain_hosts, len(path) if path else 0)


def _hostname(host: str | None) -> str:
    if not host:
        return ""
    host = host.lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if ":" in host else host


def _host_matches(pattern: str, hostname: str) -> bool:
    pattern = pattern.lower()
    if pattern.startswith("*."):
        return hostname.endswith(pattern[1:]) and len(hostname) > len(pattern) - 1
    if pattern.endswith(".*"):
        return hostname.startswith(pattern[:-1]) and len(hostname) > len(pattern) - 1
    return hostname == _hostname(pattern)
