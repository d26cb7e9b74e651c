"""The whole spec set, loaded from ``specs/`` in one go."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from generator.catalog import Catalog
from generator.errors import InvalidSpecsError
from generator.protos import ProtoSet, load_protos
from generator.saga import SagaSpec
from generator.yamlsource import SourceDocument, load_document


@dataclass
class SpecSet:
    """Every spec document, parsed and typed where validation allows."""

    root: Path
    catalog_doc: SourceDocument
    openapi: dict[str, SourceDocument]  # service name → document
    openapi_shared: dict[str, SourceDocument]  # relpath → shared component files
    asyncapi: SourceDocument
    saga_docs: list[SourceDocument]
    protos: ProtoSet
    catalog: Catalog | None = None
    sagas: list[SagaSpec] = field(default_factory=list)

    @property
    def specs_dir(self) -> Path:
        return self.root / "specs"


def load_specset(root: Path) -> SpecSet:
    """Parse every spec under ``root/specs``; syntax errors are collected and raised."""
    root = root.resolve()
    specs = root / "specs"
    errors = InvalidSpecsError()

    def load(path: Path) -> SourceDocument | None:
        try:
            return load_document(path, root)
        except InvalidSpecsError as exc:
            errors.errors.extend(exc.errors)
            return None

    catalog_doc = load(specs / "services.yaml")
    asyncapi = load(specs / "asyncapi" / "microcommerce.yaml")
    openapi: dict[str, SourceDocument] = {}
    shared: dict[str, SourceDocument] = {}
    referenced: set[str] = set()
    if catalog_doc is not None and isinstance(catalog_doc.data, dict):
        for name, service in sorted((catalog_doc.data.get("services") or {}).items()):
            spec_path = service.get("openapi") if isinstance(service, dict) else None
            if isinstance(spec_path, str) and (specs / spec_path).is_file():
                referenced.add(spec_path)
                document = load(specs / spec_path)
                if document is not None:
                    openapi[name] = document
    for path in sorted((specs / "openapi").glob("*.yaml")):
        rel = path.relative_to(specs).as_posix()
        if rel not in referenced:
            document = load(path)
            if document is not None:
                shared[document.relpath] = document
    saga_docs = [
        doc for path in sorted((specs / "sagas").glob("*.saga.yaml")) if (doc := load(path))
    ]
    try:
        protos = load_protos(specs / "proto")
    except InvalidSpecsError as exc:
        errors.errors.extend(exc.errors)
        protos = ProtoSet()
    if errors.errors or catalog_doc is None or asyncapi is None:
        raise errors
    return SpecSet(
        root=root,
        catalog_doc=catalog_doc,
        openapi=openapi,
        openapi_shared=shared,
        asyncapi=asyncapi,
        saga_docs=saga_docs,
        protos=protos,
    )
