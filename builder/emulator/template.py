"""A small evaluator for ARM template expressions and parameters, as the emulator's deployments need them.

Expressions (learn.microsoft.com/azure/azure-resource-manager/templates/template-expressions): a string that starts
with ``[`` and ends with ``]`` is an expression; one that starts with ``[[`` is the literal with one ``[`` less;
string arguments are in single quotes, a quote inside doubled (``''``); function names are case-insensitive;
``.prop`` and ``[index]`` select from a result.

Functions: parameters, variables, concat, format, resourceId, resourceGroup, subscription, toLower, uniqueString.
Any other name is an InvalidTemplate error ("The template function 'x' is not valid. Please see
https://aka.ms/arm-template-expressions for usage details.", the text ARM answers in
microsoft/vscode-azurearmtools#531). ``uniqueString`` is deterministic (13 lower-case characters from a SHA-256 of
its arguments) but NOT ARM's hash: do not compare its values with Azure's.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

DOCS = "Please see https://aka.ms/arm-template-expressions for usage details."

# ARM's data types (learn.microsoft.com/azure/azure-resource-manager/templates/data-types, "Supported types"):
# name (lower case) -> (Python check, the type name the emulator reports)
PARAMETER_TYPES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "string": (lambda v: isinstance(v, str), "String"),
    "securestring": (lambda v: isinstance(v, str), "SecureString"),
    "int": (lambda v: isinstance(v, int) and not isinstance(v, bool), "Int"),
    "bool": (lambda v: isinstance(v, bool), "Bool"),
    "object": (lambda v: isinstance(v, dict), "Object"),
    "secureobject": (lambda v: isinstance(v, dict), "SecureObject"),
    "array": (lambda v: isinstance(v, list), "Array"),
}


class TemplateError(Exception):
    """An ARM ``InvalidTemplate`` error; ``message`` is the whole ARM message, ``info`` its additionalInfo path."""

    def __init__(self, detail: str, path: str = "") -> None:
        self.message = f"Deployment template validation failed: '{detail}'."
        self.path = path
        super().__init__(self.message)


@dataclass
class Scope:
    """What the functions see: the deployment's subscription and resource group, parameters and variables."""

    subscription: str
    resource_group: str
    location: str
    parameters: dict[str, Any] = field(default_factory=dict)   # lower-cased name -> value
    variables: dict[str, Any] = field(default_factory=dict)    # lower-cased name -> raw (unevaluated) value
    _evaluated: dict[str, Any] = field(default_factory=dict)
    _evaluating: set[str] = field(default_factory=set)

    def rg_id(self) -> str:
        return f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"


# ------------------------------------------------------------------ parsing

_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
                    r"|(?P<op>[(),.\[\]]))")


def _tokens(text: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if not match:
            raise TemplateError(f"The language expression '{text}' is not valid: unexpected character at "
                                f"position {pos}. {DOCS}")
        pos = match.end()
        kind = match.lastgroup
        value = match.group(kind)
        if kind == "str":
            out.append(("str", value[1:-1].replace("''", "'")))
        elif kind == "num":
            out.append(("num", int(value)))
        else:
            out.append((kind, value))
    return out


class _Parser:
    """Recursive descent over: expr := (STR | NUM | NAME '(' args ')') ('.' NAME | '[' expr ']')*."""

    def __init__(self, text: str, scope: Scope) -> None:
        self.text, self.scope = text, scope
        self.items = _tokens(text)
        self.pos = 0

    def fail(self, why: str) -> TemplateError:
        return TemplateError(f"The language expression '{self.text}' is not valid: {why}. {DOCS}")

    def peek(self) -> tuple[str, Any] | None:
        return self.items[self.pos] if self.pos < len(self.items) else None

    def take(self, kind: str, value: str | None = None) -> Any:
        item = self.peek()
        if item is None or item[0] != kind or (value is not None and item[1] != value):
            raise self.fail(f"expected '{value or kind}'")
        self.pos += 1
        return item[1]

    def run(self) -> Any:
        value = self.expr()
        if self.peek() is not None:
            raise self.fail(f"unexpected '{self.peek()[1]}'")
        return value

    def expr(self) -> Any:
        item = self.peek()
        if item is None:
            raise self.fail("the expression is empty")
        if item[0] in ("str", "num"):
            self.pos += 1
            value = item[1]
        elif item[0] == "name":
            self.pos += 1
            self.take("op", "(")
            args = []
            if self.peek() != ("op", ")"):
                args.append(self.expr())
                while self.peek() == ("op", ","):
                    self.pos += 1
                    args.append(self.expr())
            self.take("op", ")")
            value = call(item[1], args, self.scope)
        else:
            raise self.fail(f"unexpected '{item[1]}'")
        while self.peek() in (("op", "."), ("op", "[")):
            if self.take("op") == ".":
                value = _member(value, self.take("name"))
            else:
                value = _member(value, self.expr())
                self.take("op", "]")
        return value


def _member(value: Any, key: Any) -> Any:
    if isinstance(value, dict) and isinstance(key, str):
        for name, item in value.items():
            if name.lower() == key.lower():
                return item
        raise TemplateError(f"The language expression property '{key}' doesn't exist, available properties are "
                            f"'{', '.join(value)}'. {DOCS}")
    if isinstance(value, list) and isinstance(key, int) and 0 <= key < len(value):
        return value[key]
    raise TemplateError(f"The language expression property '{key}' can't be evaluated. {DOCS}")


# ------------------------------------------------------------------ functions


def _string(args: list[Any], fn: str, index: int = 0) -> str:
    if len(args) <= index or not isinstance(args[index], str):
        raise TemplateError(f"Unable to evaluate template language function '{fn}': argument {index + 1} must be a "
                            f"string. {DOCS}")
    return args[index]


def _parameters(args: list[Any], scope: Scope) -> Any:
    name = _string(args, "parameters")
    if name.lower() not in scope.parameters:
        # ARM's text: Azure/avdaccelerator#553
        raise TemplateError(f"The template parameter '{name}' is not found. Please see "
                            "https://aka.ms/arm-syntax-parameters for usage details.")
    return scope.parameters[name.lower()]


def _variables(args: list[Any], scope: Scope) -> Any:
    name = _string(args, "variables").lower()
    if name in scope._evaluated:
        return scope._evaluated[name]
    if name not in scope.variables:
        raise TemplateError(f"The template variable '{args[0]}' is not found. Please see "
                            "https://aka.ms/arm-syntax-variables for usage details.")
    if name in scope._evaluating:
        raise TemplateError(f"The template variable '{args[0]}' refers to itself. {DOCS}")
    scope._evaluating.add(name)
    try:
        scope._evaluated[name] = evaluate(scope.variables[name], scope)
    finally:
        scope._evaluating.discard(name)
    return scope._evaluated[name]


def _concat(args: list[Any], scope: Scope) -> Any:
    if args and all(isinstance(a, list) for a in args):
        return [item for a in args for item in a]
    if all(isinstance(a, str | int) and not isinstance(a, bool) for a in args):
        return "".join(str(a) for a in args)
    raise TemplateError(f"Unable to evaluate template language function 'concat': all arguments must be strings or "
                        f"all arrays. {DOCS}")


_FORMAT_ITEM = re.compile(r"\{\{|\}\}|\{(\d+)\}|[{}]")


def _format(args: list[Any], scope: Scope) -> str:
    """.NET composite formatting (``{0}``, ``{{``/``}}``); format specifiers such as ``{0:D3}`` are refused."""
    template = _string(args, "format")
    values = args[1:]

    def item(match: re.Match) -> str:
        text = match.group(0)
        if text in ("{{", "}}"):
            return text[0]
        if match.group(1) is None:
            raise TemplateError(f"Unable to evaluate template language function 'format': the format string "
                                f"'{template}' is not valid (the emulator knows only {{N}} items). {DOCS}")
        index = int(match.group(1))
        if index >= len(values):
            raise TemplateError(f"Unable to evaluate template language function 'format': index {index} has no "
                                f"argument. {DOCS}")
        value = values[index]
        return ("True" if value else "False") if isinstance(value, bool) else str(value)

    return _FORMAT_ITEM.sub(item, template)


def resource_id(subscription: str, resource_group: str, rtype: str, names: list[str]) -> str:
    """``/subscriptions/{sub}/resourceGroups/{rg}/providers/{ns}/{type}/{name}[/{type2}/{name2}...]``."""
    parts = rtype.split("/")
    if len(parts) < 2 or len(names) != len(parts) - 1:
        raise TemplateError(f"Unable to evaluate template language function 'resourceId': the type '{rtype}' "
                            f"requires {max(len(parts) - 1, 1)} resource name argument(s). {DOCS}")
    path = "/".join(f"{t}/{n}" for t, n in zip(parts[1:], names, strict=True))
    return f"/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/{parts[0]}/{path}"


def _resource_id(args: list[Any], scope: Scope) -> str:
    """resourceId([subscriptionId], [resourceGroupName], resourceType, resourceName1, [resourceName2], ...):
    learn.microsoft.com/azure/azure-resource-manager/templates/template-functions-resource#resourceid."""
    if len(args) < 2 or not all(isinstance(a, str) for a in args):
        raise TemplateError(f"Unable to evaluate template language function 'resourceId': all function arguments "
                            f"must be strings, at least a type and a name. {DOCS}")
    type_at = next((i for i, a in enumerate(args) if "/" in a), None)
    if type_at is None or type_at > 2:
        raise TemplateError(f"Unable to evaluate template language function 'resourceId': no resource type "
                            f"(namespace/type) among the first three arguments. {DOCS}")
    sub, rg = scope.subscription, scope.resource_group
    if type_at == 1:
        rg = args[0]
    elif type_at == 2:
        sub, rg = args[0], args[1]
    return resource_id(sub, rg, args[type_at], args[type_at + 1:])


def _resource_group(args: list[Any], scope: Scope) -> dict[str, Any]:
    # the returned object's shape: template-functions-resource#resourcegroup ("Return value")
    return {"id": scope.rg_id(), "name": scope.resource_group, "type": "Microsoft.Resources/resourceGroups",
            "location": scope.location, "properties": {"provisioningState": "Succeeded"}}


def _subscription(args: list[Any], scope: Scope) -> dict[str, Any]:
    return {"id": f"/subscriptions/{scope.subscription}", "subscriptionId": scope.subscription}


def _to_lower(args: list[Any], scope: Scope) -> str:
    return _string(args, "toLower").lower()


def _unique_string(args: list[Any], scope: Scope) -> str:
    """13 characters like ARM's, but from SHA-256 (not ARM's hash)."""
    if not args or not all(isinstance(a, str) for a in args):
        raise TemplateError(f"Unable to evaluate template language function 'uniqueString': all arguments must be "
                            f"strings. {DOCS}")
    digest = hashlib.sha256("\x00".join(args).encode()).digest()
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    return "".join(alphabet[b % 32] for b in digest[:13])


FUNCTIONS: dict[str, Callable[[list[Any], Scope], Any]] = {
    "parameters": _parameters, "variables": _variables, "concat": _concat, "format": _format,
    "resourceid": _resource_id, "resourcegroup": _resource_group, "subscription": _subscription,
    "tolower": _to_lower, "uniquestring": _unique_string,
}


def call(name: str, args: list[Any], scope: Scope) -> Any:
    function = FUNCTIONS.get(name.lower())
    if function is None:
        raise TemplateError(f"The template function '{name}' is not valid. {DOCS}")
    return function(args, scope)


# ------------------------------------------------------------------ evaluation


def evaluate(value: Any, scope: Scope) -> Any:
    """``value`` with every expression string replaced by its result (dicts and lists walked)."""
    if isinstance(value, dict):
        return {k: evaluate(v, scope) for k, v in value.items()}
    if isinstance(value, list):
        return [evaluate(v, scope) for v in value]
    if isinstance(value, str) and value.startswith("[[") and value.endswith("]"):
        return value[1:]
    if isinstance(value, str) and value.startswith("[") and value.endswith("]"):
        return _Parser(value[1:-1], scope).run()
    return value


def _type_name(value: Any) -> str:
    for check, name in (PARAMETER_TYPES["bool"], PARAMETER_TYPES["int"], PARAMETER_TYPES["string"],
                        PARAMETER_TYPES["object"], PARAMETER_TYPES["array"]):
        if check(value):
            return name
    return "Null" if value is None else type(value).__name__


def bind_parameters(definitions: Any, supplied: Any, scope: Scope) -> dict[str, Any]:
    """Check the deployment's parameter values against the template's definitions; fill ``scope.parameters``.

    Errors as ARM words them (InvalidTemplate): unknown names (microsoft/MCW-Cloud-native-applications#181,
    radius-project/radius#6844), a missing value (Azure/SimuLand#39: path ``parameters.<name>``), a value outside
    ``allowedValues`` (Azure/azure-quickstart-templates#760). ARM quotes a line and column; the emulator, which
    does not keep positions, says line '0' and column '0'. The wording of the type error is the emulator's own.
    """
    definitions = definitions or {}
    supplied = supplied or {}
    if not isinstance(definitions, dict) or not isinstance(supplied, dict):
        raise TemplateError(f"The template 'parameters' and the deployment's parameters must be objects. {DOCS}")
    known = {name.lower(): name for name in definitions}
    unknown = [name for name in supplied if name.lower() not in known]
    if unknown:
        raise TemplateError(f"The template parameters '{', '.join(unknown)}' in the parameters file are not valid; "
                            "they are not present in the original template and can therefore not be provided at "
                            "deployment time. The only supported parameters for this template are "
                            f"'{', '.join(definitions)}'. Please see https://aka.ms/arm-pass-parameter-values for "
                            "usage details.", "")
    given = {name.lower(): entry for name, entry in supplied.items()}
    for name, definition in definitions.items():
        if not isinstance(definition, dict) or not isinstance(definition.get("type"), str):
            raise TemplateError(f"The template parameter '{name}' has no 'type'. Please see "
                                "https://aka.ms/arm-syntax-parameters for usage details.", f"parameters.{name}")
        ptype = definition["type"].lower()
        if ptype not in PARAMETER_TYPES:
            raise TemplateError(f"The template parameter '{name}' has an invalid type '{definition['type']}'. "
                                "Please see https://aka.ms/arm-syntax-parameters for usage details.",
                                f"parameters.{name}")
        entry = given.get(name.lower())
        if entry is not None:
            if not isinstance(entry, dict) or "value" not in entry:
                raise TemplateError(f"The value of deployment parameter '{name}' must be an object with 'value' "
                                    "(Key Vault references are not emulated).", f"parameters.{name}")
            value = entry["value"]
        elif "defaultValue" in definition:
            value = evaluate(definition["defaultValue"], scope)
        else:
            raise TemplateError(f"The value for the template parameter '{name}' at line '0' and column '0' is not "
                                "provided. Please see https://aka.ms/arm-create-parameter-file for usage details.",
                                f"properties.template.parameters.{name}")
        check, expected = PARAMETER_TYPES[ptype]
        if not check(value):
            raise TemplateError(f"The provided value for the template parameter '{name}' is not valid: expected a "
                                f"value of type '{expected}', got '{_type_name(value)}'. Please see "
                                "https://aka.ms/arm-syntax-parameters for usage details.", f"parameters.{name}")
        allowed = definition.get("allowedValues")
        if isinstance(allowed, list) and value not in allowed:
            raise TemplateError(f"The provided value '{value}' for the template parameter '{name}' at line '0' and "
                                "column '0' is not valid. The parameter value is not part of the allowed value(s): "
                                f"'{','.join(str(a) for a in allowed)}'.", f"parameters.{name}")
        scope.parameters[name.lower()] = value
    return {known[k]: v for k, v in scope.parameters.items()}
