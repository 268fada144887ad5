"""Go text/template lexer: text and actions, with positions, trim markers and comments.

Tokens carry their byte offset in the source (for `name:line:col` in execution errors)
and their line (for `name:line` in parse errors), as Go's `text/template/parse` does.
"""

import re
from dataclasses import dataclass

KEYWORDS = {"block", "break", "continue", "define", "else", "end", "if", "range", "nil", "template", "with"}
_SPACE = " \t\r\n"


class LexError(Exception):
    def __init__(self, message: str, line: int):
        super().__init__(message)
        self.line = line


@dataclass(frozen=True)
class Token:
    kind: str  # text left right space field var ident keyword bool string raw char number
    # ( ) | , := = . eof
    value: str
    pos: int
    line: int


_NUMBER = re.compile(
    r"[+-]?(?:0[xX][0-9a-fA-F_]+(?:\.[0-9a-fA-F_]*)?(?:[pP][+-]?\d+)?"
    r"|0[bB][01_]+|0[oO][0-7_]+"
    r"|(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d+)?)i?"
)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')
_CHAR = re.compile(r"'(?:[^'\\\n]|\\.)+'")


class Lexer:
    def __init__(self, text: str, left: str = "{{", right: str = "}}"):
        self.text = text
        self.left = left or "{{"
        self.right = right or "}}"
        self.tokens: list[Token] = []

    def line_at(self, pos: int) -> int:
        return self.text.count("\n", 0, pos) + 1

    def emit(self, kind: str, value: str, pos: int) -> None:
        self.tokens.append(Token(kind, value, pos, self.line_at(pos)))

    def run(self) -> list[Token]:
        pos = 0
        text, left = self.text, self.left
        while True:
            start = text.find(left, pos)
            if start < 0:
                if pos < len(text):
                    self.emit("text", text[pos:], pos)
                break
            inner = start + len(left)
            trim = text.startswith("-", inner) and inner + 1 < len(text) and text[inner + 1] in _SPACE
            chunk = text[pos:start]
            if trim:
                chunk = chunk.rstrip(_SPACE)
            if chunk:
                self.emit("text", chunk, pos)
            if trim:
                inner += 2
            pos = self.lex_action(start, inner)
        self.emit("eof", "", len(text))
        return self.tokens

    def right_delim_at(self, pos: int) -> tuple[bool, bool]:
        """(at a right delimiter, with a trim marker) at pos, skipping spaces for the trim form."""
        text = self.text
        if text.startswith(self.right, pos):
            return True, False
        if text[pos : pos + 1] in tuple(_SPACE) and pos + 1 < len(text):
            probe = pos
            while probe < len(text) and text[probe] in _SPACE:
                probe += 1
            if text.startswith("-" + self.right, probe):
                return True, True
        return False, False

    def after_right(self, pos: int, trim: bool) -> int:
        """Position after a right delimiter found at pos (trimming what follows when asked)."""
        text = self.text
        if trim:
            pos = text.index("-" + self.right, pos) + 1
        pos += len(self.right)
        if trim:
            while pos < len(text) and text[pos] in _SPACE:
                pos += 1
        return pos

    def lex_comment(self, start: int, pos: int) -> int:
        end = self.text.find("*/", pos + 2)
        if end < 0:
            raise LexError("unclosed comment", self.line_at(start))
        at_right, trim = self.right_delim_at(end + 2)
        if not at_right:
            raise LexError("comment ends before closing delimiter", self.line_at(end))
        return self.after_right(end + 2, trim)

    def lex_action(self, start: int, pos: int) -> int:
        text = self.text
        if text.startswith("/*", pos):
            return self.lex_comment(start, pos)
        self.emit("left", self.left, start)
        depth = 0
        while True:
            at_right, trim = self.right_delim_at(pos)
            if at_right and depth == 0:
                self.emit("right", self.right, pos)
                return self.after_right(pos, trim)
            if at_right:
                raise LexError("unclosed left paren", self.line_at(pos))
            if pos >= len(text):
                raise LexError("unclosed action", self.line_at(start))
            ch = text[pos]
            if ch in _SPACE:
                end = pos
                while end < len(text) and text[end] in _SPACE:
                    end += 1
                self.emit("space", text[pos:end], pos)
                pos = end
                continue
            pos = self.lex_item(pos, ch, start)
            if self.tokens[-1].kind == "(":
                depth += 1
            elif self.tokens[-1].kind == ")":
                depth -= 1
                if depth < 0:
                    raise LexError("unexpected right paren", self.line_at(pos))

    def lex_item(self, pos: int, ch: str, start: int) -> int:
        text = self.text
        if text.startswith(":=", pos):
            self.emit(":=", ":=", pos)
            return pos + 2
        if ch in "()|,=":
            self.emit(ch, ch, pos)
            return pos + 1
        if ch == '"':
            match = _STRING.match(text, pos)
            if not match:
                raise LexError("unterminated quoted string", self.line_at(pos))
            self.emit("string", match.group(), pos)
            return match.end()
        if ch == "`":
            end = text.find("`", pos + 1)
            if end < 0:
                raise LexError("unterminated raw quoted string", self.line_at(pos))
            self.emit("raw", text[pos : end + 1], pos)
            return end + 1
        if ch == "'":
            match = _CHAR.match(text, pos)
            if not match:
                raise LexError("unterminated character constant", self.line_at(pos))
            self.emit("char", match.group(), pos)
            return match.end()
        if ch == "$":
            match = _IDENT.match(text, pos + 1)
            end = match.end() if match else pos + 1
            self.emit("var", text[pos:end], pos)
            return end
        if ch == ".":
            if pos + 1 < len(text) and text[pos + 1].isdigit():
                return self.lex_number(pos)
            match = _IDENT.match(text, pos + 1)
            if match:
                self.emit("field", text[pos : match.end()], pos)
                return match.end()
            self.emit(".", ".", pos)
            return pos + 1
        if ch.isdigit() or (ch in "+-" and pos + 1 < len(text) and (text[pos + 1].isdigit() or text[pos + 1] == ".")):
            return self.lex_number(pos)
        match = _IDENT.match(text, pos)
        if match:
            word = match.group()
            kind = "keyword" if word in KEYWORDS else "bool" if word in ("true", "false") else "ident"
            self.emit(kind, word, pos)
            return match.end()
        raise LexError(f"unrecognized character in action: {_describe_char(ch)}", self.line_at(pos))

    def lex_number(self, pos: int) -> int:
        match = _NUMBER.match(self.text, pos)
        end = match.end() if match else pos
        if end < len(self.text) and (self.text[end].isalnum() or self.text[end] == "_"):
            while end < len(self.text) and (self.text[end].isalnum() or self.text[end] in "_."):
                end += 1
            raise LexError(f'bad number syntax: "{self.text[pos:end]}"', self.line_at(pos))
        self.emit("number", self.text[pos:end], pos)
        return end


def _describe_char(ch: str) -> str:
    return f"U+{ord(ch):04X} '{ch}'"


def lex(text: str, left: str = "{{", right: str = "}}") -> list[Token]:
    return Lexer(text, left, right).run()
