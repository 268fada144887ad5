"""`yurt fmt`: rewrite HCL job files in the canonical layout (as `nomad fmt` does)."""

from __future__ import annotations

import os

from .command import Command

_EXTENSIONS = (".nomad", ".hcl")
EXIT_WOULD_CHANGE = 3


class FmtCommand(Command):
    name = "fmt"
    synopsis = "Rewrites Nomad config and job files to canonical format"
    help = """
Usage: yurt fmt [flags] paths ...

  Formats Nomad agent configuration and job file to a canonical format.
  If a path is a directory, it will recursively format all files
  with .nomad and .hcl extensions in the directory. If the path
  is "-", the standard input is formatted and written to standard output.

Format Options:

  -check
    Check if the files are formatted. Exit status is 3 when a file would
    change; nothing is written.

  -list=true
    List the files whose formatting differs.

  -recursive
    Process files in subdirectories. By default, only the given (or current)
    directory is processed.

  -write=true
    Overwrite the input files with the formatted text.
"""

    def __init__(self, ctx):
        super().__init__(ctx)
        self.flags.bool("check").bool("list", True).bool("recursive").bool("write", True)

    def run(self, args: list[str]) -> int:
        rest = self.parse(args)
        if rest is None:
            return 1
        if rest == ["-"]:
            return self._stdin()
        files: list[str] = []
        for path in rest or ["."]:
            if os.path.isdir(path):
                files += self._directory_files(path)
            elif os.path.exists(path):
                files.append(path)
            else:
                self.error(f"No file or directory at {path}")
                return 1
        status = 0
        for path in files:
            status = max(status, self._file(path))
        return status

    def _directory_files(self, root: str) -> list[str]:
        found = []
        for directory, subdirs, names in os.walk(root):
            subdirs[:] = sorted(d for d in subdirs if not d.startswith(".")) if self.flag("recursive") else []
            found += [os.path.join(directory, n) for n in sorted(names) if n.endswith(_EXTENSIONS)]
        return found

    def _formatted(self, text: str, name: str) -> str | None:
        from yurt.jobspec import JobspecError
        from yurt.jobspec.hcl_format import format_hcl
        from yurt.jobspec.hcl_syntax import parse_hcl

        try:
            parse_hcl(text, name)
        except JobspecError as exc:
            self.error(f"Error formatting {name}:\n{exc}")
            return None
        return format_hcl(text)

    def _stdin(self) -> int:
        text = self.ctx.stdin.read()
        formatted = self._formatted(text, "<stdin>")
        if formatted is None:
            return 1
        if self.flag("check"):
            return EXIT_WOULD_CHANGE if formatted != text else 0
        self.ctx.out.write(formatted)
        return 0

    def _file(self, path: str) -> int:
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except OSError as exc:
            self.error(f"Error reading {path}: {exc.strerror or exc}")
            return 1
        formatted = self._formatted(text, path)
        if formatted is None:
            return 1
        if formatted == text:
            return 0
        if self.flag("list"):
            self.output(path)
        if self.flag("check"):
            return EXIT_WOULD_CHANGE
        if self.flag("write"):
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(formatted)
        elif not self.flag("list"):
            self.ctx.out.write(formatted)
        return 0
