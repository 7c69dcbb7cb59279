"""Validate rendered Kubernetes manifests: core kinds with kubernetes-validate, custom kinds against
the vendored CRDs' openAPIV3Schema, both strict about unknown fields (as `kubectl --validate=strict`)."""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

CRD_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "crds"
KUBERNETES_VERSION = "1.31"
# RFC 1123 subdomain: what metadata.name of most kinds must be.
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


class ManifestError(AssertionError):
    """A rendered manifest that the API server (or its CRD) would reject."""


class _CRDLoader(yaml.SafeLoader):
    """PyYAML takes a bare `=` (an enum value in the AlertmanagerConfig CRD) for its value tag."""


_CRDLoader.add_constructor(
    "tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node)
)


def _go_pattern(pattern: str) -> str:
    """Go allows inline flags anywhere; Python's `re` wants them at the start."""
    flags = "".join(sorted(set(re.findall(r"\(\?([a-z]+)\)", pattern))))
    if not flags:
        return pattern
    return f"(?{flags})" + re.sub(r"\(\?[a-z]+\)", "", pattern)


def _strict(schema: Any) -> Any:
    """Reject fields the CRD does not declare (the API server would silently prune them, hiding a typo)."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items() if not k.startswith("x-kubernetes-")}
        if "pattern" in out and isinstance(out["pattern"], str):
            out["pattern"] = _go_pattern(out["pattern"])
        if schema.get("x-kubernetes-int-or-string"):
            out.pop("type", None)
            out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        if schema.get("x-kubernetes-preserve-unknown-fields"):
            out.pop("additionalProperties", None)
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@functools.cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> strict JSON schema, for every vendored CRD version that is served."""
    schemas = {}
    for path in sorted(CRD_DIR.glob("*.yaml")):
        crd = yaml.load(path.read_text(encoding="utf-8"), Loader=_CRDLoader)
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if not version.get("served"):
                continue
            schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
            # metadata is the API server's ObjectMeta, checked separately below.
            schema.setdefault("properties", {})["metadata"] = {"type": "object"}
            schemas[(f"{group}/{version['name']}", kind)] = _strict(schema)
    return schemas


def _check_metadata(doc: dict[str, Any]) -> None:
    meta = doc.get("metadata") or {}
    name = meta.get("name", "")
    where = f"{doc.get('kind')}/{name}"
    if not name or len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        raise ManifestError(f"{where}: metadata.name {name!r} is not a DNS subdomain")
    for key, value in (meta.get("labels") or {}).items():
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            raise ManifestError(f"{where}: label {key}={value!r} is not a valid label value")


def validate(doc: dict[str, Any]) -> str:
    """Validate one manifest; returns how ("core" or "crd"). Raises ManifestError."""
    _check_metadata(doc)
    key = (doc["apiVersion"], doc["kind"])
    where = f"{doc['kind']}/{doc['metadata']['name']}"
    if key in crd_schemas():
        validator = jsonschema.Draft7Validator(crd_schemas()[key])
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
        if errors:
            raise ManifestError(
                f"{where}: "
                + "; ".join(f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)
            )
        return "crd"
    if "." in doc["apiVersion"].split("/")[0] and not doc["apiVersion"].split("/")[0].endswith(
        ".k8s.io"
    ):
        raise ManifestError(f"{where}: no vendored CRD for {key}")
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(str(p) for p in exc.path)
        raise ManifestError(f"{where}: {path}: {exc.message}") from None
    except kubernetes_validate.SchemaNotFoundError as exc:
        raise ManifestError(f"{where}: {exc.message}") from None
    return "core"


def load_manifests(rendered: dict[str, str] | Iterable[str]) -> list[dict[str, Any]]:
    """Every YAML document of a render (template name -> text), NOTES.txt excluded."""
    texts = (
        [text for name, text in sorted(rendered.items()) if not name.endswith("NOTES.txt")]
        if isinstance(rendered, dict)
        else list(rendered)
    )
    docs = []
    for text in texts:
        docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs
