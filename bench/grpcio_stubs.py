"""grpc.aio stubs of ``specs/proto/inventory/v1`` for the gRPC benchmark (not committed).

The platform generates betterproto2 + grpclib code; the comparison with grpc.aio
needs protoc's classic ``*_pb2`` / ``*_pb2_grpc`` modules of the same proto. They
are generated at bench time into ``.local/bench/grpcio`` under a package of their
own (``mc_bench_grpcio``), so nothing can shadow or be shadowed by the project's
modules; the wire names (``/inventory.v1.InventoryService/…``) are unchanged.
"""

from __future__ import annotations

import importlib
import shutil
import sys
from pathlib import Path
from types import ModuleType

from bench.stack import REPO_ROOT, SCRATCH_DIR

PACKAGE = "mc_bench_grpcio"
STUBS_DIR = SCRATCH_DIR / "grpcio"
PROTO = REPO_ROOT / "specs/proto/inventory/v1/inventory.proto"


def generate(target: Path = STUBS_DIR) -> Path:
    """Run protoc (grpcio-tools) on a copy of the inventory proto; the stubs' root."""
    from grpc_tools import protoc

    source = target / "proto" / PACKAGE / "inventory" / "v1"
    if target.exists():
        shutil.rmtree(target)
    source.mkdir(parents=True)
    shutil.copy(PROTO, source / PROTO.name)
    well_known = Path(protoc.__file__).resolve().parent / "_proto"
    code = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{target / 'proto'}",
            f"-I{well_known}",
            f"--python_out={target}",
            f"--grpc_python_out={target}",
            str(source / PROTO.name),
        ]
    )
    if code != 0:
        raise RuntimeError(f"protoc failed with exit code {code}")
    for folder in (
        target / PACKAGE,
        target / PACKAGE / "inventory",
        target / PACKAGE / "inventory" / "v1",
    ):
        (folder / "__init__.py").touch()
    return target


def load(target: Path = STUBS_DIR) -> tuple[ModuleType, ModuleType]:
    """The ``inventory_pb2`` and ``inventory_pb2_grpc`` modules (generate first)."""
    if str(target) not in sys.path:
        sys.path.insert(0, str(target))
    messages = importlib.import_module(f"{PACKAGE}.inventory.v1.inventory_pb2")
    services = importlib.import_module(f"{PACKAGE}.inventory.v1.inventory_pb2_grpc")
    return messages, services
