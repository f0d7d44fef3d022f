"""JSON Schemas (draft 2020-12) of the files repro reads and writes, and one-line messages for their failures.

`manifest.schema.json` is a model set's manifest.json (read by repro.modelsets), `metrics.schema.json` the
report's metrics.json (written by repro.report.results). `validator(schema)` checks with the `jsonschema`
library under JSON's own number rules: a number is finite (Python's json reads NaN and Infinity, JSON has
neither) and an integer is an int, not 2.0 and not a bool. `describe(error, schema)` turns one
ValidationError into `FIELD: expected WHAT, got WHAT`, the field written as `crop.size`, `rows[0].metrics`
or `sha256["generator.caffemodel"]`; a schema's `description` says what is expected where it has one. A
key that a closed object (additionalProperties: false) does not list is `unknown field "KEY" at the top level`
or `… in FIELD`, with the closest known key (`did you mean "KEY"?`) or else the known keys; `first_problem`
prefers it to the other errors of the same object (a misspelt required key is also a missing one).
"""

from __future__ import annotations

import ast
import difflib
import json
import math
import re
from collections.abc import Iterable
from functools import cache
from importlib import resources
from typing import Any

DRAFT = "https://json-schema.org/draft/2020-12/schema"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_JSON_TYPES = {
    "object": "an object",
    "array": "an array",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "null": "null",
}
DESCRIPTIVE = "#/$defs/descriptive"  # a property with this $ref only describes; listed apart from the rest
_UNKNOWN = ("additionalProperties", "unevaluatedProperties")


@cache
def _load_text(name: str) -> str:
    return (resources.files(__name__) / f"{name}.schema.json").read_text(encoding="utf-8")


def load(name: str) -> dict:
    """A fresh copy of the schema `name` (manifest, metrics): callers may fill in parts before use."""
    return json.loads(_load_text(name))


def _is_number(checker, x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _is_integer(checker, x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def validator(schema: dict):
    """A draft 2020-12 validator of `schema` (itself checked against the meta-schema first)."""
    from jsonschema import Draft202012Validator
    from jsonschema.validators import extend

    checker = Draft202012Validator.TYPE_CHECKER.redefine_many({"number": _is_number, "integer": _is_integer})
    Draft202012Validator.check_schema(schema)
    return extend(Draft202012Validator, type_checker=checker)(schema)


def field(path: Iterable) -> str:
    """["crop", "size"] → crop.size; ["rows", 0, "key"] → rows[0].key; odd keys in brackets."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENTIFIER.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part, ensure_ascii=False)}]"
    return out


def type_name(x: Any) -> str:
    """The JSON type of a value read from JSON, with its article."""
    if x is None:
        return "null"
    if isinstance(x, bool):
        return "a boolean"
    if isinstance(x, int):
        return "an integer"
    if isinstance(x, float):
        return "a number" if math.isfinite(x) else "a non-finite number"
    if isinstance(x, str):
        return "a string"
    if isinstance(x, (list, tuple)):
        return "an array"
    if isinstance(x, dict):
        return "an object"
    return f"a Python {type(x).__name__}"


def shown(x: Any, limit: int = 60) -> str:
    """A value as JSON, cut to `limit` characters."""
    try:
        text = json.dumps(x, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(x)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _resolved(schema: Any, root: dict) -> dict:
    """`schema`, following one local `$ref` ("#/$defs/NAME") when it has no description of its own."""
    if not isinstance(schema, dict):
        return {}
    ref = schema.get("$ref")
    if "description" not in schema and isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        return target if isinstance(target, dict) else {}
    return schema


def _expected(error, root: dict) -> str:
    schema, kind, value = error.schema, error.validator, error.validator_value
    if isinstance(schema, dict) and schema.get("description"):
        return schema["description"]
    if kind == "type":
        names = [value] if isinstance(value, str) else list(value)
        return " or ".join(_JSON_TYPES.get(n, n) for n in names)
    if kind == "enum":
        return "one of " + ", ".join(shown(v) for v in value)
    if kind == "const":
        return shown(value)
    if kind in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        op = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}[kind]
        return f"{'an integer' if schema.get('type') == 'integer' else 'a number'} {op} {value}"
    if kind in ("minItems", "maxItems"):
        lo, hi = schema.get("minItems"), schema.get("maxItems")
        if lo is not None and lo == hi:
            return f"exactly {lo} items"
        return f"at least {value} items" if kind == "minItems" else f"at most {value} items"
    if kind == "minLength":
        return "a non-empty string" if value == 1 else f"a string of at least {value} characters"
    if kind == "pattern":
        return f"a string matching {value}"
    return error.message


def describe(error, root: dict) -> str:
    """One ValidationError as `FIELD: expected WHAT, got WHAT` (no field for the document itself)."""
    if error.context:  # anyOf / oneOf: the branch that came closest
        from jsonschema.exceptions import best_match

        return describe(best_match(error.context, key=_relevance()), root)
    path = list(error.absolute_path)
    instance = error.instance
    if error.validator == "required":
        missing = _missing_key(error)
        props = error.schema.get("properties", {})
        prop = _resolved(props.get(missing, error.schema.get("additionalProperties")), root)
        expected = prop.get("description") or _expected_of(prop)
        return _line([*path, missing], expected, "nothing (the key is missing)")
    if error.validator in _UNKNOWN:
        return _unknown(
            path, instance, _known_fields(error.schema, root, error.validator == "unevaluatedProperties")
        )
    if "propertyNames" in error.relative_schema_path:
        name_schema = _resolved(error.schema, root)
        expected = name_schema.get("description") or _expected(error, root)
        return _line(path, f"keys that are {expected}", f"the key {shown(instance)}")
    expected = _expected(error, root)
    actual = f"{type_name(instance)} {shown(instance)}" if error.validator == "type" else shown(instance)
    if instance is None:
        actual = "null"
    return _line(path, expected, actual)


def _known_fields(schema: dict, root: dict, deep: bool) -> dict[str, bool]:
    """The keys an object schema lists, in its order, each → whether it is descriptive. `deep`: also those of
    the subschemas it applies in place (what unevaluatedProperties counts as evaluated)."""
    known = {name: sub.get("$ref") == DESCRIPTIVE for name, sub in schema.get("properties", {}).items()}
    if deep:
        ref = schema.get("$ref")
        subs = [_resolved({"$ref": ref}, root)] if isinstance(ref, str) and ref.startswith("#/") else []
        for word in ("allOf", "anyOf", "oneOf"):
            subs += schema.get(word, [])
        subs += [schema[word] for word in ("then", "else") if isinstance(schema.get(word), dict)]
        for sub in subs:
            known = {**_known_fields(sub, root, True), **known}
    return known


def _unknown(path: list, instance: dict, known: dict[str, bool]) -> str:
    """`unknown field "KEY" in FIELD` (or at the top level), with the closest known key, else all of them."""
    extra = [k for k in instance if k not in known]
    where = f"in {field(path)}" if path else "at the top level"
    line = f"unknown field {shown(extra[0])} {where}; "
    lowered = {name.lower(): name for name in known}
    close = difflib.get_close_matches(extra[0].lower(), list(lowered), n=1, cutoff=0.6)
    if close:
        line += f"did you mean {shown(lowered[close[0]])}?"
    else:
        read = [k for k, descriptive in known.items() if not descriptive]
        described = [k for k, descriptive in known.items() if descriptive]
        line += (
            "known fields: "
            + ", ".join(read)
            + (f" (descriptive: {', '.join(described)})" if described else "")
        )
    if len(extra) > 1:
        line += f" (also unknown: {', '.join(map(shown, extra[1:]))})"
    return line


def _relevance():
    """jsonschema's ranking of errors, with an unknown key first among the errors of its object."""
    from jsonschema.exceptions import by_relevance

    return by_relevance(strong=frozenset(_UNKNOWN))


def _missing_key(error) -> str:
    """The key a `required` error is about: jsonschema reports one error per missing key, naming it only in
    its message ("'size' is a required property")."""
    head = error.message.rsplit(" is a required property", 1)[0]
    try:
        key = ast.literal_eval(head)
    except (ValueError, SyntaxError):
        key = None
    if isinstance(key, str):
        return key
    return next((k for k in error.validator_value if k not in error.instance), str(error.validator_value[0]))


def _expected_of(schema: dict) -> str:
    """What a property's schema asks for, from its keywords (for a key that is missing)."""
    kind = schema.get("type")
    if "const" in schema:
        return shown(schema["const"])
    if "enum" in schema:
        return "one of " + ", ".join(shown(v) for v in schema["enum"])
    if isinstance(kind, str):
        return _JSON_TYPES.get(kind, kind)
    if isinstance(kind, list):
        return " or ".join(_JSON_TYPES.get(n, n) for n in kind)
    return "a value"


def _line(path: list, expected: str, actual: str) -> str:
    where = field(path)
    return f"{where}: expected {expected}, got {actual}" if where else f"expected {expected}, got {actual}"


def _order(error) -> tuple:
    return tuple((0, p) if isinstance(p, int) else (1, str(p)) for p in error.absolute_path)


def problems(check, instance: Any, root: dict) -> list[str]:
    """Every way `instance` fails the validator `check` (of schema `root`), one line each, in field order."""
    return [describe(e, root) for e in sorted(check.iter_errors(instance), key=_order)]


def first_problem(check, instance: Any, root: dict) -> str | None:
    """The most telling way `instance` fails (jsonschema's best match), or None when it is valid."""
    from jsonschema.exceptions import best_match

    error = best_match(check.iter_errors(instance), key=_relevance())
    return None if error is None else describe(error, root)
