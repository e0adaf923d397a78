"""GitHub Actions expressions: `${{ ... }}` templates, `if:` conditions and their functions.

Follows the language described at
https://docs.github.com/en/actions/reference/workflows-and-actions/expressions: literals, context
lookups (case-insensitive), `.prop`, `[index]`, `.*` filters, `! < <= > >= == != && ||`, and the
functions contains, startsWith, endsWith, format, join, toJSON, fromJSON, hashFiles and the status
checks success, failure, cancelled, always.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

STATUS_FUNCTIONS = frozenset({"success", "failure", "cancelled", "always"})


class ExpressionError(ValueError):
    pass


_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>-?(?:0[xX][0-9a-fA-F]+|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?))
  | (?P<string>'(?:[^']|'')*')
  | (?P<ident>[A-Za-z_][A-Za-z0-9_-]*)
  | (?P<op>==|!=|<=|>=|&&|\|\||[<>!()\[\].,*])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    position: int


def _tokenize(source: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(source):
        match = _TOKEN_RE.match(source, position)
        if match is None:
            raise ExpressionError(f"unexpected character {source[position]!r} at {position} in {source!r}")
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(_Token(kind, match.group(), position))
        position = match.end()
    return tokens


# AST nodes are tuples: ("lit", v) ("ctx", name) ("prop", node, name) ("index", node, node)
# ("star", node) ("call", name, [nodes]) ("not", node) ("cmp", op, l, r) ("and", l, r) ("or", l, r)
Node = tuple[Any, ...]


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = _tokenize(source)
        self.index = 0

    def parse(self) -> Node:
        if not self.tokens:
            raise ExpressionError("empty expression")
        node = self._or()
        if self.index != len(self.tokens):
            token = self.tokens[self.index]
            raise ExpressionError(f"unexpected {token.text!r} at {token.position} in {self.source!r}")
        return node

    def _peek(self, text: str | None = None) -> _Token | None:
        if self.index >= len(self.tokens):
            return None
        token = self.tokens[self.index]
        if text is not None and not (token.kind == "op" and token.text == text):
            return None
        return token

    def _expect(self, text: str) -> None:
        if self._peek(text) is None:
            found = self.tokens[self.index].text if self.index < len(self.tokens) else "end"
            raise ExpressionError(f"expected {text!r}, found {found!r} in {self.source!r}")
        self.index += 1

    def _or(self) -> Node:
        node = self._and()
        while self._peek("||"):
            self.index += 1
            node = ("or", node, self._and())
        return node

    def _and(self) -> Node:
        node = self._equality()
        while self._peek("&&"):
            self.index += 1
            node = ("and", node, self._equality())
        return node

    def _equality(self) -> Node:
        node = self._comparison()
        while (token := self._peek()) is not None and token.kind == "op" and token.text in ("==", "!="):
            self.index += 1
            node = ("cmp", token.text, node, self._comparison())
        return node

    def _comparison(self) -> Node:
        node = self._unary()
        while (
            (token := self._peek()) is not None
            and token.kind == "op"
            and token.text in ("<", "<=", ">", ">=")
        ):
            self.index += 1
            node = ("cmp", token.text, node, self._unary())
        return node

    def _unary(self) -> Node:
        if self._peek("!"):
            self.index += 1
            return ("not", self._unary())
        return self._postfix(self._primary())

    def _primary(self) -> Node:
        token = self._peek()
        if token is None:
            raise ExpressionError(f"unexpected end of {self.source!r}")
        self.index += 1
        if token.kind == "number":
            return ("lit", _parse_number(token.text))
        if token.kind == "string":
            return ("lit", token.text[1:-1].replace("''", "'"))
        if token.kind == "ident":
            lowered = token.text.lower()
            if lowered in ("true", "false"):
                return ("lit", lowered == "true")
            if lowered == "null":
                return ("lit", None)
            if self._peek("("):
                self.index += 1
                args: list[Node] = []
                if not self._peek(")"):
                    args.append(self._or())
                    while self._peek(","):
                        self.index += 1
                        args.append(self._or())
                self._expect(")")
                return ("call", token.text.lower(), args)
            return ("ctx", token.text.lower())
        if token.kind == "op" and token.text == "(":
            node = self._or()
            self._expect(")")
            return node
        raise ExpressionError(f"unexpected {token.text!r} at {token.position} in {self.source!r}")

    def _postfix(self, node: Node) -> Node:
        while True:
            if self._peek("."):
                self.index += 1
                token = self._peek()
                if token is None:
                    raise ExpressionError(f"expected a property name after '.' in {self.source!r}")
                self.index += 1
                if token.kind == "op" and token.text == "*":
                    node = ("star", node)
                elif token.kind == "ident":
                    node = ("prop", node, token.text)
                else:
                    raise ExpressionError(f"bad property name {token.text!r} in {self.source!r}")
            elif self._peek("["):
                self.index += 1
                if self._peek("*"):
                    self.index += 1
                    self._expect("]")
                    node = ("star", node)
                else:
                    key = self._or()
                    self._expect("]")
                    node = ("index", node, key)
            else:
                return node


def _parse_number(text: str) -> float:
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("-")
    if body.lower().startswith("0x"):
        return sign * int(body, 16)
    return float(text)


_CACHE: dict[str, Node] = {}


def parse(source: str) -> Node:
    node = _CACHE.get(source)
    if node is None:
        node = _Parser(source).parse()
        if len(_CACHE) < 4096:
            _CACHE[source] = node
    return node


def uses_status_function(node: Node) -> bool:
    if node[0] == "call" and node[1] in STATUS_FUNCTIONS:
        return True
    return any(isinstance(part, tuple) and uses_status_function(part) for part in node[1:]) or any(
        isinstance(part, list) and any(uses_status_function(item) for item in part) for part in node[1:]
    )


# -- values ------------------------------------------------------------------------------------


class _Filtered(list):  # type: ignore[type-arg]
    """The array a `.*` filter yields: a following `.prop` maps over it."""


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    return "array"


def to_number(value: Any) -> float:
    kind = _kind(value)
    if kind == "null":
        return 0.0
    if kind == "bool":
        return 1.0 if value else 0.0
    if kind == "number":
        return float(value)
    if kind == "string":
        text = value.strip()
        if not text:
            return 0.0
        try:
            return _parse_number(text) if re.fullmatch(r"-?0[xX][0-9a-fA-F]+", text) else float(text)
        except ValueError:
            return math.nan
    return math.nan


def truthy(value: Any) -> bool:
    kind = _kind(value)
    if kind == "null":
        return False
    if kind == "bool":
        return bool(value)
    if kind == "number":
        return not (value == 0 or math.isnan(value))
    if kind == "string":
        return value != ""
    return True


def _plain(value: Any) -> Any:
    """JSON-ready copy: integral floats become ints (GitHub prints 3, not 3.0)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) < 1e15 else value
    if isinstance(value, int):
        return value
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    return [_plain(item) for item in value]


def to_json(value: Any) -> str:
    return json.dumps(_plain(value), indent=2, ensure_ascii=False)


def to_string(value: Any) -> str:
    kind = _kind(value)
    if kind == "null":
        return ""
    if kind == "bool":
        return "true" if value else "false"
    if kind == "number":
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        plain = _plain(float(value))
        return str(plain)
    if kind == "string":
        return value
    return to_json(value)


def _equals(left: Any, right: Any) -> bool:
    left_kind, right_kind = _kind(left), _kind(right)
    if left_kind != right_kind:
        return to_number(left) == to_number(right)
    if left_kind == "string":
        return left.upper() == right.upper()
    if left_kind == "number":
        return float(left) == float(right)
    if left_kind in ("null", "bool"):
        return left == right
    return left is right


def _compare(op: str, left: Any, right: Any) -> bool:
    if op == "==":
        return _equals(left, right)
    if op == "!=":
        return not _equals(left, right)
    left_kind, right_kind = _kind(left), _kind(right)
    if left_kind == right_kind == "string":
        a: Any = left.upper()
        b: Any = right.upper()
    elif left_kind in ("object", "array") or right_kind in ("object", "array"):
        return False
    else:
        a, b = to_number(left), to_number(right)
        if math.isnan(a) or math.isnan(b):
            return False
    if op == "<":
        return a < b
    if op == "<=":
        return a <= b
    if op == ">":
        return a > b
    return a >= b


def lookup(container: Any, key: Any) -> Any:
    """Property or index access as GitHub does it: case-insensitive keys, null when absent."""
    if isinstance(container, Mapping):
        if not isinstance(key, str):
            key = to_string(key)
        if key in container:
            return container[key]
        folded = key.lower()
        for name, value in container.items():
            if isinstance(name, str) and name.lower() == folded:
                return value
        return None
    if isinstance(container, (list, tuple)):
        number = to_number(key)
        if math.isnan(number) or not float(number).is_integer():
            return None
        position = int(number)
        return container[position] if 0 <= position < len(container) else None
    return None


# -- evaluation --------------------------------------------------------------------------------


@dataclass
class StatusChecks:
    """What the status functions answer for the step or job being evaluated."""

    success: bool = True
    failure: bool = False
    cancelled: bool = False


HashFiles = Callable[[Sequence[str]], str]


class Evaluator:
    def __init__(
        self,
        contexts: Mapping[str, Any],
        status: StatusChecks | None = None,
        hash_files: HashFiles | None = None,
    ) -> None:
        self.contexts = {name.lower(): value for name, value in contexts.items()}
        self.status = status or StatusChecks()
        self.hash_files = hash_files

    def evaluate(self, source: str) -> Any:
        return self._eval(parse(source))

    def _eval(self, node: Node) -> Any:
        kind = node[0]
        if kind == "lit":
            return node[1]
        if kind == "ctx":
            if node[1] not in self.contexts:
                raise ExpressionError(f"Unrecognized named-value: '{node[1]}'")
            return self.contexts[node[1]]
        if kind == "prop":
            target = self._eval(node[1])
            if isinstance(target, _Filtered):
                return _Filtered(value for item in target if (value := lookup(item, node[2])) is not None)
            return lookup(target, node[2])
        if kind == "index":
            target = self._eval(node[1])
            key = self._eval(node[2])
            if isinstance(target, _Filtered):
                return _Filtered(value for item in target if (value := lookup(item, key)) is not None)
            return lookup(target, key)
        if kind == "star":
            target = self._eval(node[1])
            if isinstance(target, Mapping):
                return _Filtered(target.values())
            if isinstance(target, (list, tuple)):
                return _Filtered(target)
            return _Filtered()
        if kind == "not":
            return not truthy(self._eval(node[1]))
        if kind == "and":
            left = self._eval(node[1])
            return self._eval(node[2]) if truthy(left) else left
        if kind == "or":
            left = self._eval(node[1])
            return left if truthy(left) else self._eval(node[2])
        if kind == "cmp":
            return _compare(node[1], self._eval(node[2]), self._eval(node[3]))
        if kind == "call":
            return self._call(node[1], node[2])
        raise ExpressionError(f"unknown node {kind}")

    def _call(self, name: str, arg_nodes: list[Node]) -> Any:
        if name in STATUS_FUNCTIONS:
            if arg_nodes:
                raise ExpressionError(f"{name}() takes no arguments")
            if name == "always":
                return True
            if name == "cancelled":
                return self.status.cancelled
            if name == "failure":
                return self.status.failure
            return self.status.success
        args = [self._eval(node) for node in arg_nodes]
        if name == "contains":
            _arity(name, args, 2)
            haystack, needle = args
            if isinstance(haystack, (list, tuple)):
                return any(_equals(item, needle) for item in haystack)
            return to_string(needle).upper() in to_string(haystack).upper()
        if name == "startswith":
            _arity(name, args, 2)
            return to_string(args[0]).upper().startswith(to_string(args[1]).upper())
        if name == "endswith":
            _arity(name, args, 2)
            return to_string(args[0]).upper().endswith(to_string(args[1]).upper())
        if name == "format":
            if not args:
                raise ExpressionError("format() needs a format string")
            return _format(to_string(args[0]), [to_string(arg) for arg in args[1:]])
        if name == "join":
            if not 1 <= len(args) <= 2:
                raise ExpressionError("join() takes one or two arguments")
            separator = to_string(args[1]) if len(args) == 2 else ","
            if isinstance(args[0], (list, tuple)):
                return separator.join(to_string(item) for item in args[0])
            return to_string(args[0])
        if name == "tojson":
            _arity(name, args, 1)
            return to_json(args[0])
        if name == "fromjson":
            _arity(name, args, 1)
            try:
                return json.loads(to_string(args[0]))
            except ValueError as exc:
                raise ExpressionError(f"fromJSON: {exc}") from exc
        if name == "hashfiles":
            if self.hash_files is None:
                raise ExpressionError("hashFiles() is only available in steps")
            return self.hash_files([to_string(arg) for arg in args])
        raise ExpressionError(f"Unrecognized function: '{name}'")


def _arity(name: str, args: list[Any], count: int) -> None:
    if len(args) != count:
        raise ExpressionError(f"{name}() takes {count} arguments, {len(args)} given")


def _format(template: str, args: list[str]) -> str:
    out: list[str] = []
    index = 0
    while index < len(template):
        char = template[index]
        if char == "{":
            if template.startswith("{{", index):
                out.append("{")
                index += 2
                continue
            end = template.find("}", index)
            number = template[index + 1 : end] if end != -1 else ""
            if not number.isdigit():
                raise ExpressionError(f"format: bad placeholder in {template!r}")
            position = int(number)
            if position >= len(args):
                raise ExpressionError(f"format: placeholder {{{position}}} has no argument")
            out.append(args[position])
            index = end + 1
        elif char == "}":
            if template.startswith("}}", index):
                out.append("}")
                index += 2
                continue
            raise ExpressionError(f"format: unbalanced '}}' in {template!r}")
        else:
            out.append(char)
            index += 1
    return "".join(out)


# -- templates ---------------------------------------------------------------------------------


def split_template(text: str) -> list[tuple[bool, str]]:
    """[(is_expression, text)] for a string holding `${{ ... }}` parts."""
    parts: list[tuple[bool, str]] = []
    position = 0
    while True:
        start = text.find("${{", position)
        if start == -1:
            if position < len(text):
                parts.append((False, text[position:]))
            return parts
        if start > position:
            parts.append((False, text[position:start]))
        index = start + 3
        in_string = False
        while index < len(text):
            if text[index] == "'":
                in_string = not in_string
            elif not in_string and text.startswith("}}", index):
                break
            index += 1
        else:
            raise ExpressionError(f"unterminated expression in {text!r}")
        parts.append((True, text[start + 3 : index].strip()))
        position = index + 2


def has_expression(value: Any) -> bool:
    return isinstance(value, str) and "${{" in value


def evaluate_template(value: Any, evaluator: Evaluator) -> Any:
    """A YAML value with its expressions evaluated. A string that is exactly one expression keeps
    the expression's type (so `timeout-minutes: ${{ inputs.t }}` can be a number)."""
    if not isinstance(value, str):
        return value
    parts = split_template(value)
    if len(parts) == 1 and parts[0][0]:
        return evaluator.evaluate(parts[0][1])
    return "".join(to_string(evaluator.evaluate(text)) if is_expr else text for is_expr, text in parts)


def interpolate(value: Any, evaluator: Evaluator) -> str:
    return to_string(evaluate_template(value, evaluator))


def evaluate_condition(condition: Any, evaluator: Evaluator) -> bool:
    """An `if:` value. Without a status function the check is `success() && (...)`, as GitHub does."""
    if condition is None:
        return evaluator.evaluate("success()")
    if isinstance(condition, bool):
        return condition and evaluator.evaluate("success()")
    if isinstance(condition, (int, float)):
        return truthy(condition) and evaluator.evaluate("success()")
    text = str(condition).strip()
    if text == "":
        return evaluator.evaluate("success()")
    parts = split_template(text)
    if len(parts) == 1 and parts[0][0]:
        text = parts[0][1]
    elif any(is_expr for is_expr, _ in parts):
        # Text around `${{ }}` makes the whole value a string: GitHub then treats it as truthy.
        return truthy(interpolate(text, evaluator)) and evaluator.evaluate("success()")
    node = parse(text)
    if not uses_status_function(node):
        node = ("and", ("call", "success", []), node)
    return truthy(evaluator._eval(node))
