"""`yurt job init [-short] [-connect] [filename]`: write an example job file."""

from __future__ import annotations

import os

from .command import Command

DEFAULT_INIT_NAME = "example.nomad.hcl"


class JobInitCommand(Command):
    name = "job init"
    synopsis = "Create an example job file"
    help = """
Usage: yurt job init <filename>
Alias: yurt init <filename>

  Creates an example job file that can be used as a starting point to customize
  further. When no filename is supplied, a default filename of "example.nomad.hcl"
  will be used.

Init Options:

  -short
    If the short flag is set, a minimal jobspec without comments is emitted.

  -connect
    If the connect flag is set, the jobspec includes Consul Connect integration.
"""

    def __init__(self, ctx):
        super().__init__(ctx)
        self.flags.bool("short").bool("connect")

    def run(self, args: list[str]) -> int:
        rest = self.parse(args)
        if rest is None:
            return 1
        if len(rest) > 1:
            return self.usage_error("This command takes either no arguments or one: <filename>")
        filename = rest[0] if rest else DEFAULT_INIT_NAME
        if os.path.lexists(filename):
            self.error(f"Job '{filename}' already exists")
            return 1
        from yurt.jobspec import example_job

        try:
            with open(filename, "x", encoding="utf-8") as handle:
                handle.write(example_job(bool(self.flag("short")), bool(self.flag("connect"))))
            os.chmod(filename, 0o660)
        except OSError as exc:
            self.error(f"Failed to write '{filename}': {exc.strerror or exc}")
            return 1
        self.output(f"Example job file written to {filename}")
        return 0
