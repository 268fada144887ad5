"""Task `artifact` blocks: fetching from a local HTTP server and local paths, checksums,
unpacking, modes, destinations; and the task runner's prestart events around them."""

import gzip
import hashlib
import io
import os
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fakeserver import make_alloc, raw_task

from yurt.client.artifacts import Artifact, ArtifactError, fetch_artifact, fetch_task_artifacts
from yurt.structs import SECOND
from yurt.structs.job import RestartPolicy

BODY = b"hello artifact\n"


def tar_bytes(files: dict[str, bytes], mode: str = "w:gz") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o750 << 16
            zf.writestr(info, data)
    return buf.getvalue()


FILES = {
    "/plain.txt": BODY,
    "/bundle.tar.gz": tar_bytes({"bundle/run.sh": b"#!/bin/sh\n", "bundle/conf/app.conf": b"x=1\n"}),
    "/bundle.tgz": tar_bytes({"a.txt": b"tgz"}),
    "/bundle.tar": tar_bytes({"a.txt": b"tar"}, "w"),
    "/bundle.tar.bz2": tar_bytes({"a.txt": b"bz2"}, "w:bz2"),
    "/bundle.tar.xz": tar_bytes({"a.txt": b"xz"}, "w:xz"),
    "/bundle.zip": zip_bytes({"z/one.txt": b"one", "two.txt": b"two"}),
    "/single.txt.gz": gzip.compress(BODY),
    "/evil.tar.gz": tar_bytes({"../../escaped.txt": b"no"}),
    "/evil.zip": zip_bytes({"../escaped.txt": b"no"}),
}


@pytest.fixture(scope="module")
def http_server():
    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            path, _, query = self.path.partition("?")
            seen.append({"path": path, "query": query, "headers": dict(self.headers)})
            body = FILES.get(path)
            if body is None:
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def https_server(http_server, tmp_path_factory):
    """The same files over TLS with a self-signed certificate for 127.0.0.1 (openssl CLI)."""
    import shutil
    import ssl
    import subprocess

    if not shutil.which("openssl"):
        pytest.skip("no openssl CLI to make a test certificate")
    certs = tmp_path_factory.mktemp("tls")
    cert, key = certs / "cert.pem", certs / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    plain_base, _ = http_server
    from urllib.request import urlopen

    class Proxy(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            with urlopen(plain_base + self.path) as resp:  # noqa: S310 - the local test server
                body = resp.read()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_address[1]}", str(cert)
    server.shutdown()
    server.server_close()


@pytest.fixture
def task_dir(tmp_path):
    path = tmp_path / "alloc" / "web"
    (path / "local").mkdir(parents=True)
    return str(path)


def fetch(task_dir: str, **kw) -> str:
    return fetch_artifact(Artifact(**kw), task_dir, os.path.dirname(task_dir))


def read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def test_http_file_lands_in_local_and_headers_and_options_are_sent(http_server, task_dir):
    base, seen = http_server
    fetch(task_dir, source=f"{base}/plain.txt", headers={"X-Token": "s3cret"}, options={"version": "7"})
    assert read(os.path.join(task_dir, "local", "plain.txt")) == BODY
    assert seen[-1]["headers"]["X-Token"] == "s3cret"
    assert seen[-1]["query"] == "version=7"


@pytest.mark.parametrize("kind", ["md5", "sha1", "sha256", "sha512"])
def test_checksum_matches(http_server, task_dir, kind):
    base, seen = http_server
    digest = hashlib.new(kind, BODY).hexdigest()
    fetch(task_dir, source=f"{base}/plain.txt", options={"checksum": f"{kind}:{digest}"})
    assert read(os.path.join(task_dir, "local", "plain.txt")) == BODY
    assert "checksum" not in seen[-1]["query"]  # go-getter consumes it


def test_bare_checksum_type_is_guessed_from_its_length(http_server, task_dir):
    base, _ = http_server
    fetch(task_dir, source=f"{base}/plain.txt?checksum={hashlib.sha256(BODY).hexdigest()}")
    assert os.path.exists(os.path.join(task_dir, "local", "plain.txt"))


def test_checksum_mismatch_fails_recoverably_and_leaves_nothing(http_server, task_dir):
    base, _ = http_server
    wrong = hashlib.sha256(b"other").hexdigest()
    with pytest.raises(ArtifactError) as info:
        fetch(task_dir, source=f"{base}/plain.txt", options={"checksum": f"sha256:{wrong}"})
    assert "checksums did not match" in str(info.value) and wrong in str(info.value)
    assert info.value.recoverable
    assert not os.path.exists(os.path.join(task_dir, "local", "plain.txt"))


def test_bad_checksum_spec_is_not_recoverable(http_server, task_dir):
    base, _ = http_server
    with pytest.raises(ArtifactError, match='unsupported checksum type "crc32"') as info:
        fetch(task_dir, source=f"{base}/plain.txt", options={"checksum": "crc32:abcd"})
    assert not info.value.recoverable


def test_tar_gz_is_unpacked_with_modes(http_server, task_dir):
    base, _ = http_server
    fetch(task_dir, source=f"{base}/bundle.tar.gz")
    local = os.path.join(task_dir, "local")
    assert read(os.path.join(local, "bundle", "conf", "app.conf")) == b"x=1\n"
    assert os.stat(os.path.join(local, "bundle", "run.sh")).st_mode & 0o111
    assert not os.path.exists(os.path.join(local, "bundle.tar.gz"))


@pytest.mark.parametrize("name,content", [("bundle.tgz", b"tgz"), ("bundle.tar", b"tar"),
                                          ("bundle.tar.bz2", b"bz2"), ("bundle.tar.xz", b"xz")])
def test_other_tar_archives_are_unpacked(http_server, task_dir, name, content):
    base, _ = http_server
    fetch(task_dir, source=f"{base}/{name}", destination="local/out")
    assert read(os.path.join(task_dir, "local", "out", "a.txt")) == content


def test_zip_is_unpacked_keeping_modes(http_server, task_dir):
    base, _ = http_server
    fetch(task_dir, source=f"{base}/bundle.zip")
    local = os.path.join(task_dir, "local")
    assert read(os.path.join(local, "z", "one.txt")) == b"one"
    assert os.stat(os.path.join(local, "two.txt")).st_mode & 0o777 == 0o750


def test_archive_false_keeps_the_archive(http_server, task_dir):
    base, _ = http_server
    fetch(task_dir, source=f"{base}/bundle.tar.gz", options={"archive": "false"})
    assert read(os.path.join(task_dir, "local", "bundle.tar.gz")) == FILES["/bundle.tar.gz"]


def test_checksum_is_of_the_archive_before_unpacking(http_server, task_dir):
    base, _ = http_server
    digest = hashlib.sha256(FILES["/bundle.zip"]).hexdigest()
    fetch(task_dir, source=f"{base}/bundle.zip", options={"checksum": f"sha256:{digest}"})
    assert os.path.exists(os.path.join(task_dir, "local", "two.txt"))


def test_gz_decompresses_to_a_file_in_file_mode_only(http_server, task_dir):
    base, _ = http_server
    fetch(task_dir, source=f"{base}/single.txt.gz", mode="file", destination="local/single.txt")
    assert read(os.path.join(task_dir, "local", "single.txt")) == BODY
    with pytest.raises(ArtifactError, match="only unarchive to a single file"):
        fetch(task_dir, source=f"{base}/single.txt.gz")


@pytest.mark.parametrize("name", ["evil.tar.gz", "evil.zip"])
def test_archive_members_cannot_escape(http_server, task_dir, name):
    base, _ = http_server
    with pytest.raises(ArtifactError):
        fetch(task_dir, source=f"{base}/{name}")
    assert not os.path.exists(os.path.join(os.path.dirname(task_dir), "escaped.txt"))
    assert not os.path.exists(os.path.join(task_dir, "escaped.txt"))


def test_filename_option_names_the_file(http_server, task_dir):
    base, seen = http_server
    fetch(task_dir, source=f"{base}/plain.txt", options={"filename": "motd"})
    assert read(os.path.join(task_dir, "local", "motd")) == BODY and seen[-1]["query"] == ""
    with pytest.raises(ArtifactError, match='invalid filename option "../x"'):
        fetch(task_dir, source=f"{base}/plain.txt", options={"filename": "../x"})


def test_mode_file_writes_the_destination_itself(http_server, task_dir):
    base, _ = http_server
    fetch(task_dir, source=f"{base}/plain.txt", mode="file", destination="local/renamed.cfg")
    assert read(os.path.join(task_dir, "local", "renamed.cfg")) == BODY
    with pytest.raises(ArtifactError, match='destination "local/" is a directory'):
        fetch(task_dir, source=f"{base}/plain.txt", mode="file")


def test_mode_dir_refuses_a_plain_file(http_server, task_dir):
    base, _ = http_server
    with pytest.raises(ArtifactError, match='mode "dir"'):
        fetch(task_dir, source=f"{base}/plain.txt", mode="dir")
    with pytest.raises(ArtifactError, match='invalid artifact mode "both"'):
        fetch(task_dir, source=f"{base}/plain.txt", mode="both")


def test_https_verifies_the_certificate_unless_insecure(https_server, task_dir, monkeypatch):
    base, ca = https_server
    with pytest.raises(ArtifactError, match="CERTIFICATE_VERIFY_FAILED") as info:
        fetch(task_dir, source=f"{base}/plain.txt")
    assert info.value.recoverable
    fetch(task_dir, source=f"{base}/plain.txt", insecure=True, destination="local/insecure")
    assert read(os.path.join(task_dir, "local", "insecure", "plain.txt")) == BODY
    monkeypatch.setenv("SSL_CERT_FILE", ca)  # a trusted CA: verified download
    fetch(task_dir, source=f"{base}/bundle.tar.gz", destination="local/verified")
    assert read(os.path.join(task_dir, "local", "verified", "bundle", "conf", "app.conf")) == b"x=1\n"


def test_http_error_is_recoverable(http_server, task_dir):
    base, _ = http_server
    with pytest.raises(ArtifactError, match="bad response code: 404") as info:
        fetch(task_dir, source=f"{base}/missing.bin")
    assert info.value.recoverable


def test_destination_may_not_escape_the_alloc_dir(http_server, task_dir):
    base, seen = http_server
    before = len(seen)
    with pytest.raises(ArtifactError, match='destination path "../../etc" escapes the alloc directory') as info:
        fetch(task_dir, source=f"{base}/plain.txt", destination="../../etc")
    assert not info.value.recoverable and len(seen) == before  # nothing was fetched
    fetch(task_dir, source=f"{base}/plain.txt", destination="../alloc/shared")  # the shared dir is fine
    assert read(os.path.join(os.path.dirname(task_dir), "alloc", "shared", "plain.txt")) == BODY


def test_file_sources_absolute_relative_and_url(tmp_path, task_dir):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "f.txt").write_bytes(b"f")
    (src / "app.tar.gz").write_bytes(tar_bytes({"bin/app": b"app"}))
    fetch(task_dir, source=str(src / "sub" / "f.txt"))
    assert read(os.path.join(task_dir, "local", "f.txt")) == b"f"
    fetch(task_dir, source=f"file://{src}/app.tar.gz", destination="local/app")
    assert read(os.path.join(task_dir, "local", "app", "bin", "app")) == b"app"
    fetch(task_dir, source=str(src / "sub"), destination="local/tree", mode="dir")
    assert read(os.path.join(task_dir, "local", "tree", "f.txt")) == b"f"
    fetch(task_dir, source="local/f.txt", destination="local/copy", mode="any")  # relative to the task dir
    assert read(os.path.join(task_dir, "local", "copy", "f.txt")) == b"f"
    with pytest.raises(ArtifactError, match="No such file"):
        fetch(task_dir, source=str(src / "nope.txt"))


def test_unsupported_getters_are_named(task_dir):
    with pytest.raises(ArtifactError, match='unsupported artifact getter "git"'):
        fetch(task_dir, source="git::https://example.com/repo.git")
    with pytest.raises(ArtifactError, match='unsupported artifact source scheme "s3"'):
        fetch(task_dir, source="s3://bucket/key")


def test_task_artifacts_interpolate_wrap_errors_and_skip_done(http_server, task_dir):
    base, seen = http_server
    entries = [
        {"GetterSource": "${BASE}/plain.txt", "RelativeDest": "local/${DIR}"},
        {"GetterSource": f"{base}/missing.bin"},
    ]
    done: set[int] = set()
    with pytest.raises(ArtifactError) as info:
        fetch_task_artifacts(entries, lambda t: t.replace("${BASE}", base).replace("${DIR}", "d"), task_dir,
                             os.path.dirname(task_dir), done)
    assert str(info.value) == f'failed to download artifact "{base}/missing.bin": bad response code: 404'
    assert done == {0} and read(os.path.join(task_dir, "local", "d", "plain.txt")) == BODY
    before = len(seen)
    with pytest.raises(ArtifactError):
        fetch_task_artifacts(entries, lambda t: t.replace("${BASE}", base), task_dir, os.path.dirname(task_dir), done)
    assert [s["path"] for s in seen[before:]] == ["/missing.bin"]  # the first one is not fetched again


# ---- through the client agent ------------------------------------------------------------------


async def test_task_reads_its_artifact(http_server, server, agent):
    base, _ = http_server
    a = await agent()
    task = raw_task("web", "cat local/plain.txt local/bundle/conf/app.conf",
                    artifacts=[{"GetterSource": f"{base}/plain.txt"}, {"GetterSource": f"{base}/bundle.tar.gz"}])
    alloc = make_alloc(a.node.id, [task])
    await server.add_alloc(alloc)
    update = await server.wait_status(alloc.id, "complete")
    events = update["TaskStates"]["web"]["Events"]
    assert [e["Type"] for e in events] == ["Received", "Task Setup", "Downloading Artifacts", "Started", "Terminated"]
    assert events[2]["DisplayMessage"] == "Client is downloading artifacts" and events[2]["Message"] == ""
    log = os.path.join(a.config.alloc_dir, alloc.id, "alloc", "logs", "web.stdout.0")
    assert read(log) == BODY + b"x=1\n"


async def test_failed_download_restarts_then_fails_the_task(http_server, server, agent):
    base, _ = http_server
    a = await agent()
    wrong = hashlib.sha256(b"other").hexdigest()
    task = raw_task("web", "true", artifacts=[{"GetterSource": f"{base}/plain.txt",
                                                "GetterOptions": {"checksum": f"sha256:{wrong}"}}])
    policy = RestartPolicy(attempts=1, interval=60 * SECOND, delay=SECOND // 20, mode="fail")
    alloc = make_alloc(a.node.id, [task], restart=policy)
    await server.add_alloc(alloc)
    update = await server.wait_status(alloc.id, "failed")
    state = update["TaskStates"]["web"]
    types = [e["Type"] for e in state["Events"]]
    assert types == ["Received", "Task Setup", "Downloading Artifacts", "Failed Artifact Download", "Restarting",
                     "Task Setup", "Downloading Artifacts", "Failed Artifact Download", "Not Restarting"]
    failed = state["Events"][3]
    assert failed["DownloadError"].startswith(f'failed to download artifact "{base}/plain.txt": checksums did not match')
    assert failed["DisplayMessage"] == failed["DownloadError"]
    assert failed["Message"] == "" and failed["Details"]["download_error"] == failed["DownloadError"]
    assert state["Failed"] is True


# ---- dispatch_payload ---------------------------------------------------------------------------

async def test_dispatch_payload_is_written_to_local_before_start(server, agent):
    from yurt.structs import evolve
    from yurt.structs.job import DispatchPayloadConfig

    a = await agent()
    payload = b"line one\n\x00\x01binary"
    task = raw_task("work", "wc -c < local/in/payload.bin", dispatch_payload=DispatchPayloadConfig(file="in/payload.bin"))
    alloc = make_alloc(a.node.id, [task, raw_task("other", "ls local")])
    alloc = evolve(alloc, job=evolve(alloc.job, payload=payload, dispatched=True, parent_id="example"))
    await server.add_alloc(alloc)
    await server.wait_status(alloc.id, "complete")
    root = os.path.join(a.config.alloc_dir, alloc.id)
    assert read(os.path.join(root, "work", "local", "in", "payload.bin")) == payload
    assert read(os.path.join(root, "alloc", "logs", "work.stdout.0")).strip() == str(len(payload)).encode()
    assert read(os.path.join(root, "alloc", "logs", "other.stdout.0")) == b""  # no dispatch_payload, no file


async def test_dispatch_payload_may_not_leave_local(server, agent):
    from yurt.structs import evolve
    from yurt.structs.job import DispatchPayloadConfig

    a = await agent()
    task = raw_task("work", "true", dispatch_payload=DispatchPayloadConfig(file="../../escape.bin"))
    alloc = make_alloc(a.node.id, [task])
    alloc = evolve(alloc, job=evolve(alloc.job, payload=b"x"))
    await server.add_alloc(alloc)
    update = await server.wait_status(alloc.id, "failed")
    event = update["TaskStates"]["work"]["Events"][2]
    assert (event["Type"], event["DisplayMessage"]) == (
        "Task hook failed", "dispatch_payload: file \"../../escape.bin\" escapes the task's local directory")
    assert not os.path.exists(os.path.join(a.config.alloc_dir, alloc.id, "escape.bin"))
