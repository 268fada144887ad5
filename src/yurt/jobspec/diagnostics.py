"""Errors in job files: one `Diagnostic` per problem, all reported at once."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Diagnostic:
    """One problem in a job file. `line`/`column` are 1-based; 0 means unknown.

    `end_column` (exclusive, like HCL ranges) is set when the problem spans a name.
    """

    filename: str
    line: int
    column: int
    message: str
    end_column: int | None = None
    path: str = ""  # where in a JSON job file (e.g. "job.web.group[0].count")

    def __str__(self) -> str:
        if self.path:
            return f"{self.filename}: {self.path}: {self.message}"
        if self.line <= 0:
            return f"{self.filename}: {self.message}"
        where = f"{self.filename}:{self.line},{self.column}"
        if self.end_column is not None and self.end_column > self.column:
            where += f"-{self.end_column}"
        return f"{where}: {self.message}"


class JobspecError(Exception):
    """A job file could not be turned into a job; `.diagnostics` lists every problem."""

    def __init__(self, diagnostics: list[Diagnostic], validation: bool = False):
        self.diagnostics = list(diagnostics)
        self.validation = validation  # the file parsed; these are Job.Validate-style problems
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(d) for d in self.diagnostics)


@dataclass(frozen=True)
class Position:
    """Where a name or value starts (and, on its first line, ends)."""

    line: int = 0
    column: int = 0
    end_column: int | None = None
    path: str = ""  # JSON files have no lines: the JSON path instead

    def describe(self, filename: str) -> str:
        if self.path:
            return f"{filename} at {self.path}"
        text = f"{filename}:{self.line},{self.column}"
        if self.end_column is not None and self.end_column > self.column:
            text += f"-{self.end_column}"
        return text


@dataclass
class DiagnosticCollector:
    """Gathers problems while a file is decoded, so all of them are reported together."""

    filename: str
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def add(self, pos: Position | None, summary: str, detail: str = "") -> None:
        pos = pos or Position()
        message = f"{summary}; {detail}" if detail else summary
        self.diagnostics.append(
            Diagnostic(self.filename, pos.line, pos.column, message, pos.end_column, pos.path)
        )

    def raise_if_any(self, validation: bool = False) -> None:
        if self.diagnostics:
            ordered = sorted(self.diagnostics, key=lambda d: (d.line, d.column))
            raise JobspecError(ordered, validation)


def levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def nearest_name(name: str, candidates) -> str | None:
    """The candidate closest to `name` (HCL suggests within an edit distance of 2)."""
    best, best_distance = None, 3
    for candidate in sorted(candidates):
        distance = levenshtein(name, candidate)
        if distance < best_distance:
            best, best_distance = candidate, distance
    return best


def did_you_mean(name: str, candidates) -> str:
    suggestion = nearest_name(name, candidates)
    return f' Did you mean "{suggestion}"?' if suggestion else ""
