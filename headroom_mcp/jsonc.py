"""Edit JSON and JSONC (``//`` and ``/* */`` comments, trailing commas) as text, in place.

Agent configs are the user's files: re-serialising one would drop its comments and
re-indent every entry we did not touch, and a later uninstall could not give the bytes
back. So ``update`` parses the text once, keeping where every value starts and ends, and
splices only what differs between the old value and the new one: a changed value is
replaced, a new key or item is appended after the last one (in the container's own
indentation), a dropped one is cut out with its comma. Inserting and then deleting the
same key gives the original text back byte for byte.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_LITERALS = {"true": True, "false": False, "null": None}
_STRING = json.decoder.scanstring  # type: ignore[attr-defined]


class JsoncError(ValueError):
    """The text is not JSON, even allowing comments and trailing commas."""


@dataclass
class Entry:
    """One member of an object (``key`` set) or item of an array: where it starts, ends, and its comma."""

    start: int  # the key's opening quote, or the item's first character
    node: Node
    key: str | None = None
    comma: int | None = None  # the comma after it, if any


@dataclass
class Node:
    """A value and its span ``[start, end)`` in the text; containers list their entries."""

    start: int
    end: int
    value: Any
    entries: list[Entry] = field(default_factory=list)
    container: bool = False


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, message: str, pos: int | None = None) -> JsoncError:
        at = self.pos if pos is None else pos
        line = self.text.count("\n", 0, at) + 1
        column = at - (self.text.rfind("\n", 0, at) + 1) + 1
        return JsoncError(f"{message} at line {line} column {column}")

    def skip(self) -> None:
        """Past whitespace and comments."""
        text, n = self.text, len(self.text)
        while self.pos < n:
            c = text[self.pos]
            if c in " \t\r\n\ufeff":
                self.pos += 1
            elif text.startswith("//", self.pos):
                end = text.find("\n", self.pos)
                self.pos = n if end < 0 else end
            elif text.startswith("/*", self.pos):
                end = text.find("*/", self.pos + 2)
                if end < 0:
                    raise self.fail("unclosed /* comment")
                self.pos = end + 2
            else:
                return

    def value(self) -> Node:
        self.skip()
        start, text = self.pos, self.text
        if start >= len(text):
            raise self.fail("unexpected end of text")
        c = text[start]
        if c in "{[":
            return self.container(c)
        if c == '"':
            try:
                value, self.pos = _STRING(text, start + 1, True)
            except ValueError as exc:
                raise self.fail(f"bad string ({exc.args[0].split(':')[0]})", start) from None
            return Node(start, self.pos, value)
        for word, literal in _LITERALS.items():
            if text.startswith(word, start):
                self.pos = start + len(word)
                return Node(start, self.pos, literal)
        number = _NUMBER.match(text, start)
        if number:
            self.pos = number.end()
            raw = number.group()
            return Node(start, self.pos, float(raw) if any(ch in raw for ch in ".eE") else int(raw))
        raise self.fail(f"unexpected character {c!r}")

    def container(self, opener: str) -> Node:
        closer = "}" if opener == "{" else "]"
        node = Node(self.pos, self.pos, {} if opener == "{" else [], container=True)
        self.pos += 1
        while True:
            self.skip()
            if self.pos < len(self.text) and self.text[self.pos] == closer:
                self.pos += 1
                node.end = self.pos
                return node
            if node.entries and node.entries[-1].comma is None:
                raise self.fail(f"expected ',' or {closer!r}")
            start = self.pos
            key = None
            if opener == "{":
                if self.pos >= len(self.text) or self.text[self.pos] != '"':
                    raise self.fail("expected a double-quoted key")
                key = self.value().value
                self.skip()
                if self.pos >= len(self.text) or self.text[self.pos] != ":":
                    raise self.fail("expected ':'")
                self.pos += 1
            entry = Entry(start, self.value(), key)
            node.entries.append(entry)
            if key is None:
                node.value.append(entry.node.value)
            else:
                node.value[key] = entry.node.value
            self.skip()
            if self.pos < len(self.text) and self.text[self.pos] == ",":
                entry.comma = self.pos
                self.pos += 1


def parse(text: str) -> Node:
    """The document's root value with every span; raises ``JsoncError`` on anything else."""
    parser = _Parser(text)
    root = parser.value()
    parser.skip()
    if parser.pos != len(text):
        raise parser.fail("unexpected text after the value")
    return root


def loads(text: str) -> Any:
    """The value of a JSON or JSONC text."""
    return parse(text).value


def same(a: Any, b: Any) -> bool:
    """Equal as JSON (``1`` is not ``true``, key order does not matter)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


# ---- splicing ------------------------------------------------------------------------------

def _line_start(text: str, pos: int) -> int:
    return text.rfind("\n", 0, pos) + 1


def _indent_of(text: str, pos: int) -> str:
    """The whitespace that opens the line holding ``pos``."""
    start = _line_start(text, pos)
    return text[start: start + len(text[start:pos]) - len(text[start:pos].lstrip(" \t"))]


def _unit(text: str) -> str:
    """The file's indentation step: that of its first indented line (two spaces if none)."""
    found = re.search(r"\n([ \t]+)\S", text)
    return found.group(1) if found else "  "


def _tail(text: str, pos: int, floor: int) -> int:
    """Walking back from ``pos`` over whitespace only (comments count as content), not past ``floor``."""
    while pos > floor and text[pos - 1] in " \t\r\n":
        pos -= 1
    return pos


def _render(value: Any, indent: str, unit: str, multiline: bool) -> str:
    if not multiline:
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value, indent=unit, ensure_ascii=False).replace("\n", "\n" + indent)


def _entry_text(key: str | None, value: str) -> str:
    return value if key is None else f"{json.dumps(key, ensure_ascii=False)}: {value}"


def _splice(text: str, edits: list[tuple[int, int, str]]) -> str:
    for start, end, new in sorted(edits, key=lambda e: e[0], reverse=True):
        text = text[:start] + new + text[end:]
    return text


def _append(text: str, node: Node, key: str | None, value: Any) -> str:
    close = node.end - 1
    unit = _unit(text)
    multiline = "\n" in text[node.start:node.end] or (not node.entries and "\n" in text)
    if not node.entries:
        indent = _indent_of(text, node.start) + unit
        entry = _entry_text(key, _render(value, indent, unit, multiline))
        if text[node.start + 1:close].strip():  # only comments inside: keep them, add after
            at = _tail(text, close, node.start + 1)
            return _splice(text, [(at, at, ("\n" + indent if multiline else " ") + entry)])
        closing = "\n" + _indent_of(text, node.start) if multiline else ""
        return _splice(text, [(node.start + 1, close, ("\n" + indent if multiline else "") + entry + closing)])
    last = node.entries[-1]
    line_start = _line_start(text, last.start)
    indent = (_indent_of(text, last.start) if not text[line_start:last.start].strip()
              else _indent_of(text, node.start) + unit)
    entry = _entry_text(key, _render(value, indent, unit, multiline))
    trailing = last.comma is not None
    body = ("\n" + indent if multiline else " ") + entry + ("," if trailing else "")
    at = _tail(text, close, last.node.end)
    if trailing:
        return _splice(text, [(at, at, body)])
    if at == last.node.end:
        return _splice(text, [(at, at, "," + body)])
    return _splice(text, [(last.node.end, last.node.end, ","), (at, at, body)])


def _delete(text: str, node: Node, index: int) -> str:
    entries = node.entries
    entry = entries[index]
    end = entry.comma + 1 if entry.comma is not None else entry.node.end
    close = node.end - 1
    if len(entries) == 1:
        rest = text[node.start + 1:entry.start] + text[end:close]
        if not rest.strip():
            return _splice(text, [(node.start + 1, close, "")])
    begin = _tail(text, entry.start, node.start + 1)
    edits = [(begin, end, "")]
    if index == len(entries) - 1 and index > 0 and entry.comma is None:
        previous = entries[index - 1].comma
        assert previous is not None  # the parser requires a comma between entries
        edits.append((previous, previous + 1, ""))
    return _splice(text, edits)


def _replace(text: str, node: Node, value: Any, multiline: bool) -> str:
    rendered = _render(value, _indent_of(text, node.start), _unit(text), multiline)
    return _splice(text, [(node.start, node.end, rendered)])


def _find(root: Node, path: tuple[Any, ...]) -> Node:
    node = root
    for step in path:
        node = next(e.node for i, e in enumerate(node.entries) if (e.key if e.key is not None else i) == step)
    return node


def _ops(path: tuple[Any, ...], old: Any, new: Any) -> Iterator[tuple[str, tuple[Any, ...], Any]]:
    """The edits that turn ``old`` into ``new``, each naming the path it applies at when its turn comes."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in old:
            if key not in new:
                yield "delete", path + (key,), None
        for key, value in new.items():
            if key not in old:
                yield "append", path, (key, value)
            elif not same(old[key], value):
                yield from _ops(path + (key,), old[key], value)
        return
    if isinstance(old, list) and isinstance(new, list):
        # Keep the old items that stay (in order), edit in place an item that only changed,
        # cut the ones that went, then append the new ones.
        nested, dropped, j = [], [], 0
        for i, item in enumerate(old):
            if j < len(new) and same(item, new[j]):
                j += 1
            elif (j < len(new) and type(item) is type(new[j]) and isinstance(item, (dict, list))
                  and not any(same(item, later) for later in new[j + 1:])
                  and not any(same(new[j], later) for later in old[i + 1:])):
                nested.append((i, item, new[j]))
                j += 1
            else:
                dropped.append(i)
        for i, item, value in nested:
            yield from _ops(path + (i,), item, value)
        for i in reversed(dropped):
            yield "delete", path + (i,), None
        for value in new[j:]:
            yield "append", path, (None, value)
        return
    yield "replace", path, new


def update(text: str, new: Any) -> str:
    """``text`` edited in place to hold ``new``: comments and untouched entries stay byte for byte."""
    root = parse(text)
    if same(root.value, new):
        return text
    for op, path, arg in list(_ops((), root.value, new)):
        root = parse(text)
        if op == "delete":
            parent = _find(root, path[:-1])
            index = next(i for i, e in enumerate(parent.entries) if (e.key if e.key is not None else i) == path[-1])
            text = _delete(text, parent, index)
        elif op == "append":
            text = _append(text, _find(root, path), arg[0], arg[1])
        elif path:
            parent = _find(root, path[:-1])
            text = _replace(text, _find(root, path), arg, "\n" in text[parent.start:parent.end])
        else:
            text = json.dumps(arg, indent=_unit(text), ensure_ascii=False) + ("\n" if text.endswith("\n") else "")
    return text
