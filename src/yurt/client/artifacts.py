"""Task `artifact` blocks, fetched the way Nomad's go-getter does before a task starts.

Sources: `http://` / `https://` URLs (with the block's `headers`), `file://` URLs and plain
local paths (relative ones resolve against the task dir), optionally forced with go-getter's
`http::` / `https::` / `file::` prefix. `options` become URL query parameters, except the two
go-getter consumes itself: `checksum` (`type:hex` with md5 / sha1 / sha256 / sha512, or a bare
hex digest whose length names the type), `archive` (`false` turns unpacking off, a type
name forces one) and `filename` (the downloaded file's name in mode `any`). Archives (.zip .tar .tar.gz .tgz .tar.bz2 .tbz2 .tar.xz .txz .gz .bz2 .xz)
are recognised by the source path and unpacked; the checksum is of the downloaded file.

`destination` is relative to the task dir (default `local/`) and may not leave the
allocation dir. `mode`: `any` (a directory; a plain file lands in it under its own name),
`file` (the destination is the file itself), `dir` (the source must be a directory or an
archive). Errors are `ArtifactError`; `recoverable` ones (the download itself failed)
let the task restart per its restart policy, as in Nomad.
"""

import bz2
import gzip
import hashlib
import lzma
import os
import shutil
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import httpx

DEFAULT_DEST = "local/"
MODES = ("any", "file", "dir")
CHECKSUM_TYPES = {"md5": 32, "sha1": 40, "sha256": 64, "sha512": 128}
# longest suffix first: ".tar.gz" must win over ".gz"
ARCHIVE_SUFFIXES = (
    ("tar.gz", "tar.gz"), ("tar.bz2", "tar.bz2"), ("tar.xz", "tar.xz"), ("tgz", "tar.gz"),
    ("tbz2", "tar.bz2"), ("txz", "tar.xz"), ("zip", "zip"), ("tar", "tar"), ("gz", "gz"),
    ("bz2", "bz2"), ("xz", "xz"),
)
ARCHIVE_TYPES = {kind for _, kind in ARCHIVE_SUFFIXES}
SINGLE_FILE = {"gz": gzip.open, "bz2": bz2.open, "xz": lzma.open}
HTTP_TIMEOUT = httpx.Timeout(60.0, connect=10.0)


class ArtifactError(Exception):
    def __init__(self, message: str, recoverable: bool = False):
        super().__init__(message)
        self.recoverable = recoverable


@dataclass(frozen=True)
class Artifact:
    source: str
    destination: str = DEFAULT_DEST
    mode: str = "any"
    options: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    insecure: bool = False  # https without certificate verification

    @classmethod
    def from_wire(cls, raw: dict[str, Any]) -> "Artifact":
        """From the task's `Artifacts` entry (`GetterSource`, `RelativeDest`, ...)."""
        return cls(
            source=str(raw.get("GetterSource") or ""),
            destination=str(raw.get("RelativeDest") or DEFAULT_DEST),
            mode=str(raw.get("GetterMode") or "any"),
            options={str(k): str(v) for k, v in (raw.get("GetterOptions") or {}).items()},
            headers={str(k): str(v) for k, v in (raw.get("GetterHeaders") or {}).items()},
            insecure=bool(raw.get("GetterInsecure")),
        )

    def interpolated(self, replace: Callable[[str], str]) -> "Artifact":
        """Nomad interpolates the source, options, headers and destination with the task env."""
        return Artifact(
            source=replace(self.source),
            destination=replace(self.destination),
            mode=self.mode,
            options={k: replace(v) for k, v in self.options.items()},
            headers={k: replace(v) for k, v in self.headers.items()},
            insecure=self.insecure,
        )


@dataclass(frozen=True)
class _Source:
    scheme: str  # http | https | file
    location: str  # URL for http(s), absolute host path for file
    name: str  # the path component used for archive detection and the file name
    checksum: tuple[str, str] | None
    archive: str | None  # archive type to unpack, or None
    filename: str = ""  # go-getter's `filename` option: the file's name in mode "any"


def fetch_artifact(artifact: Artifact, task_dir: str, alloc_dir: str, transport: httpx.BaseTransport | None = None) -> str:
    """Fetch one artifact into the task dir; returns the destination path."""
    if artifact.mode not in MODES:
        raise ArtifactError(f'invalid artifact mode "{artifact.mode}": must be one of any, file, dir')
    dest = destination_path(artifact.destination, task_dir, alloc_dir)
    if artifact.mode == "file" and os.path.isdir(dest):
        raise ArtifactError(f'destination "{artifact.destination}" is a directory: mode "file" needs a file path')
    source = _parse_source(artifact.source, artifact.options, task_dir)
    with tempfile.TemporaryDirectory(prefix=".artifact-", dir=task_dir) as tmp:
        if source.scheme == "file" and os.path.isdir(source.location):
            if artifact.mode == "file":
                raise ArtifactError(f'source "{artifact.source}" is a directory but mode is "file"')
            _copy_tree(source.location, dest)
            return dest
        fetched = os.path.join(tmp, "download")
        if source.scheme == "file":
            _copy_file(source.location, fetched)
        else:
            _download(source.location, artifact.headers, fetched, transport, verify=not artifact.insecure)
        if source.checksum:
            verify_checksum(fetched, *source.checksum)
        _place(fetched, source, artifact.mode, dest)
    return dest


def destination_path(relative: str, task_dir: str, alloc_dir: str) -> str:
    dest = os.path.normpath(os.path.join(task_dir, relative or DEFAULT_DEST))
    root = os.path.normpath(alloc_dir)
    if dest != root and not dest.startswith(root + os.sep):
        raise ArtifactError(f'artifact destination path "{relative}" escapes the alloc directory')
    return dest


# ---- sources ----------------------------------------------------------------------------------


def _parse_source(source: str, options: dict[str, str], task_dir: str) -> _Source:
    if not source:
        raise ArtifactError("artifact source is empty")
    forced, _, rest = source.partition("::")
    if rest and "://" not in forced:
        if forced not in ("http", "https", "file"):
            raise ArtifactError(f'unsupported artifact getter "{forced}" in source "{source}"')
        source = rest
    parts = urlsplit(source)
    query = parse_qsl(parts.query, keep_blank_values=True) + sorted(options.items())
    checksum_text = _pop(query, "checksum")
    archive_text = _pop(query, "archive")
    filename = _pop(query, "filename") or ""
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        location = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))
        name = unquote(parts.path)
    elif scheme in ("file", ""):
        path = unquote(parts.path) if scheme == "file" else source.split("?", 1)[0]
        location = os.path.normpath(os.path.join(task_dir, path))
        name, scheme = location, "file"
    else:
        raise ArtifactError(f'unsupported artifact source scheme "{parts.scheme}" in "{source}"')
    if "/" in filename or filename in (".", ".."):
        raise ArtifactError(f'invalid filename option "{filename}"')
    return _Source(scheme, location, name, _parse_checksum(checksum_text), _archive_type(name, archive_text), filename)


def _pop(query: list[tuple[str, str]], key: str) -> str | None:
    values = [v for k, v in query if k == key]
    query[:] = [(k, v) for k, v in query if k != key]
    return values[-1] if values else None


def _parse_checksum(text: str | None) -> tuple[str, str] | None:
    if not text:
        return None
    kind, sep, value = text.partition(":")
    if not sep:
        kind, value = "", text
        kind = next((name for name, size in CHECKSUM_TYPES.items() if size == len(value)), "")
        if not kind:
            raise ArtifactError(f'unknown checksum type for "{text}": give it as "type:value"')
    kind = kind.lower()
    if kind == "file":
        raise ArtifactError(f'checksum "{text}": checksum files are not supported')
    if kind not in CHECKSUM_TYPES:
        raise ArtifactError(f'unsupported checksum type "{kind}" in "{text}"')
    value = value.strip().lower()
    if len(value) != CHECKSUM_TYPES[kind] or any(c not in "0123456789abcdef" for c in value):
        raise ArtifactError(f'invalid {kind} checksum "{value}"')
    return kind, value


def _archive_type(name: str, archive: str | None) -> str | None:
    if archive is not None:
        if archive.lower() in ("false", "0", ""):
            return None
        if archive not in ARCHIVE_TYPES:
            raise ArtifactError(f'unsupported archive type "{archive}"')
        return archive
    lowered = name.lower()
    return next((kind for suffix, kind in ARCHIVE_SUFFIXES if lowered.endswith("." + suffix)), None)


# ---- fetching ---------------------------------------------------------------------------------


def _download(
    url: str, headers: dict[str, str], target: str, transport: httpx.BaseTransport | None, verify: bool = True
) -> None:
    try:
        with httpx.Client(transport=transport, timeout=HTTP_TIMEOUT, follow_redirects=True, verify=verify) as client:
            with client.stream("GET", url, headers=headers) as resp:
                if resp.status_code >= 400:
                    raise ArtifactError(f"bad response code: {resp.status_code}", recoverable=True)
                with open(target, "wb") as out:
                    for chunk in resp.iter_bytes():
                        out.write(chunk)
    except httpx.HTTPError as exc:
        raise ArtifactError(f"GET {url}: {exc}", recoverable=True) from exc


def _copy_file(path: str, target: str) -> None:
    try:
        shutil.copy2(path, target)
    except OSError as exc:
        raise ArtifactError(f"{exc.strerror}: {path}", recoverable=True) from exc


def _copy_tree(src: str, dest: str) -> None:
    try:
        shutil.copytree(src, dest, symlinks=True, dirs_exist_ok=True)
    except (OSError, shutil.Error) as exc:
        raise ArtifactError(f"copying {src}: {exc}", recoverable=True) from exc


def verify_checksum(path: str, kind: str, expected: str) -> None:
    digest = hashlib.new(kind)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    actual = digest.hexdigest()
    if actual != expected:
        raise ArtifactError(
            f"checksums did not match: expected {kind} {expected}, got {actual}", recoverable=True
        )


# ---- placing ----------------------------------------------------------------------------------


def _place(fetched: str, source: _Source, mode: str, dest: str) -> None:
    """Move the fetched file to `dest` (unpacking it when it is an archive)."""
    if source.archive is None:
        if mode == "dir":
            raise ArtifactError(f'source "{source.name}" is a file, not a directory or an archive (mode "dir")')
        name = source.filename or os.path.basename(source.name.rstrip("/"))
        if mode != "file" and not name:
            raise ArtifactError(f'cannot name the file downloaded from "{source.location}"')
        target = dest if mode == "file" else os.path.join(dest, name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.move(fetched, target)
        return
    try:
        unpack(fetched, source.archive, dest, into_dir=mode != "file")
    except (OSError, EOFError, tarfile.TarError, zipfile.BadZipFile, lzma.LZMAError) as exc:
        raise ArtifactError(f"error unpacking {source.archive} archive: {exc}", recoverable=True) from exc


def unpack(archive: str, kind: str, dest: str, into_dir: bool = True) -> None:
    """Unpack `archive` of type `kind` into the directory `dest` (or, with `into_dir=False`,
    its single file to the path `dest`). Members may not escape `dest`."""
    if kind in SINGLE_FILE:
        if into_dir:
            raise ArtifactError(f"{kind}-compressed files can only unarchive to a single file (use mode = \"file\")")
        os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
        with SINGLE_FILE[kind](archive, "rb") as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out)
        return
    with tempfile.TemporaryDirectory(dir=os.path.dirname(archive)) as staging:
        if kind == "zip":
            _unzip(archive, staging)
        else:
            with tarfile.open(archive, "r:*") as tar:
                tar.extractall(staging, filter="data")
        if into_dir:
            _copy_tree(staging, dest)
            return
        files = [os.path.join(d, n) for d, _, names in os.walk(staging) for n in names]
        if len(files) != 1:
            raise ArtifactError(f"expected a single file in the {kind} archive (mode \"file\"), found {len(files)}")
        os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
        shutil.move(files[0], dest)


def _unzip(archive: str, dest: str) -> None:
    root = os.path.realpath(dest)
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            target = os.path.realpath(os.path.join(root, info.filename))
            if target != root and not target.startswith(root + os.sep):
                raise ArtifactError(f'zip entry "{info.filename}" is trying to escape the destination directory')
            zf.extract(info, root)
            mode = (info.external_attr >> 16) & 0o777
            if mode and not info.is_dir():
                os.chmod(target, mode)


def fetch_task_artifacts(
    entries: list[dict[str, Any]],
    replace: Callable[[str], str],
    task_dir: str,
    alloc_dir: str,
    done: set[int],
    transport: httpx.BaseTransport | None = None,
) -> None:
    """Fetch a task's `Artifacts` in order, skipping the indexes in `done` and adding each one
    fetched (a retry after a failure does not fetch the earlier ones again, as in Nomad)."""
    for index, entry in enumerate(entries):
        if index in done:
            continue
        artifact = Artifact.from_wire(entry).interpolated(replace)
        try:
            fetch_artifact(artifact, task_dir, alloc_dir, transport)
        except ArtifactError as exc:
            raise ArtifactError(f'failed to download artifact "{artifact.source}": {exc}', exc.recoverable) from exc
        done.add(index)
