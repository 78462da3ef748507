"""A small subset of REDCap's logic syntax, as the fake's ``filterLogic`` understands it.

REDCap evaluates ``filterLogic`` (e.g. ``[age] > 30``) per row and returns the records, or the
record-events of a longitudinal project, where it is TRUE; bad syntax is an error. Supported here:
``[field]`` references, numbers, quoted strings (``'...'`` or ``"..."``), the comparisons
``= <> != < <= > >=``, ``and``, ``or`` and parentheses. A comparison is numeric when both sides
are numbers (a blank is not a number) and textual otherwise, as PHP compares them. Anything else
(functions, smart variables, ``[event][field]``) is rejected with :class:`LogicError`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

_TOKEN = re.compile(
    r"\s*(?:(?P<field>\[[a-z][a-z0-9_]*\])|(?P<number>-?\d+(?:\.\d+)?)"
    r"|(?P<string>'[^']*'|\"[^\"]*\")|(?P<op><>|!=|<=|>=|=|<|>)|(?P<paren>[()])"
    r"|(?P<word>[A-Za-z_]+))",
    re.IGNORECASE,
)

Predicate = Callable[[Mapping[str, str]], bool]


class LogicError(ValueError):
    """The logic is not in the supported subset (REDCap answers 400)."""


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str


def _tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise LogicError(f"unexpected text at {pos}")
        kind = m.lastgroup or ""
        out.append(_Tok(kind, m.group(kind)))
        pos = m.end()
    return out


def _number(value: str) -> float | None:
    try:
        return float(value) if value.strip() != "" else None
    except ValueError:
        return None


def _compare(left: str, op: str, right: str) -> bool:
    a, b = _number(left), _number(right)
    x: float | str
    y: float | str
    x, y = (a, b) if a is not None and b is not None else (left, right)
    if op == "=":
        return x == y
    if op in ("<>", "!="):
        return x != y
    if op == "<":
        return x < y  # type: ignore[operator]
    if op == "<=":
        return x <= y  # type: ignore[operator]
    if op == ">":
        return x > y  # type: ignore[operator]
    return x >= y  # type: ignore[operator]


class _Parser:
    def __init__(self, tokens: list[_Tok]) -> None:
        self.toks = tokens
        self.i = 0

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise LogicError("the logic ends too early")
        self.i += 1
        return tok

    def expr(self) -> Predicate:
        left = self.conj()
        while (tok := self.peek()) is not None and tok.kind == "word" and tok.text.lower() == "or":
            self.take()
            right = self.conj()
            left = (lambda a, b: lambda row: a(row) or b(row))(left, right)
        return left

    def conj(self) -> Predicate:
        left = self.atom()
        while (tok := self.peek()) is not None and tok.kind == "word" and tok.text.lower() == "and":
            self.take()
            right = self.atom()
            left = (lambda a, b: lambda row: a(row) and b(row))(left, right)
        return left

    def atom(self) -> Predicate:
        tok = self.peek()
        if tok is not None and tok.kind == "paren" and tok.text == "(":
            self.take()
            inner = self.expr()
            close = self.take()
            if close.text != ")":
                raise LogicError("a parenthesis is not closed")
            return inner
        left = self.operand()
        op = self.take()
        if op.kind != "op":
            raise LogicError(f"expected a comparison, got {op.text!r}")
        right = self.operand()
        return lambda row: _compare(left(row), op.text, right(row))

    def operand(self) -> Callable[[Mapping[str, str]], str]:
        tok = self.take()
        if tok.kind == "field":
            name = tok.text[1:-1]
            return lambda row: str(row.get(name, ""))
        if tok.kind == "number":
            return lambda row: tok.text
        if tok.kind == "string":
            return lambda row: tok.text[1:-1]
        raise LogicError(f"unexpected {tok.text!r}")


def compile_logic(text: str) -> tuple[Predicate, set[str]]:
    """A predicate over a row's values, and the field names the logic reads."""
    tokens = _tokens(text)
    if not tokens:
        raise LogicError("empty logic")
    parser = _Parser(tokens)
    predicate = parser.expr()
    if parser.peek() is not None:
        raise LogicError(f"unexpected {parser.peek().text!r}")  # type: ignore[union-attr]
    names = {t.text[1:-1] for t in tokens if t.kind == "field"}
    return predicate, names
