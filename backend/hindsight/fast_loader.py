"""A fast `load` for well-formed lists of small objects (a batch's events), compiled once
from a marshmallow schema's own fields and validators.

Plain marshmallow costs about 3 ms per 50-event batch; the compiled loader accepts the
common, well-formed item in a few microseconds. Anything it is not sure about (a wrong type,
a value out of bounds, an unknown or missing field) makes it decline, and marshmallow itself
then decides and names the errors exactly as it would have (`FastNestedList`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, missing, validate

from .input_fields import StrictBoolean, storable_text


class _Declined(Exception):
    """The fast path is not sure about a value: marshmallow decides (and words the errors)."""


_DECLINED = _Declined()
_Check = Callable[[Any], Any]


def _predicate(validator) -> Callable[[Any], bool]:
    """A validator as a plain test (True: valid) with its bounds bound at compile time."""
    if isinstance(validator, validate.Range):
        lo, hi, lo_inc, hi_inc = validator.min, validator.max, validator.min_inclusive, validator.max_inclusive
        if lo is not None and hi is not None and lo_inc and hi_inc:
            return lambda v: lo <= v <= hi
        return lambda v: ((lo is None or (v >= lo if lo_inc else v > lo))
                          and (hi is None or (v <= hi if hi_inc else v < hi)))
    if isinstance(validator, validate.Length):
        lo, hi, eq = validator.min, validator.max, validator.equal
        if eq is not None:
            return lambda v: len(v) == eq
        return lambda v: (lo is None or len(v) >= lo) and (hi is None or len(v) <= hi)
    if isinstance(validator, validate.Regexp):
        match = validator.regex.match
        return lambda v: match(v) is not None
    if isinstance(validator, validate.OneOf):
        choices = frozenset(validator.choices)
        return lambda v: v in choices

    def call(v) -> bool:  # any other validator: run it, as marshmallow would
        try:
            return validator(v) is not False
        except ValidationError:
            return False

    return call


def _converter(field: fields.Field) -> _Check | None:
    """Accept only the plain JSON type a field takes as is; None: no fast path for it."""
    kind = type(field)
    if kind is fields.Integer:
        def integer(v):
            if type(v) is not int:  # not bool, float or "12": marshmallow's call
                raise _DECLINED
            return v
        return integer
    if kind is fields.String:
        def string(v):
            if type(v) is not str:
                raise _DECLINED
            return v
        return string
    if kind is fields.Boolean or kind is StrictBoolean:
        def boolean(v):
            if v is not True and v is not False:  # "true", 1, ... : marshmallow's call
                raise _DECLINED
            return v
        return boolean
    if (kind is fields.AwareDateTime and isinstance(field, fields.AwareDateTime)
            and field.format in (None, "iso", "iso8601") and field.default_timezone is not None):
        tz = field.default_timezone
        parse = datetime.fromisoformat  # what marshmallow uses for "iso"

        def aware(v):
            if type(v) is not str:
                raise _DECLINED
            try:
                ts = parse(v)
            except ValueError:
                raise _DECLINED from None
            if ts.tzinfo is None or ts.utcoffset() is None:
                ts = ts.replace(tzinfo=tz)
            return ts
        return aware
    if kind is fields.Dict and isinstance(field, fields.Dict) and field.value_field is None:
        key_check = _field_check(field.key_field) if field.key_field is not None else None
        if field.key_field is not None and key_check is None:
            return None

        def mapping(v):
            if type(v) is not dict:
                raise _DECLINED
            if key_check is not None:
                for k in v:
                    key_check(k)
            return dict(v)
        return mapping
    return None


def _special_check(field: fields.Field) -> _Check | None:
    """One closure for the commonest fields (a bounded integer; a string of bounded length,
    storable or not): the same checks as `_field_check` builds, with fewer calls per value."""
    kind, validators, allow_none = type(field), list(field.validators), field.allow_none
    if kind is fields.Integer and len(validators) == 1:
        (validator,) = validators
        if (isinstance(validator, validate.Range) and validator.min is not None
                and validator.max is not None and validator.min_inclusive and validator.max_inclusive):
            lo, hi = validator.min, validator.max

            def integer(v):
                if type(v) is int and lo <= v <= hi:
                    return v
                if v is None and allow_none:
                    return None
                raise _DECLINED
            return integer
        return None
    if kind is fields.String and validators and isinstance(validators[0], validate.Length):
        length, rest = validators[0], validators[1:]
        if (length.equal is not None or length.min or length.max is None
                or rest not in ([], [storable_text])):
            return None
        hi, storable = length.max, bool(rest)

        def text(v):
            if type(v) is str and len(v) <= hi:
                if not storable or ("\x00" not in v and (v.isascii() or _is_utf8(v))):
                    return v
            elif v is None and allow_none:
                return None
            raise _DECLINED
        return text
    return None


def _is_utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _field_check(field: fields.Field) -> _Check | None:
    """The whole of `field.deserialize` for the values the fast path takes; None: none of it."""
    if field.pre_load or field.post_load:
        return None
    special = _special_check(field)
    if special is not None:
        return special
    convert = _converter(field)
    if convert is None:
        return None
    tests = tuple(_predicate(v) for v in field.validators)
    allow_none = field.allow_none
    if len(tests) == 1:
        test = tests[0]

        def check(v):
            if v is None:
                if allow_none:
                    return None
                raise _DECLINED
            out = convert(v)
            if not test(out):
                raise _DECLINED
            return out
    else:
        def check(v):
            if v is None:
                if allow_none:
                    return None
                raise _DECLINED
            out = convert(v)
            for test in tests:
                if not test(out):
                    raise _DECLINED
            return out
    return check


def compile_loader(schema: Schema) -> Callable[[Any], dict[str, Any]] | None:
    """A fast `schema.load` for well-formed input that raises `_Declined` on anything else.

    Built from the schema's own fields and validators, so a bound changed there changes
    here. Returns None (always use marshmallow) when the schema has hooks (`@pre_load`,
    `@validates`, ...: read through marshmallow's public `SchemaMeta.resolve_hooks`), or does
    not reject unknown fields: cases it does not reproduce.
    """
    if schema.unknown != RAISE or any(type(schema).resolve_hooks().values()):
        return None
    checks: dict[str, tuple[str, _Check]] = {}
    template: dict[str, Any] = {}
    callables: list[tuple[str, Callable[[], Any]]] = []
    required: set[str] = set()
    for name, field in schema.load_fields.items():
        key = field.data_key if field.data_key is not None else name
        attr = field.attribute or name
        check = _field_check(field)
        if check is None:
            def check(v, _d=_DECLINED):
                raise _d
        checks[key] = (attr, check)
        if field.required:
            required.add(key)
        elif field.load_default is not missing:
            if callable(field.load_default):
                callables.append((attr, field.load_default))
            else:
                template[attr] = field.load_default
    required_keys = frozenset(required)
    get = checks.get

    def load(item: Any) -> dict[str, Any]:
        if type(item) is not dict or not required_keys <= item.keys():
            raise _DECLINED
        out = template.copy()
        for attr, default in callables:
            out[attr] = default()
        for key, value in item.items():
            found = get(key)
            if found is None:  # unknown field
                raise _DECLINED
            out[found[0]] = found[1](value)
        return out

    return load


class FastNestedList(fields.List):
    """`fields.List(fields.Nested(S))` that loads well-formed items without marshmallow's
    per-field machinery (see `compile_loader`); any doubt, and the whole list goes
    through `fields.List` itself, so errors are the same, e.g. {"3": {"timestamp": [...]}}.
    """

    def __init__(self, inner: fields.Nested, **kwargs) -> None:
        super().__init__(inner, **kwargs)
        self._loader: Callable[[Any], dict[str, Any]] | None | bool = False

    def _fast_loader(self):
        if self._loader is False:
            inner = self.inner
            self._loader = (compile_loader(inner.schema)
                            if isinstance(inner, fields.Nested) and not inner.many else None)
        return self._loader

    def _deserialize(self, value, attr, data, **kwargs):
        load = self._fast_loader()
        if load is not None and type(value) is list:
            try:
                return [load(item) for item in value]
            except _Declined:
                pass
        return super()._deserialize(value, attr, data, **kwargs)
