"""One typed definition per event part, read two ways: msgspec's fast typed decode, and the listing
of every problem by field, both from the same `msgspec.Struct`.

An event part (the CloudEvents envelope, usage `data`) is declared once, as a `Struct`: each
field's type, whether it is required, its default, and its constraints (`Meta`: bounds, lengths,
pattern, literal values). `Definition(Struct)` reads that declaration twice:

- `convert(obj)` / `decode(raw)`: msgspec builds the `Struct` from a decoded object or straight
  from JSON bytes, in C, stopping at the first problem (None then);
- `check(obj, prefix)`: walks the same declaration (`msgspec.inspect.type_info`) over a decoded
  object and words every problem, by dotted field, as the HTTP 400 body and the DLQ reason list
  them. It is a reading of the declaration, not a second copy of the rules: a constraint added to
  the `Struct` is checked by both.

A label pattern is declared as `Meta(extra={"pattern": ...})` rather than msgspec's own
`pattern`: msgspec matches its patterns with Python's `re` on every value, which made the typed
decode of a usage event (three labels) take about 3 µs instead of 1 µs; label values repeat, so
both readings match each distinct value once (`patterns_ok`, `check`) and remember it.

What a constraint cannot say (a rule across fields, a value normalised, a timestamp parsed) is a
plain function the event's module calls after either reading, so it too is written once.

Wording: a field's `Meta(extra=...)` may replace the generic text. `type_rule` is the reason for a
value of the wrong type, `rule` the reason for a value outside its lower bound, length or pattern,
`required` the reason when the field is missing, `null: False` that an explicit null is refused
(an optional field's null is otherwise read as absent), `reserved` the values a label pattern refuses
(each with its reason); each of the others is a `str.format` template over `value`,
`shown` (the value cut to 80 characters) and `type` (its type's name). An upper bound has its own
text (`must be at most N (got v)`, `longer than N characters`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Generic, NamedTuple, TypeVar

import msgspec
import msgspec.inspect as mi

from .codec import Problem

S = TypeVar("S", bound=msgspec.Struct)

# Called with (field, reason) for each problem found.
Report = Callable[[str, str], None]


class FieldRule(NamedTuple):
    """One declared field as the listing reads it: its type (constraints included), its wording
    overrides, whether it is required, and the value an absent (or null) optional field takes."""

    name: str
    type: mi.Type
    extra: Mapping[str, Any]
    required: bool
    default: Any
    # A quick test, read from `type`, that a value of the common kind meets it (None: none);
    # any value it does not pass is judged, and its problem worded, by `_reason`.
    quick: Callable[[Any], bool] | None


class Definition(Generic[S]):
    """A `Struct` read both ways: msgspec's typed decode and the every-problem listing."""

    def __init__(self, cls: type[S]) -> None:
        self.cls = cls
        info = mi.type_info(cls)
        assert isinstance(info, mi.StructType)
        fields = []
        # `msgspec.structs.fields` has the defaults as declared (UNSET included).
        declared = {f.name: f for f in msgspec.structs.fields(cls)}
        for field in info.fields:
            kind, extra = field.type, dict[str, Any]()
            if isinstance(field.type, mi.Metadata):
                kind, extra = field.type.type, dict(field.type.extra or {})
            if isinstance(kind, mi.UnionType):
                # `Model | None`: the member's wording and pattern are the field's.
                for member in kind.types:
                    if isinstance(member, mi.Metadata):
                        extra = {**(member.extra or {}), **extra}
            spec = declared[field.name]
            if spec.default is not msgspec.NODEFAULT:
                default = spec.default
            elif spec.default_factory is not msgspec.NODEFAULT:
                default = spec.default_factory()
            else:
                default = None
            fields.append(FieldRule(field.name, kind, extra, field.required, default, _quick(kind)))
        self.fields = tuple(fields)
        # Label patterns (`extra["pattern"]`), each with the values already found to match and
        # the values it reserves (`extra["reserved"]`: value -> reason), which never match.
        self._patterns = {
            f.name: (re.compile(f.extra["pattern"]), set[str](), f.extra.get("reserved", {}))
            for f in fields
            if "pattern" in f.extra
        }
        self._patterned = tuple((name, *checks) for name, checks in self._patterns.items())
        # What `check` reads of each field, unpacked once.
        self._plan = tuple((f.name, f.quick, f.name in self._patterns, f) for f in fields)
        self.names = frozenset(f.name for f in fields)
        # Problems are listed in declaration order (rules across fields report at their field).
        self.order = {f.name: i for i, f in enumerate(fields)}
        self._decoder = msgspec.json.Decoder(cls)

    def convert(self, obj: Any) -> S | None:
        """The `Struct` of a decoded object; None at its first problem (`check` words them)."""
        try:
            return msgspec.convert(obj, self.cls)
        except (msgspec.ValidationError, RecursionError):
            return None

    def decode(self, raw: bytes) -> S | None:
        """The `Struct` straight from JSON bytes; None when they are not JSON or hold a problem."""
        try:
            return self._decoder.decode(raw)
        except (msgspec.DecodeError, RecursionError):  # ValidationError is a DecodeError
            return None

    def check(self, obj: Mapping[str, Any], problem: Report) -> dict[str, Any]:
        """Every declared field of `obj` checked against its declaration: the valid values (an
        absent or null optional field at its default), each problem reported with its field."""
        values: dict[str, Any] = {}
        for name, quick, patterned, field in self._plan:
            value = obj.get(name)
            if value is None:
                if name in obj and _accepts_none(field.type):
                    values[name] = None
                elif field.required:
                    problem(name, field.extra.get("required", "required"))
                elif name in obj and (_is_unset(field.type) or field.extra.get("null") is False):
                    problem(name, _type_reason(value, field.type, field.extra))
                else:
                    values[name] = field.default
                continue
            if quick is not None and not patterned and quick(value):
                values[name] = value  # the common case, without the wording machinery
                continue
            reason = self._field_reason(field, value)
            if reason is None:
                values[name] = value
            else:
                problem(name, reason)
        return values

    def patterns_ok(self, obj: S) -> bool:
        """Whether the label fields of a `Struct` msgspec built match their patterns."""
        for name, pattern, valid, reserved in self._patterned:
            value = getattr(obj, name)
            if value not in valid and not _learn(pattern, valid, reserved, value):
                return False
        return True

    def _field_reason(self, field: FieldRule, value: Any) -> str | None:
        quick = field.quick
        reason = (
            None if quick is not None and quick(value) else _reason(value, field.type, field.extra)
        )
        if reason is None and field.name in self._patterns and isinstance(value, str):
            pattern, valid, reserved = self._patterns[field.name]
            if value not in valid and not _learn(pattern, valid, reserved, value):
                if value in reserved and pattern.fullmatch(value):
                    return str(reserved[value])
                rule = (
                    field.extra.get("rule") or f"must match {pattern.pattern}" + " (got {shown!r})"
                )
                return _format(rule, value)
        return reason

    def reason(self, name: str, value: Any) -> str | None:
        """Why `value` does not meet field `name`'s declaration; None when it does."""
        return self._field_reason(self.fields[self.order[name]], value)

    def sort(self, problems: list[Problem], prefix: str = "") -> list[Problem]:
        """`problems` in declaration order of their field (others after, in their order)."""
        if len(problems) < 2:
            return problems
        end = len(self.order)
        cut = len(prefix)

        def position(p: Problem) -> int:
            head = p.field[cut:].split(".", 1)[0].split("[", 1)[0]
            return self.order.get(head, end) if p.field.startswith(prefix) else end

        return sorted(problems, key=position)


def _quick(kind: mi.Type) -> Callable[[Any], bool] | None:
    """A fast test that a value meets `kind` (exact JSON types only, so that it never passes a
    value `_reason` would refuse); None where `kind` has none."""
    if isinstance(kind, mi.Metadata):
        return _quick(kind.type)
    if isinstance(kind, mi.StrType) and kind.pattern is None:
        shortest, longest = kind.min_length or 0, kind.max_length
        if longest is None:
            return lambda v: type(v) is str and len(v) >= shortest
        return lambda v: type(v) is str and shortest <= len(v) <= longest
    if isinstance(kind, mi.IntType | mi.FloatType) and kind.multiple_of is None:
        exact = int if isinstance(kind, mi.IntType) else float
        low, high, above, below = kind.ge, kind.le, kind.gt, kind.lt
        if above is not None or below is not None:
            return None
        if low is not None and high is not None:
            return lambda v: type(v) is exact and low <= v <= high
        if low is None and high is None:
            return lambda v: type(v) is exact
        return None
    if isinstance(kind, mi.LiteralType) and all(type(v) is str for v in kind.values):
        values = frozenset(kind.values)
        return lambda v: type(v) is str and v in values
    if isinstance(kind, mi.NoneType):
        return lambda v: v is None
    if isinstance(kind, mi.DictType) and isinstance(kind.key_type, mi.AnyType | mi.StrType):
        return lambda v: type(v) is dict
    if isinstance(kind, mi.AnyType):
        return lambda v: True
    if isinstance(kind, mi.UnionType):
        members = [_quick(t) for t in kind.types]
        if any(m is None for m in members):
            return None
        tests = tuple(m for m in members if m is not None)
        if len(tests) == 2:
            first, second = tests
            return lambda v: first(v) or second(v)
        return lambda v: any(test(v) for test in tests)
    return None


def _is_unset(kind: mi.Type) -> bool:
    return isinstance(kind, mi.CustomType) and kind.cls is msgspec.UnsetType


def _accepts_none(kind: mi.Type) -> bool:
    if isinstance(kind, mi.UnionType):
        return any(isinstance(t, mi.NoneType) for t in kind.types)
    return isinstance(kind, mi.NoneType | mi.AnyType)


def _type_ok(value: Any, kind: mi.Type) -> bool:
    """Whether `value` is of the declared type (constraints aside), as msgspec decides it for
    JSON values: an int is not a float, a bool is neither."""
    if isinstance(kind, mi.StrType):
        return isinstance(value, str)
    if isinstance(kind, mi.IntType):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(kind, mi.FloatType):  # msgspec reads an integer as a float too
        return isinstance(value, float | int) and not isinstance(value, bool)
    if isinstance(kind, mi.BoolType):
        return isinstance(value, bool)
    if isinstance(kind, mi.NoneType):
        return value is None
    if isinstance(kind, mi.LiteralType):
        return any(type(v) is type(value) and v == value for v in kind.values)
    if isinstance(kind, mi.DictType | mi.StructType):
        return isinstance(value, Mapping)
    if isinstance(kind, mi.ListType):
        return isinstance(value, list)
    # Any takes anything; UnsetType nothing (the field must be absent).
    return isinstance(kind, mi.AnyType)


def _format(template: str, value: Any) -> str:
    shown = value if not isinstance(value, str) or len(value) <= 80 else value[:77] + "..."
    return template.format(value=value, shown=shown, type=type(value).__name__)


_KINDS = {
    mi.StrType: "a string",
    mi.IntType: "an integer",
    mi.FloatType: "a number",
    mi.BoolType: "a boolean",
    mi.NoneType: "null",
    mi.DictType: "a JSON object",
    mi.StructType: "a JSON object",
    mi.ListType: "a JSON array",
}


def _type_reason(value: Any, kind: mi.Type, extra: Mapping[str, Any]) -> str:
    if "type_rule" in extra:
        return _format(extra["type_rule"], value)
    if isinstance(kind, mi.LiteralType):
        if len(kind.values) == 1:
            return f"must be {kind.values[0]!r} (got {value!r})"
        return f"must be one of {', '.join(map(str, kind.values))} (got {value!r})"
    if isinstance(kind, mi.DictType | mi.StructType):
        return "must be a JSON object"
    if _is_unset(kind):
        return "must be absent"
    # A null optional field is read as absent, so null is not offered as a choice.
    members = [
        m.type if isinstance(m, mi.Metadata) else m
        for m in (kind.types if isinstance(kind, mi.UnionType) else (kind,))
        if not isinstance(m, mi.NoneType)
    ]
    names = " or ".join(dict.fromkeys(_KINDS.get(type(t), type(t).__name__) for t in members))
    return f"must be {names} (got {type(value).__name__})"


def _reason(value: Any, kind: mi.Type, extra: Mapping[str, Any]) -> str | None:
    """None when `value` meets its declaration, else why not."""
    if isinstance(kind, mi.UnionType):
        # The member of the value's own type decides (msgspec picks it the same way).
        for declared in kind.types:
            member, member_extra = declared, extra
            if isinstance(declared, mi.Metadata):
                member, member_extra = declared.type, {**(declared.extra or {}), **extra}
            if _type_ok(value, member):
                return _constraint_reason(value, member, member_extra)
        return _type_reason(value, kind, extra)
    if not _type_ok(value, kind):
        return _type_reason(value, kind, extra)
    return _constraint_reason(value, kind, extra)


def _constraint_reason(value: Any, kind: mi.Type, extra: Mapping[str, Any]) -> str | None:
    rule = extra.get("rule")
    if isinstance(kind, mi.StrType):
        if kind.min_length is not None and len(value) < kind.min_length:
            return _format(rule or f"at least {kind.min_length} characters", value)
        if kind.max_length is not None and len(value) > kind.max_length:
            return f"longer than {kind.max_length} characters"
        if kind.pattern is not None and not _pattern(kind.pattern).search(value):
            return _format(rule or f"must match {kind.pattern}" + " (got {shown!r})", value)
        return None
    if isinstance(kind, mi.IntType | mi.FloatType):
        # `not (value >= ge)` rather than `value < ge`: NaN is outside every bound.
        if kind.ge is not None and not value >= kind.ge:
            return _format(rule or f"must be at least {kind.ge}" + " (got {value!r})", value)
        if kind.gt is not None and not value > kind.gt:
            return _format(rule or f"must be more than {kind.gt}" + " (got {value!r})", value)
        if kind.le is not None and not value <= kind.le:
            return f"must be at most {kind.le} (got {value!r})"
        if kind.lt is not None and not value < kind.lt:
            return f"must be less than {kind.lt} (got {value!r})"
        return None
    return None  # a literal, a mapping, a nested part (checked by its own Definition), Any


# Each label pattern remembers at most this many matching values (they are client input).
MEMO_LIMIT = 50_000


def _learn(
    pattern: re.Pattern[str], valid: set[str], reserved: Mapping[str, str], value: Any
) -> bool:
    """Whether `value` (a str, or None for an optional label) matches `pattern` and is not
    reserved; a match is remembered, so a label value seen before costs one set lookup."""
    if type(value) is not str or value in reserved or not pattern.fullmatch(value):
        return value is None
    if len(valid) < MEMO_LIMIT:
        valid.add(value)
    return True


_PATTERNS: dict[str, re.Pattern[str]] = {}


def _pattern(text: str) -> re.Pattern[str]:
    """The compiled pattern; msgspec matches with `re.search` too (anchor with `^` and `\\Z`)."""
    compiled = _PATTERNS.get(text)
    if compiled is None:
        compiled = _PATTERNS[text] = re.compile(text)
    return compiled
