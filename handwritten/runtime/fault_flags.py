"""Fault flags as data: what a flag is, how it is validated and which flags apply.

Pure (no I/O): the switchboard (``faults.py``) and the Redis store (``fault_store.py``)
build on it. See ``faults.py`` for what fault points and flags are.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, cast, get_args

from generated.sagas.fault_points import FAULT_POINTS
from generated.sagas.types import FaultMode, FaultPoint

MODES: tuple[FaultMode, ...] = get_args(FaultMode)
#: The match key every participant knows: the correlation id the saga inherited.
CORRELATION_ID = "correlationId"
DEFAULT_TTL_SECONDS = 600
MAX_TTL_SECONDS = 86_400
MAX_TIMES = 1000

Source = Literal["api", "env"]


class FaultFlagError(ValueError):
    """A flag that cannot be set; ``problems`` are ``(field, message)`` pairs."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(f"{name}: {message}" for name, message in self.problems))


def match_key(match: Mapping[str, str]) -> str:
    """The id of a flag among its point's flags: its match, canonical (``*`` if none)."""
    return "&".join(f"{key}={value}" for key, value in sorted(match.items())) or "*"


@dataclass(frozen=True)
class FaultFlag:
    """One switched-on mode at one point, possibly scoped, limited and expiring."""

    point: str
    mode: FaultMode
    match: tuple[tuple[str, str], ...] = ()
    times: int | None = None
    #: Epoch seconds; ``None`` for a flag from MC_FAULTS (lives as long as the process).
    expires_at: float | None = None
    source: Source = "api"

    @property
    def key(self) -> str:
        return match_key(dict(self.match))

    def matches(self, subject: Mapping[str, str]) -> bool:
        """Whether a call described by ``subject`` is in this flag's scope."""
        return all(subject.get(key) == value for key, value in self.match)

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def to_json(self) -> str:
        return json.dumps(
            {
                "point": self.point,
                "mode": self.mode,
                "match": dict(self.match),
                "times": self.times,
                "expiresAt": self.expires_at,
            },
            sort_keys=True,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> FaultFlag:
        data = json.loads(text)
        mode = data["mode"]
        if mode not in MODES:
            raise ValueError(f"unknown fault mode {mode!r}")
        return cls(
            point=str(data["point"]),
            mode=cast(FaultMode, mode),
            match=tuple(sorted((str(k), str(v)) for k, v in dict(data["match"]).items())),
            times=None if data.get("times") is None else int(data["times"]),
            expires_at=None if data.get("expiresAt") is None else float(data["expiresAt"]),
        )


def new_flag(
    points: Mapping[str, FaultPoint],
    point: str,
    mode: str,
    match: Mapping[str, str] | None = None,
    *,
    times: int | None = None,
    ttl_seconds: int | None = DEFAULT_TTL_SECONDS,
    now: float,
    source: Source = "api",
) -> FaultFlag:
    """A validated flag; ``FaultFlagError`` names every problem (unknown point with the
    valid ones, a mode or match key the point does not offer, bad bounds)."""
    problems: list[tuple[str, str]] = []
    match = dict(match or {})
    fault_point = points.get(point)
    if fault_point is None:
        valid = ", ".join(sorted(points)) or "none"
        problems.append(("point", f"unknown fault point {point!r}; valid points: {valid}"))
    else:
        if mode not in fault_point.modes:
            allowed = ", ".join(fault_point.modes)
            problems.append(("mode", f"{point} offers the modes {allowed}, not {mode!r}"))
        unknown = sorted(set(match) - set(fault_point.match_keys))
        if unknown:
            keys = ", ".join(fault_point.match_keys)
            problems.append(
                ("match", f"{point} can match on {keys} only, not {', '.join(unknown)}")
            )
    if fault_point is None and mode not in MODES:
        problems.append(("mode", f"unknown fault mode {mode!r}; modes: {', '.join(MODES)}"))
    problems.extend(
        (f"match.{key}", "must not be empty") for key, value in match.items() if not value
    )
    if times is not None and not 1 <= times <= MAX_TIMES:
        problems.append(("times", f"must be between 1 and {MAX_TIMES}"))
    if ttl_seconds is not None and not 1 <= ttl_seconds <= MAX_TTL_SECONDS:
        problems.append(("ttlSeconds", f"must be between 1 and {MAX_TTL_SECONDS}"))
    if problems:
        raise FaultFlagError(problems)
    return FaultFlag(
        point=point,
        mode=cast(FaultMode, mode),
        match=tuple(sorted(match.items())),
        times=times,
        expires_at=None if ttl_seconds is None else now + ttl_seconds,
        source=source,
    )


def parse_env_flags(
    text: str, points: Mapping[str, FaultPoint] = FAULT_POINTS
) -> tuple[FaultFlag, ...]:
    """``MC_FAULTS``: ``"<point>=<mode>,<point>=<mode>"`` (blank: none); every call, no expiry.

    A typo must not silently do nothing: an unknown point or mode, a part without
    ``=`` or a point given twice raise ``FaultFlagError``.
    """
    flags: list[FaultFlag] = []
    problems: list[tuple[str, str]] = []
    seen: set[str] = set()
    for index, part in enumerate(p.strip() for p in text.split(",")):
        if not part:
            continue
        point, separator, mode = (s.strip() for s in part.partition("="))
        where = f"MC_FAULTS[{index}]"
        if not separator or not point or not mode:
            problems.append((where, f"{part!r} is not <point>=<mode>"))
            continue
        if point in seen:
            problems.append((where, f"{point} is given twice"))
            continue
        seen.add(point)
        try:
            flags.append(new_flag(points, point, mode, ttl_seconds=None, now=0.0, source="env"))
        except FaultFlagError as exc:
            problems.extend((f"{where}.{name}", message) for name, message in exc.problems)
    if problems:
        raise FaultFlagError(problems)
    return tuple(flags)


def applicable(
    flags: Iterable[FaultFlag], subject: Mapping[str, str], now: float
) -> list[FaultFlag]:
    """The live flags in scope of a call, most specific first (more match keys), a flag
    from the endpoint before one from MC_FAULTS, then by match."""
    live = [flag for flag in flags if not flag.expired(now) and flag.matches(subject)]
    return sorted(live, key=lambda flag: (-len(flag.match), flag.source != "api", flag.key))
