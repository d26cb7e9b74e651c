"""The test process's chdb directory.

chdb embeds one ClickHouse per process, on one directory: every analytics test of a
pytest run (unit and integration) uses this temporary directory, each test or app
with a database of its own, and the directory is removed when the process exits.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
import uuid


@functools.cache
def chdb_path() -> str:
    path = tempfile.mkdtemp(prefix="analytics-chdb-")
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def new_database(prefix: str = "t") -> str:
    """A database name no other test uses."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"
