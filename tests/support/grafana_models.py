"""Strict check of a dashboard's JSON against Grafana's own schema, through the grafana-foundation-sdk models.

The SDK's `Dashboard.from_json` is lenient: it ignores keys it does not know and does not check
types or enum values. `model_problems` makes it strict in three ways:

- every key of the JSON must survive a round trip through the models (`from_json`, then the
  SDK's JSON encoder): a key the schema does not have, or a misspelt one, is reported with its path;
- every value must have the type the model declares, and enum fields a value of their enum;
- every query must decode to the Prometheus query model (a datasource Grafana would not
  recognise decodes to `UnknownDataquery`).

The one allowance is `PROMETHEUS_ANNOTATION_KEYS`: Grafana's Prometheus plugin reads these
annotation fields, but the dashboard schema the SDK is generated from does not list them.
"""

from __future__ import annotations

import enum
import json
import re
import types
import typing
from typing import Any

from grafana_foundation_sdk.cog import plugins
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.runtime import UnknownDataquery
from grafana_foundation_sdk.cog.variants import Dataquery
from grafana_foundation_sdk.models import dashboard as dashboard_model
from grafana_foundation_sdk.models import prometheus

plugins.register_default_plugins()

# Read by Grafana's Prometheus datasource for annotation queries (public/app/plugins/datasource/
# prometheus annotation support), absent from the generic AnnotationQuery schema.
PROMETHEUS_ANNOTATION_KEYS = frozenset(
    {"step", "titleFormat", "textFormat", "tagKeys", "useValueForTime"}
)


# JSON scalars by the Python type the models declare: what to call it, and what it accepts.
SCALARS: dict[type, tuple[str, typing.Callable[[Any], bool]]] = {
    bool: ("a boolean", lambda v: isinstance(v, bool)),
    int: ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    float: ("a number", lambda v: isinstance(v, int | float) and not isinstance(v, bool)),
    str: ("a string", lambda v: isinstance(v, str)),
}


def model_problems(dashboard: dict[str, Any]) -> list[str]:
    """Everything in `dashboard` that Grafana's schema (as the SDK models it) does not accept."""
    problems: list[str] = []
    model = dashboard_model.Dashboard.from_json(dashboard)
    round_trip = json.loads(json.dumps(model, cls=JSONEncoder))
    _lost_keys(dashboard, round_trip, "", problems)
    _check_value(model, dashboard_model.Dashboard, "", problems)
    for index, panel in enumerate(model.panels or []):
        for target in getattr(panel, "targets", None) or []:
            if isinstance(target, UnknownDataquery) or not isinstance(target, prometheus.Dataquery):
                problems.append(f"panels[{index}].targets: not a Prometheus query: {target!r}")
    return problems


def _lost_keys(original: Any, round_trip: Any, path: str, problems: list[str]) -> None:
    """Report keys of `original` missing from `round_trip`, recursively."""
    if isinstance(original, dict):
        if not isinstance(round_trip, dict):
            problems.append(f"{path or '.'}: object became {type(round_trip).__name__}")
            return
        in_annotation = re.fullmatch(r"annotations\.list\[\d+\]", path) is not None
        for key, value in original.items():
            if key not in round_trip:
                if in_annotation and key in PROMETHEUS_ANNOTATION_KEYS:
                    continue
                problems.append(f"{path}.{key}: not in Grafana's dashboard schema")
                continue
            _lost_keys(value, round_trip[key], f"{path}.{key}" if path else key, problems)
    elif isinstance(original, list):
        if not isinstance(round_trip, list) or len(round_trip) != len(original):
            problems.append(f"{path}: list changed in the round trip")
            return
        for i, (a, b) in enumerate(zip(original, round_trip, strict=True)):
            _lost_keys(a, b, f"{path}[{i}]", problems)
    elif original != round_trip and not _same_number(original, round_trip):
        problems.append(f"{path}: {original!r} became {round_trip!r}")


def _same_number(a: Any, b: Any) -> bool:
    numbers = (int, float)
    return (
        isinstance(a, numbers)
        and isinstance(b, numbers)
        and not isinstance(a, bool)
        and not isinstance(b, bool)
        and float(a) == float(b)
    )


def _is_model(cls: Any) -> bool:
    return isinstance(cls, type) and hasattr(cls, "from_json") and hasattr(cls, "to_json")


def _check_value(value: Any, hint: Any, path: str, problems: list[str]) -> None:
    """Check `value` against the type hint `hint` of the SDK model field at `path`."""
    if value is None or hint is Any or hint is object:
        if _is_model(type(value)):
            _check_fields(value, path, problems)
        return
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        arms = [a for a in args if a is not type(None)]
        exact = [a for a in arms if _is_model(a) and isinstance(value, a)]
        if len(arms) == 1 or exact:
            _check_value(value, (exact or arms)[0], path, problems)
            return
        trials = []
        for arm in arms:
            trial: list[str] = []
            _check_value(value, arm, path, trial)
            if not trial:
                return
            trials.append(trial)
        problems.extend(min(trials, key=len))
        return
    if origin is typing.Literal:
        if value not in args:
            problems.append(f"{path}: {value!r} is not one of {args}")
        return
    if origin is list:
        if not isinstance(value, list):
            problems.append(f"{path}: expected a list, got {value!r}")
            return
        for i, item in enumerate(value):
            _check_value(item, args[0] if args else Any, f"{path}[{i}]", problems)
        return
    if origin is dict:
        if not isinstance(value, dict):
            problems.append(f"{path}: expected an object, got {value!r}")
            return
        for key, item in value.items():
            _check_value(item, args[1] if len(args) > 1 else Any, f"{path}.{key}", problems)
        return
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        allowed = {member.value for member in hint}
        if value not in allowed:
            problems.append(f"{path}: {value!r} is not one of {sorted(map(str, allowed))}")
        return
    if hint in SCALARS:
        what, accepts = SCALARS[hint]
        if not accepts(value):
            problems.append(f"{path}: expected {what}, got {value!r}")
        return
    if hint is Dataquery or (isinstance(hint, type) and issubclass(hint, Dataquery)):
        if _is_model(type(value)):
            _check_fields(value, path, problems)
        return
    if _is_model(hint):
        # A few SDK fields (panel links, transformations) keep the raw JSON: decode them here.
        if isinstance(value, dict):
            value = hint.from_json(value)
        if not isinstance(value, hint):
            problems.append(f"{path}: expected {hint.__name__}, got {value!r}")
            return
        _check_fields(value, path, problems)


def _check_fields(model: Any, path: str, problems: list[str]) -> None:
    hints = typing.get_type_hints(type(model))
    for name, hint in hints.items():
        if hasattr(model, name):
            _check_value(getattr(model, name), hint, f"{path}.{name}" if path else name, problems)
