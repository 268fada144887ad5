"""Canonical HCL layout (`yurt fmt`, and the job renderer's output).

Rules, as `nomad fmt` / `terraform fmt` apply them: two spaces of indent per nesting
level; one space around `=` in attributes, with the `=` of consecutive single-line
attributes aligned; `name "label" {` with one space before the brace; runs of blank
lines collapsed to one (so at most one blank line between blocks; like `nomad fmt`, none
is added); single spaces between the tokens of a one-line value (`[ "a" ,"b" ]` ->
`["a", "b"]`, `{a=1}` -> `{ a = 1 }`); no trailing spaces; one final newline.
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
        key, value = match.group(1), normalize_expression(match.group(2))
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


_OPEN_TIGHT, _CLOSE_TIGHT = "([", ")]"


def normalize_expression(text: str) -> str:
    """Canonical spacing between the tokens of one line of an expression; strings,
    heredoc markers and a trailing comment are kept as written."""
    chunks = _split_code_and_strings(text)
    if chunks is None:  # an unterminated string or bracket: leave the line alone
        return text.strip()
    comment = chunks.pop()[1] if chunks and chunks[-1][0] == "comment" else ""
    joined = "".join(_space_code(chunk) if kind == "code" else chunk for kind, chunk in chunks).strip()
    return f"{joined} {comment}" if comment else joined


def _space_code(code: str) -> str:
    code = re.sub(r"\s+", " ", code)
    code = re.sub(r"\s*,\s*", ", ", code)
    code = re.sub(r"\s*(==|!=|<=|>=|&&|\|\||=>)\s*", r" \1 ", code)
    code = re.sub(r"(?<![=!<>])\s*=\s*(?![=>])", " = ", code)
    code = re.sub(r"\s*([?:])\s*", r" \1 ", code)
    code = re.sub(r"\{\s*", "{ ", code)
    code = re.sub(r"\s*\}", " }", code)
    for opener in _OPEN_TIGHT:  # only code is touched: string chunks never come here
        code = code.replace(opener + " ", opener)
    for closer in _CLOSE_TIGHT:
        code = code.replace(" " + closer, closer)
    return re.sub(r"\{\s*\}", "{}", code).replace(" ,", ",")


def _split_code_and_strings(text: str) -> list[tuple[str, str]] | None:
    chunks: list[tuple[str, str]] = []
    i, start = 0, 0
    while i < len(text):
        ch = text[i]
        if ch == '"':
            if i > start:
                chunks.append(("code", text[start:i]))
            end = _string_end(text, i + 1)
            if end is None:
                return None
            chunks.append(("string", text[i:end + 1]))
            i = start = end + 1
            continue
        if ch == "#" or text.startswith("//", i) or text.startswith("<<", i):
            if i > start:
                chunks.append(("code", text[start:i]))
            chunks.append(("comment" if ch in "#/" else "string", text[i:].rstrip()))
            return chunks
        i += 1
    if start < len(text):
        chunks.append(("code", text[start:]))
    return chunks


def _string_end(text: str, i: int) -> int | None:
    """The index of the quote closing a string that starts before `i` (templates nest)."""
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == '"':
            return i
        if text.startswith("${", i) or text.startswith("%{", i):
            i = _template_end(text, i + 2)
            if i is None:
                return None
        i += 1
    return None


def _template_end(text: str, i: int) -> int | None:
    depth = 1
    while i < len(text):
        ch = text[i]
        if ch == '"':
            end = _string_end(text, i + 1)
            if end is None:
                return None
            i = end
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None
