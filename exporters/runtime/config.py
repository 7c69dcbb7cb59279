"""Loads one YAML file plus environment and flag overrides into frozen dataclasses, listing every problem."""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from collections.abc import Collection, Iterable, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from ..checks import check

__all__ = ["ENV_PREFIX", "ConfigError", "check", "checked", "describe", "load_config"]

ENV_PREFIX = "AIFINOPS_"

T = TypeVar("T")


class ConfigError(Exception):
    """A configuration that cannot be used; `problems` lists every reason as `path: reason`."""

    def __init__(self, problems: Iterable[str], source: str = "configuration") -> None:
        self.problems = list(problems)
        self.source = source
        super().__init__(
            f"invalid {source} ({len(self.problems)} problem"
            f"{'s' if len(self.problems) != 1 else ''}):\n"
            + "\n".join(f"  {p}" for p in self.problems)
        )


def checked(default: Any, predicate: Any, reason: str) -> Any:
    """A dataclass field whose value must satisfy `predicate`; checked as soon as it is read, so
    its problem is listed even when other fields of the same object are wrong too."""
    return dataclasses.field(
        default=default, metadata={"check": lambda v: None if predicate(v) else reason}
    )


class _Missing:
    pass


_MISSING = _Missing()


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    if origin in (list, tuple):
        return "a list"
    if origin in (dict, Mapping):
        return "a mapping"
    return {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "a boolean",
        Decimal: "a decimal number",
    }.get(tp, getattr(tp, "__name__", str(tp)))


class _Converter:
    """Walks a dataclass schema and converts raw YAML values, collecting problems instead of stopping."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, path: str, reason: str) -> Any:
        self.problems.append(f"{path or '<root>'}: {reason}")
        return _MISSING

    def convert(self, tp: Any, value: Any, path: str, base: Any = None) -> Any:
        origin = get_origin(tp)
        if origin in (Union, types.UnionType):
            args = [a for a in get_args(tp) if a is not type(None)]
            if value is None:
                return None
            if len(args) == 1:
                return self.convert(args[0], value, path, base)
            return self.fail(path, f"unsupported union type {tp}")
        if dataclasses.is_dataclass(tp):
            return self.convert_dataclass(tp, value, path, base)
        if origin is Literal:
            allowed = get_args(tp)
            if value not in allowed:
                return self.fail(
                    path, f"must be one of {', '.join(str(a) for a in allowed)} (got {value!r})"
                )
            return value
        if origin in (list, tuple):
            if not isinstance(value, list):
                return self.fail(path, f"must be {_type_name(tp)} (got {type(value).__name__})")
            (item_tp, *_) = get_args(tp) or (Any,)
            items = [self.convert(item_tp, v, _join(path, i)) for i, v in enumerate(value)]
            return tuple(items)
        if origin in (dict, Mapping) or tp is dict:
            if not isinstance(value, dict):
                return self.fail(path, f"must be a mapping (got {type(value).__name__})")
            _key_tp, val_tp = get_args(tp) or (str, Any)
            out = {}
            for k, v in value.items():
                if not isinstance(k, str):
                    self.fail(_join(path, str(k)), "keys must be strings")
                    continue
                out[k] = self.convert(val_tp, v, _join(path, k))
            return types.MappingProxyType(out)
        return self.convert_scalar(tp, value, path)

    def convert_scalar(self, tp: Any, value: Any, path: str) -> Any:
        if tp is Any:
            return value
        if value is None:
            return self.fail(path, f"must be {_type_name(tp)} (got null)")
        if tp is bool:
            if isinstance(value, bool):
                return value
            return self.fail(path, f"must be a boolean (got {value!r})")
        if tp is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            return self.fail(path, f"must be an integer (got {value!r})")
        if tp is float:
            if isinstance(value, int | float) and not isinstance(value, bool):
                return float(value)
            return self.fail(path, f"must be a number (got {value!r})")
        if tp is Decimal:
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                return self.fail(path, f"must be a decimal number (got {value!r})")
            try:
                # str() first: a YAML float like 2.1 must become Decimal("2.1"), not its binary value.
                d = Decimal(str(value))
            except InvalidOperation:
                return self.fail(path, f"must be a decimal number (got {value!r})")
            if not d.is_finite():
                return self.fail(path, f"must be a finite number (got {value!r})")
            return d
        if tp is str:
            if isinstance(value, str):
                return value
            return self.fail(path, f"must be a string (got {type(value).__name__})")
        if tp is Path:
            if isinstance(value, str):
                return Path(value)
            return self.fail(path, f"must be a path string (got {type(value).__name__})")
        return self.fail(path, f"unsupported type {tp}")

    def convert_dataclass(self, cls: Any, value: Any, path: str, base: Any = None) -> Any:
        """Build `cls` from a mapping; keys it lacks come from `base` (the field's default object),
        so overriding one nested key keeps the defaults of its siblings."""
        if value is None:
            value = {}
        if not isinstance(value, dict):
            return self.fail(path, f"must be a mapping (got {type(value).__name__})")
        hints = get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
        for key in value:
            if key not in fields:
                hint = difflib.get_close_matches(str(key), fields, n=1)
                suffix = f" (did you mean {hint[0]}?)" if hint else ""
                self.fail(_join(path, str(key)), f"unknown key{suffix}")
        kwargs: dict[str, Any] = {}
        ok = True
        for name, f in fields.items():
            fpath = _join(path, name)
            if base is not None:
                default = getattr(base, name)
            elif f.default is not dataclasses.MISSING:
                default = f.default
            elif f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            else:
                default = _MISSING
            if name in value:
                nested_base = default if dataclasses.is_dataclass(default) else None
                converted = self.convert(hints[name], value[name], fpath, nested_base)
                if converted is _MISSING:
                    ok = False
                    continue
                check_value = f.metadata.get("check")
                reason = check_value(converted) if check_value and converted is not None else None
                if reason:
                    self.fail(fpath, reason)
                    ok = False
                    continue
                kwargs[name] = converted
            elif default is _MISSING:
                self.fail(fpath, "required")
                ok = False
            elif base is not None:
                kwargs[name] = default
        if not ok:
            return _MISSING
        try:
            obj = cls(**kwargs)
        except (TypeError, ValueError) as exc:
            return self.fail(path, str(exc))
        validate = getattr(obj, "validate", None)
        if callable(validate):
            for field_name, reason in validate():
                self.fail(_join(path, field_name) if field_name else path, reason)
        return obj


def _parse_text(tp: Any, text: str) -> Any:
    """Turn an environment or flag string into the YAML-ish value the field's type expects."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if text == "" or text.lower() in ("null", "none"):
            return None
        return _parse_text(args[0], text)
    if origin in (list, tuple):
        (item_tp, *_) = get_args(tp) or (str,)
        return [_parse_text(item_tp, part.strip()) for part in text.split(",") if part.strip()]
    if tp is bool:
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        return text
    if tp is int:
        try:
            return int(text)
        except ValueError:
            return text
    if tp is float:
        try:
            return float(text)
        except ValueError:
            return text
    return text


def _field_tree(cls: Any) -> dict[str, Any]:
    return {f.name: get_type_hints(cls)[f.name] for f in dataclasses.fields(cls) if f.init}


def _unwrap_optional(tp: Any) -> Any:
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _resolve_env_path(cls: Any, parts: list[str]) -> tuple[list[str], Any] | None:
    """Match `['TOKENS', 'MAX', 'BATCH', 'EVENTS']` against the schema: field names may hold `_`."""
    tree = _field_tree(cls)
    for n in range(len(parts), 0, -1):
        name = "_".join(parts[:n]).lower()
        if name not in tree:
            continue
        tp = _unwrap_optional(tree[name])
        rest = parts[n:]
        if not rest:
            return [name], tree[name]
        if dataclasses.is_dataclass(tp):
            sub = _resolve_env_path(tp, rest)
            if sub is not None:
                return [name, *sub[0]], sub[1]
    return None


def _get_path(raw: Mapping[str, Any], path: list[str]) -> Any:
    node: Any = raw
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return _MISSING
        node = node[key]
    return node


def _set_path(raw: dict[str, Any], path: list[str], value: Any) -> None:
    node = raw
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[path[-1]] = value


def env_overrides(
    cls: Any, environ: Mapping[str, str]
) -> tuple[list[tuple[list[str], Any]], list[str]]:
    """Map `AIFINOPS_<SECTION>_<KEY>` variables onto schema paths; unknown ones are problems."""
    found: list[tuple[list[str], Any]] = []
    problems: list[str] = []
    for var in sorted(environ):
        if not var.startswith(ENV_PREFIX):
            continue
        parts = var[len(ENV_PREFIX) :].split("_")
        resolved = _resolve_env_path(cls, parts)
        if resolved is None:
            problems.append(f"{var}: environment variable matches no setting")
            continue
        path, tp = resolved
        base = _unwrap_optional(tp)
        if dataclasses.is_dataclass(base) or (
            get_origin(base) in (list, tuple)
            and dataclasses.is_dataclass((get_args(base) or (None,))[0])
        ):
            problems.append(f"{var}: {'.'.join(path)} cannot be set from the environment")
            continue
        found.append((path, _parse_text(tp, environ[var])))
    return found, problems


def load_config(
    cls: type[T],
    path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, str] | None = None,
    choices: Mapping[str, Collection[str]] | None = None,
) -> T:
    """Build `cls` from a YAML file, then `AIFINOPS_*` environment variables, then `overrides`.

    `choices` maps dotted paths to the values a registry outside the schema allows (`gpu.source`:
    the GPU sources), so those are checked in the same pass as everything else.

    `overrides` maps dotted paths (`web.listen_address`) to strings, as flags give them. Every problem
    found (syntax, unknown keys, missing required fields, wrong types, failed `validate()` checks) is
    collected and raised together as one `ConfigError`.
    """
    environ = os.environ if environ is None else environ
    problems: list[str] = []
    raw: dict[str, Any] = {}
    source = "configuration"
    if path is not None:
        source = f"configuration {os.fspath(path)}"
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError([f"{os.fspath(path)}: cannot read ({exc.strerror})"], source) from exc
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError([f"{os.fspath(path)}: not valid YAML ({exc})"], source) from exc
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(["<root>: must be a mapping"], source)
        raw = loaded
    found, env_problems = env_overrides(cls, environ)
    problems.extend(env_problems)
    for key_path, value in found:
        _set_path(raw, key_path, value)
    tree_cls: Any = cls
    for dotted, text in (overrides or {}).items():
        resolved = _resolve_env_path(tree_cls, dotted.replace(".", "_").upper().split("_"))
        if resolved is None:
            problems.append(f"{dotted}: matches no setting")
            continue
        _set_path(raw, resolved[0], _parse_text(resolved[1], text))
    converter = _Converter()
    result = converter.convert_dataclass(cls, raw, "")
    problems.extend(converter.problems)
    for dotted, allowed in (choices or {}).items():
        value = _get_path(raw, dotted.split("."))
        if value is not _MISSING and value not in allowed:
            problems.append(f"{dotted}: must be one of {', '.join(allowed)} (got {value!r})")
    if problems:
        raise ConfigError(problems, source)
    return typing.cast(T, result)


def describe(config: Any, prefix: str = "") -> Iterable[tuple[str, str, Any]]:
    """Yield `(dotted path, type name, value)` for every setting of a config object (e.g. the defaults)."""
    hints = get_type_hints(type(config))
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        path = _join(prefix, f.name)
        if dataclasses.is_dataclass(value):
            yield from describe(value, path)
            continue
        yield path, _type_name(_unwrap_optional(hints[f.name])), value
