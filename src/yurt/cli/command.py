"""What every command shares: its IO context, flag parsing, the API client, prefix lookups.

A `Context` carries the streams, the environment, the clock and the HTTP transport so
tests can run any command against a fake server with a fixed clock.
"""

import contextlib
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, TextIO

import httpx

from yurt.api import APIError, Client, ClientConfig
from yurt.api.client import DEFAULT_ADDRESS

from .flags import FlagError, FlagSet, HelpRequested, client_flag_set
from .format import FULL_ID, SHORT_ID, q


@dataclass
class Context:
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    env: Mapping[str, str] = field(default_factory=lambda: os.environ)
    transport: httpx.BaseTransport | None = None
    now: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    poll_interval: float = 1.0


class CommandError(Exception):
    """A failure already worded for the user; the command prints it and exits 1."""


GENERAL_OPTIONS = """General Options:

  -address=<addr>
    The address of the Nomad server.
    Overrides the NOMAD_ADDR environment variable if set.
    Default = http://127.0.0.1:4646

  -region=<region>
    The region of the Nomad servers to forward commands to.
    Overrides the NOMAD_REGION environment variable if set.
    Defaults to the Agent's local region.

  -namespace=<namespace>
    The target namespace for queries and actions bound to a namespace.
    Overrides the NOMAD_NAMESPACE environment variable if set.
    If set to '*', job and alloc subcommands query all namespaces authorized
    to user.
    Defaults to the "default" namespace.

  -token
    The SecretID of an ACL token to use to authenticate API requests with.
    Overrides the NOMAD_TOKEN environment variable if set."""


class Command:
    """One CLI command. Subclasses set `name`, `synopsis`, `help` and implement `run`."""

    name = ""
    synopsis = ""
    help = ""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.flags: FlagSet = client_flag_set(self.name)
        self._client: Client | None = None

    # -- output
    def output(self, text: str = "") -> None:
        self.ctx.out.write(text + "\n")

    def error(self, text: str) -> None:
        self.ctx.err.write(text + "\n")

    def help_text(self) -> str:
        return self.help.strip("\n").replace("{general}", GENERAL_OPTIONS)

    def usage_error(self, message: str) -> int:
        self.error(message)
        self.error(f"For additional help try 'yurt {self.name} -help'")
        return 1

    def confirm(self, question: str, cancelled: str) -> tuple[int, bool]:
        """Nomad's y/N prompt: (exit code, confirmed); only an exact `y` confirms."""
        self.ctx.out.write(question + " ")
        self.ctx.out.flush()
        answer = self.ctx.stdin.readline().strip()
        if not answer or answer.lower()[0] == "n":
            self.output(cancelled)
            return 0, False
        if answer.lower()[0] == "y" and len(answer) > 1:
            self.output("For confirmation, an exact ‘y’ is required.")
            return 0, False
        if answer != "y":
            self.output("No confirmation detected. For confirmation, an exact 'y' is required.")
            return 1, False
        return 0, True

    # -- flags
    def parse(self, args: list[str]) -> list[str] | None:
        """Positional args, or None after printing the flag error and the help."""
        try:
            return self.flags.parse(args)
        except HelpRequested:
            self.output(self.help_text())
            return None
        except FlagError as exc:
            self.error(str(exc))
            self.output(self.help_text())
            return None

    def flag(self, name: str) -> Any:
        return self.flags[name]

    @property
    def id_length(self) -> int:
        return FULL_ID if self.flags.values.get("verbose") else SHORT_ID

    # -- client
    def namespace(self) -> str:
        return self.flag("namespace") or self.ctx.env.get("NOMAD_NAMESPACE", "")

    def all_namespaces(self) -> bool:
        return self.namespace() == "*"

    def client_config(self) -> ClientConfig:
        env = self.ctx.env
        cfg = ClientConfig(
            address=self.flag("address") or env.get("NOMAD_ADDR") or DEFAULT_ADDRESS,
            region=self.flag("region") or env.get("NOMAD_REGION", ""),
            namespace=self.namespace(),
            token=self.flag("token") or env.get("NOMAD_TOKEN", ""),
        )
        if "://" not in cfg.address:
            cfg.address = "http://" + cfg.address
        return cfg

    def client(self) -> Client:
        if self._client is None:
            self._client = Client(self.client_config(), transport=self.ctx.transport)
        return self._client

    def get(self, path: str, **params: Any) -> Any:
        return self.client().get(path, **params)

    def call(self, what: str, method: str, path: str, body: Any = None, **params: Any) -> Any:
        """One API request; failures become `CommandError("<what>: <reason>")`."""
        try:
            return self.client().request(method, path, params, body)[0]
        except APIError as exc:
            raise CommandError(f"{what}: {exc}") from exc
        except httpx.HTTPError as exc:
            url = f"{self.client_config().address}{path}"
            raise CommandError(f'{what}: {method.title()} "{url}": {transport_error_text(exc)}') from exc

    def query(self, what: str, path: str, **params: Any) -> Any:
        return self.call(what, "GET", path, **params)

    # -- lookups
    def job_id_by_prefix(self, prefix: str, keep: Callable[[dict], bool] | None = None,
                         kind: str = "") -> tuple[str, str]:
        """(job ID, namespace) for a job ID prefix, Nomad's errors otherwise. `keep` filters
        the list stubs (e.g. periodic jobs only); `kind` names them in the not-found error."""
        from .job_tables import job_list_table

        jobs = self.query(f"Error querying job prefix {q(prefix)}", "/v1/jobs", prefix=prefix, per_page=20) or []
        jobs = [j for j in jobs if j.get("ID", "").startswith(prefix) and (keep is None or keep(j))]
        if not jobs:
            raise CommandError(f"No {kind + ' ' if kind else ''}job(s) with prefix or ID {q(prefix)} found")
        if len(jobs) > 1:
            exact = prefix == jobs[0]["ID"]
            multi_ns = self.all_namespaces() and jobs[0]["ID"] == jobs[1]["ID"]
            if not exact or multi_ns:
                table = job_list_table(jobs, self.all_namespaces(), self.ctx.now())
                truncated = "\n(results may be truncated)" if len(jobs) >= 20 else ""
                raise CommandError(f"Prefix {q(prefix)} matched multiple jobs\n\n{table}{truncated}")
        job = jobs[0]
        namespace = job.get("Namespace") or (job.get("JobSummary") or {}).get("Namespace") or "default"
        return job["ID"], namespace

    def lookup_by_prefix(self, what: str, path: str, prefix: str) -> list[dict]:
        """Items of a list route whose ID starts with `prefix` (server and client side)."""
        items = self.query(what, path, prefix=prefix) or []
        return [item for item in items if item.get("ID", "").startswith(prefix)]


def sanitize_uuid_prefix(prefix: str) -> str:
    """Nomad trims a UUID prefix to an even number of hex digits (hyphens not counted)."""
    length = len(prefix) - prefix.count("-")
    return prefix[: len(prefix) - (length % 2)]


def transport_error_text(exc: Exception) -> str:
    """Go's wording for the common network failures (`dial tcp host:port: connect: connection refused`)."""
    text = str(exc)
    if isinstance(exc, httpx.ConnectError) and "refused" in text.lower():
        url = exc.request.url if exc.request else None
        host = f"{url.host}:{url.port or (443 if url.scheme == 'https' else 80)}" if url else ""
        return f"dial tcp {host}: connect: connection refused"
    if isinstance(exc, httpx.TimeoutException):
        return "context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
    return text


@contextlib.contextmanager
def interruptible():
    """^C ends what runs inside (a follow loop), even in a process started with SIGINT ignored
    (a background job of a non-interactive shell): as Nomad's commands do, whose `signal.Notify`
    on an ignored SIGINT installs a handler for it. The disposition is restored afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        if previous is signal.SIG_IGN:
            signal.signal(signal.SIGINT, previous)
