"""Canonical HCL layout (`yurt fmt`, and the job renderer's output).

Rules, as `nomad fmt` / `terraform fmt` apply them: two spaces of indent per nesting
level; one space around `=` in attributes, with the `=` of consecutive single-line
attributes aligned; `name "label" {` with one space before the brace; runs of blank
lines collapsed to one; one blank line
between a block and the item after it; no trailing spaces; one final newline.
Heredoc bodies and `/* */` comments are kept as written. Comments are kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ATTRIBUTE = re.compile(r'^([A-Za-z_][\w-]*|"[^"]*")\s*=(?![=>])\s*(.*)$')
_BLOCK_OPEN = re.compile(r'^([A-Za-z_][\w-]*)((?:\s+(?:"(?:[^"\\]|\\.)*"|[A-Za-z_][\w-]*))*)\s*\{\s*$')
_HEREDOC = re.compile(r"<<-?([A-Za-z][\w.-]*)\s*$")
_OPENERS, _CLOSERS = "([{", ")]}"


@dataclass
class _Line:
    text: str             # stripped content ("" = blank)
    depth: int            # indent level
    kind: str             # blank attr block_open close comment cont raw
    key: str = ""         # attribute name (for alignment)
    value: str = ""       # attribute value text
    complete: bool = True  # the attribute's value ends on this line


class _Scanner:
    """Tracks brackets, strings, heredocs and block comments across lines."""

    def __init__(self) -> None:
        self.stack: list[str] = []
        self.heredoc: str | None = None
        self.in_comment = False

    def scan(self, text: str) -> tuple[int, int]:
        """Update state for one line; returns (closers at the start, net depth change)."""
        leading = 0
        for ch in text:
            if ch in _CLOSERS:
                leading += 1
            elif not ch.isspace():
                break
        before = self.depth
        i, in_string = 0, False
        while i < len(text):
            ch = text[i]
            if self.in_comment:
                if text.startswith("*/", i):
                    self.in_comment = False
                    i += 1
            elif in_string:
                if ch == "\\":
                    i += 1
                elif ch == '"':
                    in_string = False
            elif ch == '"':
                in_string = True
            elif ch == "#" or text.startswith("//", i):
                break
            elif text.startswith("/*", i):
                self.in_comment = True
                i += 1
            elif ch in _OPENERS:
                self.stack.append(ch)
            elif ch in _CLOSERS and self.stack:
                self.stack.pop()
            i += 1
        match = _HEREDOC.search(text)
        if match and not in_string:
            self.heredoc = match.group(1)
        return leading, self.depth - before

    @property
    def depth(self) -> int:
        return len(self.stack)

    def in_object(self) -> bool:
        """Inside an object literal or a block body (where attributes may appear)."""
        return not self.stack or self.stack[-1] == "{"


def format_hcl(text: str) -> str:
    lines = _classify(text.replace("\r\n", "\n").split("\n"))
    lines = _blank_lines(lines)
    _align(lines)
    out = []
    for line in lines:
        if line.kind == "raw":
            out.append(line.text)
        elif line.kind == "blank":
            out.append("")
        else:
            out.append("  " * line.depth + line.text)
    return "\n".join(out).rstrip("\n") + "\n"


def _classify(raw_lines: list[str]) -> list[_Line]:
    scanner = _Scanner()
    lines: list[_Line] = []
    open_attr_depth: int | None = None  # scanner depth where an unfinished attribute began
    for raw in raw_lines:
        if scanner.heredoc is not None:  # inside a heredoc: keep the line as it is
            lines.append(_Line(raw, 0, "raw"))
            if raw.strip() == scanner.heredoc:
                scanner.heredoc = None
            continue
        if scanner.in_comment:
            lines.append(_Line(raw.rstrip(), 0, "raw"))
            scanner.scan(raw)
            continue
        text = raw.strip()
        depth_before, in_object = scanner.depth, scanner.in_object()
        leading, _ = scanner.scan(text)
        line = _line(text, max(0, depth_before - leading), in_object)
        if line.kind == "attr":
            line.complete = scanner.depth <= depth_before
        if open_attr_depth is not None and line.kind != "attr" and line.kind not in ("blank", "comment"):
            line.kind = "cont"  # includes the bracket that closes the value
        if line.kind == "attr" and not line.complete and open_attr_depth is None:
            open_attr_depth = depth_before
        if open_attr_depth is not None and scanner.depth <= open_attr_depth:
            open_attr_depth = None
        lines.append(line)
    return lines


def _line(text: str, depth: int, in_object: bool) -> _Line:
    if not text:
        return _Line("", depth, "blank")
    if text.startswith(("#", "//", "/*")):
        return _Line(text, depth, "comment")
    if text[0] in _CLOSERS:
        return _Line(text, depth, "close")
    match = _ATTRIBUTE.match(text) if in_object else None
    if match:
        key, value = match.group(1), match.group(2)
        return _Line(f"{key} = {value}", depth, "attr", key, value)
    block = _BLOCK_OPEN.match(text) if in_object else None
    if block:
        labels = " ".join(block.group(2).split())
        head = f"{block.group(1)} {labels}".strip()
        return _Line(f"{head} {{", depth, "block_open")
    return _Line(text, depth, "other")


def _blank_lines(lines: list[_Line]) -> list[_Line]:
    out: list[_Line] = []
    for line in lines:
        if line.kind == "blank":
            if not out or out[-1].kind == "blank":
                continue
        elif out and out[-1].kind == "close" and out[-1].text == "}" and \
                line.kind not in ("close", "cont", "raw") and line.depth == out[-1].depth:
            out.append(_Line("", line.depth, "blank"))  # one blank line after a block
        out.append(line)
    while out and out[-1].kind == "blank":
        out.pop()
    return out


def _align(lines: list[_Line]) -> None:
    run: list[_Line] = []
    for line in lines + [_Line("", 0, "blank")]:
        if line.kind == "attr" and (not run or run[-1].depth == line.depth and run[-1].complete):
            run.append(line)
            continue
        _align_run(run)
        run = [line] if line.kind == "attr" else []


def _align_run(run: list[_Line]) -> None:
    width = max((len(l.key) for l in run), default=0)
    for line in run:
        line.text = f"{line.key.ljust(width)} = {line.value}".rstrip()
