"""Two ways to run the same ClickHouse SQL: chdb in-process, or a server through
clickhouse-connect.

Both implement ``ClickHouse``: ``query`` returns the rows of a ``JSONCompact`` result
(decimals parsed as ``Decimal``, never ``float``), ``command`` runs a statement,
``insert`` sends ``JSONEachRow`` data to an ``INSERT … FORMAT JSONEachRow`` statement.
Query parameters use ClickHouse's own ``{name:Type}`` placeholders, bound by the
engine, never pasted into the SQL.

chdb embeds one ClickHouse per process, on one directory: every ``ChdbClickHouse`` of
a process shares that engine (one session, one worker thread, one asyncio lock), so
statements run one at a time, off the event loop, whatever the number of callers.
clickhouse-connect's client is thread-safe without a session id, so its calls simply
run in worker threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import threading
import urllib.parse
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

# Each engine is imported only when used (both are heavy): a server deployment never
# loads chdb, the embedded one never loads clickhouse-connect.
if TYPE_CHECKING:
    from chdb.session import Session
    from clickhouse_connect.driver.client import Client

#: A query parameter: a scalar, or a list for ``Array(...)`` placeholders.
Param = str | int | Decimal | dt.date | Sequence[str]
Params = Mapping[str, Param]
Row = list[Any]


class ClickHouseError(RuntimeError):
    """A statement failed, or the engine could not be reached or opened."""


class ClickHouse(Protocol):
    """Runs ClickHouse SQL; see the module docstring."""

    async def query(self, sql: str, params: Params | None = None) -> list[Row]: ...

    async def command(self, sql: str, params: Params | None = None) -> None: ...

    async def insert(self, statement: str, data: bytes) -> None:
        """``statement`` is ``INSERT INTO … FORMAT JSONEachRow``; ``data`` its rows."""
        ...

    async def close(self) -> None: ...


def parse_json_compact(body: bytes) -> list[Row]:
    """The ``data`` rows of a ``JSONCompact`` result (empty body: no rows)."""
    if not body.strip():
        return []
    rows: list[Row] = json.loads(body, parse_float=Decimal)["data"]
    return rows


# ------------------------------------------------------------------- chdb engine


def _escape(text: str) -> str:
    """A parameter value in ClickHouse's escaped text format."""
    for plain, escaped in (("\\", "\\\\"), ("'", "\\'"), ("\t", "\\t"), ("\n", "\\n")):
        text = text.replace(plain, escaped)
    return text


def chdb_param(value: Param) -> str:
    """A parameter as chdb takes it: text, like the HTTP interface's ``param_*``."""
    if isinstance(value, str):
        return _escape(value)
    if isinstance(value, dt.date | int | Decimal):
        return value.isoformat() if isinstance(value, dt.date) else str(value)
    return "[" + ", ".join(f"'{_escape(item)}'" for item in value) + "]"


@dataclass
class _Engine:
    """The process's chdb engine: one session, used from one thread at a time."""

    path: str
    session: Session
    executor: ThreadPoolExecutor
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


_ENGINES_LOCK = threading.Lock()
_ENGINE: _Engine | None = None


def _open_engine(path: str) -> _Engine:
    """The engine on ``path``, opened on first use (chdb allows one path per process)."""
    global _ENGINE
    with _ENGINES_LOCK:
        if _ENGINE is not None:
            if _ENGINE.path != path:
                raise ClickHouseError(
                    f"chdb is already open on {_ENGINE.path} in this process; "
                    f"it cannot also open {path}"
                )
            _ENGINE.users += 1
            return _ENGINE
        Path(path).mkdir(parents=True, exist_ok=True)
        from chdb.session import Session

        try:
            session = Session(path)  # type: ignore[no-untyped-call]  # chdb ships no hints here
        except Exception as exc:
            raise ClickHouseError(
                f"cannot open the embedded ClickHouse in {path}: is another process "
                f"(the analytics service, or a rebuild) using it? ({exc})"
            ) from exc
        # One worker: chdb calls never overlap, even when an awaiting task is cancelled
        # and the lock is released while its statement still runs.
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chdb")
        _ENGINE = _Engine(path=path, session=session, executor=executor, users=1)
        return _ENGINE


def _release_engine(engine: _Engine) -> None:
    global _ENGINE
    with _ENGINES_LOCK:
        engine.users -= 1
        if engine.users > 0:
            return
        _ENGINE = None
    engine.executor.submit(engine.session.close).result()
    engine.executor.shutdown(wait=True)


class ChdbClickHouse:
    """ClickHouse in-process (chdb), persisted in a directory."""

    def __init__(self, engine: _Engine) -> None:
        self._engine = engine
        self._closed = False

    @classmethod
    async def open(cls, path: str | Path) -> ChdbClickHouse:
        """Open (or share) the process's engine on ``path``; opening takes a second."""
        engine = await asyncio.to_thread(lambda: _open_engine(str(Path(path).resolve())))
        return cls(engine)

    @property
    def path(self) -> str:
        return self._engine.path

    async def _run(self, sql: str, fmt: str, params: Params | None) -> bytes:
        if self._closed:
            raise ClickHouseError("the chdb connection is closed")
        bound = {name: chdb_param(value) for name, value in (params or {}).items()}
        session = self._engine.session

        def run() -> bytes:
            query = session.query
            result = query(sql, fmt, params=bound) if bound else query(sql, fmt)  # type: ignore[no-untyped-call]
            data: bytes = result.bytes() if result is not None else b""
            return data

        async with self._engine.lock:
            loop = asyncio.get_running_loop()
            try:
                return await loop.run_in_executor(self._engine.executor, run)
            except ClickHouseError:
                raise
            except Exception as exc:  # chdb raises its own RuntimeError subclasses
                raise ClickHouseError(str(exc)) from exc

    async def query(self, sql: str, params: Params | None = None) -> list[Row]:
        return parse_json_compact(await self._run(sql, "JSONCompact", params))

    async def command(self, sql: str, params: Params | None = None) -> None:
        await self._run(sql, "CSV", params)

    async def insert(self, statement: str, data: bytes) -> None:
        # chdb takes inline data after FORMAT: it is parsed as JSONEachRow, not as SQL.
        await self._run(f"{statement}\n{data.decode()}", "CSV", None)

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await asyncio.to_thread(_release_engine, self._engine)


# ------------------------------------------------------------- clickhouse-connect


def _client_options(url: str) -> dict[str, Any]:
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme.startswith("http"):
        # No session: concurrent queries on one session are refused by the server.
        return {"autogenerate_session_id": False}
    return {}


class ClickHouseConnect:
    """A ClickHouse server (``http(s)://user:password@host:8123``) through
    clickhouse-connect; also takes ``chdb:///path`` (its embedded backend, used to
    test this adapter without a server)."""

    def __init__(self, client: Client, errors: type[Exception]) -> None:
        self._client = client
        self._errors = errors  # clickhouse-connect's base exception

    @classmethod
    async def connect(cls, url: str) -> ClickHouseConnect:
        import clickhouse_connect
        from clickhouse_connect.driver.exceptions import ClickHouseError as DriverError

        try:
            client = await asyncio.to_thread(
                clickhouse_connect.get_client, dsn=url, **_client_options(url)
            )
        except DriverError as exc:
            raise ClickHouseError(f"cannot connect to ClickHouse: {exc}") from exc
        return cls(client, DriverError)

    async def query(self, sql: str, params: Params | None = None) -> list[Row]:
        try:
            body = await asyncio.to_thread(
                self._client.raw_query, sql, parameters=dict(params or {}), fmt="JSONCompact"
            )
        except self._errors as exc:
            raise ClickHouseError(str(exc)) from exc
        return parse_json_compact(body)

    async def command(self, sql: str, params: Params | None = None) -> None:
        try:
            await asyncio.to_thread(self._client.command, sql, parameters=dict(params or {}))
        except self._errors as exc:
            raise ClickHouseError(str(exc)) from exc

    async def insert(self, statement: str, data: bytes) -> None:
        try:
            await asyncio.to_thread(self._client.command, statement, data=data)
        except self._errors as exc:
            raise ClickHouseError(str(exc)) from exc

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self._client.close)


async def open_clickhouse(url: str, chdb_path: str | Path) -> ClickHouse:
    """A server through clickhouse-connect when ``url`` is set, else embedded chdb."""
    if url:
        return await ClickHouseConnect.connect(url)
    return await ChdbClickHouse.open(chdb_path)
