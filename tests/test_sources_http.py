"""open_binary over HTTP against a real local server with injected faults, and local inputs."""
from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pytest

from pipelines.sources import (InputError, ObjectChangedError, RetriesExhaustedError,
                               SourceSettings, expand_inputs, open_binary)
from pipelines.sources.opener import open_with_beam
from tests.conftest import require_shared
from tests.servers import FaultInjector, FileServer, write_payload

FAST = dict(backoff_base_s=0.001, backoff_max_s=0.005, timeout_s=10.0)
PAYLOAD_SIZE = 3 * 1024 * 1024 + 12345


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_in_chunks(stream, chunk: int = 64 * 1024) -> bytes:
    parts = []
    while True:
        block = stream.read(chunk)
        if not block:
            return b"".join(parts)
        parts.append(block)


@pytest.fixture
def payload(tmp_path: Path) -> tuple[Path, bytes]:
    data = write_payload(tmp_path / "www" / "big.warc.gz", PAYLOAD_SIZE, seed=7)
    return tmp_path / "www", data


def test_faulty_server_yields_identical_bytes(payload):
    root, data = payload
    faults = FaultInjector(p=0.2, seed=1234)
    settings = SourceSettings(max_retries=8, **FAST)
    retries = resumes = downloads = 0
    with FileServer(root, faults) as server:
        # Download repeatedly until both fault families have hit (bounded); every copy must match.
        while downloads < 40 and (resumes < 3 or retries < 3):
            with open_binary(server.url + "big.warc.gz", settings) as stream:
                got = read_in_chunks(stream)
                retries += stream.retries
                resumes += stream.resumes
            downloads += 1
            assert len(got) == len(data)
            assert sha256(got) == sha256(data)
        requests = server.requests
    print(f"\n{len(data)} bytes x{downloads}, {len(requests)} requests, faults injected "
          f"{dict(faults.counts)}, retries {retries}, resumes {resumes}")
    assert faults.counts["reset"] + faults.counts["truncate"] > 0
    assert faults.counts["503"] + faults.counts["503-retry-after-0"] + faults.counts["429"] > 0
    assert resumes > 0 and retries > 0
    # Every resume was a ranged request.
    assert any(r["range"] for r in requests)


def test_readinto_and_small_reads_across_resumes(payload):
    root, data = payload
    faults = FaultInjector(p=0.0)
    faults.script = ["truncate", "reset", None]
    settings = SourceSettings(**FAST)
    with FileServer(root, faults) as server:
        with open_binary(server.url + "big.warc.gz", settings) as stream:
            buf = bytearray(1000)
            first = stream.readinto(buf)
            rest = stream.read()
            assert stream.tell() == len(data)
            assert stream.read(10) == b""
            assert stream.resumes == 2
    assert first == 1000
    assert bytes(buf) + rest == data


def test_server_ignoring_range_still_yields_identical_bytes(payload):
    root, data = payload
    faults = FaultInjector(p=0.0)
    faults.script = ["truncate", "reset", "503", "truncate", None]
    settings = SourceSettings(**FAST)
    with FileServer(root, faults, honor_range=False) as server:
        with open_binary(server.url + "big.warc.gz", settings) as stream:
            got = read_in_chunks(stream, 100_000)
            resumes, retries = stream.resumes, stream.retries
        requests = server.requests
    assert sha256(got) == sha256(data)
    # Each scripted fault costs exactly one more request: a resume when it cut the body after the
    # already-delivered point, a retry when it struck while the re-sent prefix was being skipped.
    assert len(requests) == 5
    assert resumes >= 1 and resumes + retries == 4
    ranged = [r for r in requests if r["range"]]
    assert ranged and all(r["status"] in (200, 503) for r in ranged)


def test_not_found_fails_at_once_without_retries(payload):
    root, _ = payload
    with FileServer(root) as server:
        with pytest.raises(FileNotFoundError) as info:
            open_binary(server.url + "missing/nothing.warc.gz", SourceSettings(**FAST))
        assert len(server.requests) == 1
    assert "missing/nothing.warc.gz" in str(info.value)


def test_persistent_503_gives_up_after_max_retries(payload):
    root, _ = payload
    faults = FaultInjector(p=1.0, kinds=["503"])
    with FileServer(root, faults) as server:
        with pytest.raises(RetriesExhaustedError) as info:
            open_binary(server.url + "big.warc.gz", SourceSettings(max_retries=3, **FAST))
        assert len(server.requests) == 4  # one try + three retries
    assert "big.warc.gz" in str(info.value) and "503" in str(info.value)


def test_endless_mid_body_resets_give_up(payload):
    root, _ = payload
    faults = FaultInjector(p=0.0)
    # First response delivers some bytes, then every resume dies before sending any.
    faults.script = ["truncate"]
    settings = SourceSettings(max_retries=2, **FAST)
    with FileServer(root, faults) as server:
        with open_binary(server.url + "big.warc.gz", settings) as stream:
            faults.p, faults.kinds = 1.0, ("503",)
            with pytest.raises(RetriesExhaustedError):
                read_in_chunks(stream)


def test_object_changed_between_requests_is_an_error(payload):
    root, data = payload
    faults = FaultInjector(p=0.0)
    faults.script = ["truncate"]
    with FileServer(root, faults) as server:
        stream = open_binary(server.url + "big.warc.gz", SourceSettings(**FAST))
        # Same size, different bytes: only the validators (ETag) can tell the versions apart.
        (root / "big.warc.gz").write_bytes(bytes(reversed(data)))
        with pytest.raises(ObjectChangedError) as info:
            read_in_chunks(stream)
        stream.close()
    message = str(info.value)
    assert "big.warc.gz" in message and "changed" in message and "etag" in message


def test_object_changed_size_detected_even_when_range_ignored(payload):
    root, data = payload
    faults = FaultInjector(p=0.0)
    faults.script = ["reset"]
    with FileServer(root, faults, honor_range=False) as server:
        stream = open_binary(server.url + "big.warc.gz", SourceSettings(**FAST))
        (root / "big.warc.gz").write_bytes(data + b"appended")
        with pytest.raises(ObjectChangedError):
            read_in_chunks(stream)
        stream.close()


def test_forbidden_is_permission_error_without_retries(payload):
    root, _ = payload
    with FileServer(root, status_overrides={"big.warc.gz": 403}) as server:
        with pytest.raises(PermissionError) as info:
            open_binary(server.url + "big.warc.gz", SourceSettings(**FAST))
        assert len(server.requests) == 1
    assert "big.warc.gz" in str(info.value)


def test_unexpected_client_error_is_not_retried(payload):
    root, _ = payload
    with FileServer(root, status_overrides={"big.warc.gz": 400}) as server:
        with pytest.raises(OSError, match="HTTP 400"):
            open_binary(server.url + "big.warc.gz", SourceSettings(**FAST))
        assert len(server.requests) == 1


def test_connection_refused_is_retried_then_reported():
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(RetriesExhaustedError) as info:
        open_binary(f"http://127.0.0.1:{port}/x.warc.gz", SourceSettings(max_retries=2, **FAST))
    assert "after 2 retries" in str(info.value)


def test_local_files_and_file_urls(tmp_path):
    data = write_payload(tmp_path / "a.warc.gz", 5000, seed=3)
    settings = SourceSettings()
    for url in (str(tmp_path / "a.warc.gz"), (tmp_path / "a.warc.gz").as_uri()):
        with open_binary(url, settings) as stream:
            assert stream.read() == data
            assert (stream.retries, stream.resumes) == (0, 0)
    with pytest.raises(FileNotFoundError):
        open_binary(str(tmp_path / "nope.warc"), settings)
    with pytest.raises(ValueError, match="ftp://"):
        open_binary("ftp://host/x.warc", settings)


def test_beam_branch_never_decompresses(tmp_path):
    # gs:// is not reachable offline; the same Beam FileSystems branch is exercised on a local
    # .gz path, which Beam would otherwise decompress by suffix.
    gz = require_shared("warc/warcio/example.warc.gz")
    with open_with_beam(str(gz)) as handle:
        raw = handle.read()
        assert (handle.retries, handle.resumes) == (0, 0)
    assert raw == gz.read_bytes()
    assert raw[:2] == b"\x1f\x8b"


def test_beam_listing_branch_matches_local_listing(tree):
    # The gs:// listing code path, driven through Beam's local filesystem.
    from pipelines.sources.listing import _expand_beam

    assert sorted(_expand_beam(str(tree / "a/deep/*.arc*"))) == [
        str(tree / "a/deep/four.arc"), str(tree / "a/deep/three.arc.gz")]
    assert sorted(_expand_beam(str(tree / "a") + "/")) == expand_inputs(str(tree / "a"),
                                                                          SourceSettings())


def test_gs_is_opened_through_beam_without_decompression(monkeypatch):
    import io

    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    seen = {}

    def fake_open(path, compression_type=None, **_):
        seen.update(path=path, compression=compression_type)
        return io.BytesIO(b"\x1f\x8b raw gzip member bytes")

    monkeypatch.setattr(FileSystems, "open", staticmethod(fake_open))
    handle = open_binary("gs://bucket/crawl/x.warc.gz", SourceSettings())
    assert handle.read() == b"\x1f\x8b raw gzip member bytes"
    assert seen == {"path": "gs://bucket/crawl/x.warc.gz", "compression": CompressionTypes.UNCOMPRESSED}
    assert (handle.retries, handle.resumes) == (0, 0)


def test_gs_without_a_filesystem_plugin_gives_clear_error(monkeypatch):
    from apache_beam.io.filesystems import FileSystems

    def no_plugin(*_, **__):  # what Beam raises when apache-beam[gcp] is not installed
        raise ValueError("Unable to get filesystem from specified path, please use the correct path")

    monkeypatch.setattr(FileSystems, "open", staticmethod(no_plugin))
    monkeypatch.setattr(FileSystems, "match", staticmethod(no_plugin))
    with pytest.raises(OSError, match="apache-beam\\[gcp\\]"):
        open_binary("gs://bucket/x.warc.gz", SourceSettings())
    with pytest.raises(InputError, match="gs://"):
        expand_inputs("gs://bucket/x/*.warc.gz", SourceSettings())


def test_importing_sources_does_not_import_beam():
    import subprocess

    code = ("import sys, pipelines.sources; "
            "print(any(m.startswith('apache_beam') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parent.parent, check=True)
    assert out.stdout.strip() == "False"


# -- expand_inputs on local inputs ---------------------------------------------------------------

@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for rel in ["a/one.warc.gz", "a/two.warc", "a/deep/three.arc.gz", "a/deep/four.arc",
                "a/notes.txt", "a/data.warc.gz.bad", "b/five.warc.gz"]:
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    return tmp_path


def test_expand_directory_recursive_archives_only(tree):
    got = expand_inputs(str(tree / "a"), SourceSettings())
    assert got == sorted(str(tree / r) for r in
                         ["a/one.warc.gz", "a/two.warc", "a/deep/three.arc.gz", "a/deep/four.arc"])


def test_expand_file_glob_and_comma_list_dedup(tree):
    settings = SourceSettings()
    assert expand_inputs(str(tree / "a/two.warc"), settings) == [str(tree / "a/two.warc")]
    assert expand_inputs((tree / "b/five.warc.gz").as_uri(), settings) == [str(tree / "b/five.warc.gz")]
    assert expand_inputs(str(tree / "*/*.warc.gz"), settings) == [
        str(tree / "a/one.warc.gz"), str(tree / "b/five.warc.gz")]
    assert expand_inputs(str(tree / "**/*.arc*"), settings) == [
        str(tree / "a/deep/four.arc"), str(tree / "a/deep/three.arc.gz")]
    spec = f"{tree / 'b'}, {tree / 'a/one.warc.gz'},{tree / '*/one.warc.gz'},https://h/x.warc.gz"
    assert expand_inputs(spec, settings) == sorted(
        [str(tree / "b/five.warc.gz"), str(tree / "a/one.warc.gz"), "https://h/x.warc.gz"])


def test_expand_relative_paths_become_absolute(tree, monkeypatch):
    monkeypatch.chdir(tree)
    assert expand_inputs("b", SourceSettings()) == [str(tree / "b/five.warc.gz")]


def test_expand_nothing_matched_names_the_part(tree):
    settings = SourceSettings()
    with pytest.raises(InputError) as info:
        expand_inputs(f"{tree / 'b'},{tree / 'nowhere/*.warc.gz'}", settings)
    assert "nowhere/*.warc.gz" in str(info.value) and "check" in str(info.value)
    with pytest.raises(InputError, match="directories only yield"):
        (tree / "empty").mkdir()
        expand_inputs(str(tree / "empty"), settings)
    with pytest.raises(InputError, match="empty input spec"):
        expand_inputs(" , ", settings)
    assert issubclass(InputError, ValueError)


def test_expand_shared_warcio_dir():
    root = require_shared("warc/warcio")
    got = expand_inputs(str(root), SourceSettings())
    names = [os.path.basename(p) for p in got]
    assert "example.warc.gz" in names and "example.arc" in names
    assert "example-bad.warc.gz.bad" not in names
    assert got == sorted(got)


# -- settings ------------------------------------------------------------------------------------

def test_settings_from_dict_and_validation():
    import pickle

    s = SourceSettings.from_dict({"s3_endpoint_url": "http://127.0.0.1:9", "max_retries": 2,
                                  "backoff_max_s": 3, "https_base": "http://mirror/cc"})
    assert s.max_retries == 2 and s.backoff_max_s == 3.0 and isinstance(s.backoff_max_s, float)
    assert s.https_base == "http://mirror/cc/"
    assert pickle.loads(pickle.dumps(s)) == s
    assert SourceSettings.from_dict({}) == SourceSettings()
    with pytest.raises(ValueError, match="max_retrys"):
        SourceSettings.from_dict({"max_retrys": 3})
    with pytest.raises(ValueError, match="max_retries"):
        SourceSettings.from_dict({"max_retries": "8"})
    with pytest.raises(ValueError, match="s3_base"):
        SourceSettings(s3_base="commoncrawl")
    with pytest.raises(ValueError, match="timeout_s"):
        SourceSettings(timeout_s=0)


def test_warcio_reads_records_through_a_faulty_stream(tmp_path):
    from warcio.archiveiterator import ArchiveIterator

    src = require_shared("warc/warcio/example-iana.org-chunked.warc")
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "x.warc").write_bytes(src.read_bytes())

    def records(stream):
        return [(r.rec_type, r.rec_headers.get_header("WARC-Record-ID"), r.content_stream().read())
                for r in ArchiveIterator(stream)]

    with open(src, "rb") as f:
        expected = records(f)
    faults = FaultInjector(p=0.0)
    faults.script = ["reset", "truncate", "503"]
    with FileServer(tmp_path / "w", faults) as server:
        with open_binary(server.url + "x.warc", SourceSettings(**FAST)) as stream:
            assert records(stream) == expected
    assert len(expected) > 1 and faults.total == 3
