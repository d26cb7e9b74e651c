"""betterproto2 message classes and grpclib stubs, compiled by protoc."""

from __future__ import annotations

import tempfile
from pathlib import Path

from generator.emit import Output, header
from generator.protos import run_protoc
from generator.specset import SpecSet

GRPC_PACKAGE = "generated/grpc"
BETTERPROTO_OPTIONS = "client_generation=async,server_generation=async,pydantic_dataclasses"


def emit_grpc(specset: SpecSet, out: Output) -> None:
    """Compile every proto into ``generated/grpc/<package path>/``."""
    proto_root = specset.specs_dir / "proto"
    files = specset.protos.files
    if not files:
        return
    sources = [f"specs/proto/{name}" for name in files]
    with tempfile.TemporaryDirectory() as tmp:
        run_protoc(
            proto_root,
            files,
            [
                f"--python_betterproto2_out={tmp}",
                f"--python_betterproto2_opt={BETTERPROTO_OPTIONS}",
            ],
        )
        produced = sorted(Path(tmp).rglob("*.py"))
        package_dirs = {Path(GRPC_PACKAGE)}
        for path in produced:
            relative = path.relative_to(tmp)
            target = Path(GRPC_PACKAGE) / relative
            package_dirs.update(p for p in target.parents if Path(GRPC_PACKAGE) in (p, *p.parents))
            out.add(target.as_posix(), header(sources) + "\n" + path.read_text("utf-8"))
    for package in sorted(package_dirs):
        init = (package / "__init__.py").as_posix()
        if init not in out.files:
            out.add(init, header(sources))
