"""Proto files compiled by protoc into descriptors, for cross-checking and stubs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf import descriptor_pb2

from generator.errors import InvalidSpecsError, SpecError

_PROTOC_ERROR = re.compile(r"^(?P<file>[^:]+\.proto):(?P<line>\d+):(?P<col>\d+): (?P<message>.*)$")

# FileDescriptorProto field numbers used in SourceCodeInfo paths.
_SERVICE_FIELD = 6
_METHOD_FIELD = 2


@dataclass(frozen=True)
class RpcMethod:
    """One rpc of one service, with where it is declared."""

    full_name: str  # package.Service/Method
    file: str
    line: int
    input_type: str
    output_type: str


@dataclass
class ProtoSet:
    """Every rpc declared by the project's protos, keyed by ``package.Service/Method``."""

    files: list[str] = field(default_factory=list)
    methods: dict[str, RpcMethod] = field(default_factory=dict)
    packages: dict[str, str] = field(default_factory=dict)  # file → package
    #: Top-level message ``package.Message`` → its fields' JSON names (``orderId``).
    message_fields: dict[str, tuple[str, ...]] = field(default_factory=dict)


def run_protoc(proto_root: Path, files: list[str], extra_args: list[str]) -> None:
    """Run grpcio-tools' protoc; raise ``InvalidSpecsError`` with its message on failure."""
    command = [sys.executable, "-m", "grpc_tools.protoc", f"-I{proto_root}", *extra_args, *files]
    # The betterproto2 plugin and the ruff it formats with live beside this interpreter.
    tools = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": tools + os.pathsep + os.environ.get("PATH", "")}
    result = subprocess.run(command, capture_output=True, text=True, check=False, env=env)  # noqa: S603
    if result.returncode != 0:
        errors = []
        for line in result.stderr.splitlines():
            match = _PROTOC_ERROR.match(line.strip())
            if match:
                # protoc names the file as given or by its full path
                file = match["file"].removeprefix(f"{proto_root}/")
                errors.append(
                    SpecError(f"specs/proto/{file}", "", match["message"], int(match["line"]))
                )
            elif line.strip():
                errors.append(SpecError("specs/proto", "", line.strip()))
        raise InvalidSpecsError(errors or [SpecError("specs/proto", "", "protoc failed")])


def load_protos(proto_root: Path) -> ProtoSet:
    """Compile every ``.proto`` under ``proto_root`` and index its services."""
    files = sorted(p.relative_to(proto_root).as_posix() for p in proto_root.rglob("*.proto"))
    protoset = ProtoSet(files=files)
    if not files:
        return protoset
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set.pb"
        run_protoc(proto_root, files, [f"--descriptor_set_out={out}", "--include_source_info"])
        descriptor_set = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    for file_proto in descriptor_set.file:
        relpath = f"specs/proto/{file_proto.name}"
        protoset.packages[file_proto.name] = file_proto.package
        for message in file_proto.message_type:
            protoset.message_fields[f"{file_proto.package}.{message.name}"] = tuple(
                item.json_name or item.name for item in message.field
            )
        lines = {
            tuple(location.path): location.span[0] + 1
            for location in file_proto.source_code_info.location
        }
        for s_index, service in enumerate(file_proto.service):
            for m_index, method in enumerate(service.method):
                full_name = f"{file_proto.package}.{service.name}/{method.name}"
                line = lines.get((_SERVICE_FIELD, s_index, _METHOD_FIELD, m_index), 1)
                protoset.methods[full_name] = RpcMethod(
                    full_name=full_name,
                    file=relpath,
                    line=line,
                    input_type=method.input_type.lstrip("."),
                    output_type=method.output_type.lstrip("."),
                )
    return protoset
