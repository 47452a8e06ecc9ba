"""Snapshot resolution over HTTP(S): ``latest`` from collinfo.json, listings, sampling."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.sources import SourceSettings, open_binary, resolve_snapshot, validate_snapshot_id
from tests.conftest import require_shared
from tests.servers import FaultInjector, FileServer, collinfo_entry, make_cc_layout, write_gzip_lines

FAST = dict(backoff_base_s=0.001, backoff_max_s=0.005, timeout_s=10.0)
NEWEST = "CC-MAIN-2099-05"
OLDER = ["CC-MAIN-2099-01", "CC-MAIN-2024-22", "CC-MAIN-2013-20"]


def http_settings(server: FileServer) -> SourceSettings:
    return SourceSettings(https_base=server.url, collinfo_url=server.url + "collinfo.json", **FAST)


@pytest.fixture
def cc_root(tmp_path: Path) -> tuple[Path, list[str]]:
    sources = [require_shared(f"warc/warcio/{n}")
               for n in ("example.warc.gz", "example-resource.warc.gz", "example.arc.gz")]
    rel_paths = make_cc_layout(tmp_path, NEWEST, sources, extra_collinfo_ids=OLDER)
    return tmp_path, rel_paths


def test_layout_matches_common_crawl_shape(cc_root):
    root, rel_paths = cc_root
    entries = json.loads((root / "collinfo.json").read_text())
    assert [e["id"] for e in entries] == [NEWEST, *OLDER]
    assert {"id", "name", "timegate", "cdx-api"} <= set(entries[0])
    assert all(r.startswith(f"crawl-data/{NEWEST}/segments/") and "/warc/" in r for r in rel_paths)


def test_latest_over_https_with_faults(cc_root):
    root, rel_paths = cc_root
    faults = FaultInjector(p=0.0)
    faults.script = ["503-retry-after-0", "truncate", "429"]  # collinfo fetch must retry/resume
    with FileServer(root, faults) as server:
        settings = http_settings(server)
        snapshot_id, urls = resolve_snapshot("latest", "https", settings)
        assert snapshot_id == NEWEST
        assert urls == [server.url + rel for rel in rel_paths]
        with open_binary(urls[0], settings) as stream:
            assert stream.read() == (root / rel_paths[0]).read_bytes()
    assert faults.total == 3


def test_latest_is_chosen_by_id_not_list_order(cc_root):
    root, _ = cc_root
    shuffled = [collinfo_entry(i) for i in ("CC-MAIN-2024-22", NEWEST, "CC-MAIN-2099-01")]
    (root / "collinfo.json").write_text(json.dumps(shuffled))
    with FileServer(root) as server:
        assert resolve_snapshot("latest", "https", http_settings(server))[0] == NEWEST


def test_latest_from_local_collinfo_and_explicit_id(cc_root):
    root, rel_paths = cc_root
    with FileServer(root) as server:
        settings = SourceSettings(https_base=server.url, collinfo_url=str(root / "collinfo.json"))
        snapshot_id, urls = resolve_snapshot("latest", "https", settings)
        assert (snapshot_id, len(urls)) == (NEWEST, len(rel_paths))
        assert resolve_snapshot(NEWEST, "https", settings) == (snapshot_id, urls)


def test_bad_collinfo_is_a_clear_error(tmp_path):
    (tmp_path / "collinfo.json").write_text("<html>maintenance</html>")
    (tmp_path / "empty.json").write_text("[]")
    with FileServer(tmp_path) as server:
        with pytest.raises(ValueError, match="collinfo"):
            resolve_snapshot("latest", "https", http_settings(server))
        settings = SourceSettings(collinfo_url=server.url + "empty.json", **FAST)
        with pytest.raises(ValueError, match="no crawl ids"):
            resolve_snapshot("latest", "https", settings)


@pytest.mark.parametrize("bad", ["cc-main-2024-22", "CC-MAIN-24-22", "CC-MAIN-2024-22/../x",
                                 "2024-22", "", "CC-MAIN-2024-22 ", "LATEST", "CC-MAIN-2024-2"])
def test_bad_snapshot_ids_rejected_before_any_request(tmp_path, bad):
    with FileServer(tmp_path) as server:
        with pytest.raises(ValueError) as info:
            resolve_snapshot(bad, "https", http_settings(server))
        assert server.requests == []
    assert repr(bad) in str(info.value)


def test_good_snapshot_id_shapes():
    for good in ("CC-MAIN-2024-22", "CC-MAIN-2013-20", "CC-MAIN-2012", "CC-MAIN-2009-2010",
                 "CC-MAIN-TEST-00"):
        assert validate_snapshot_id(good) == good


def test_missing_listing_and_bad_arguments(cc_root):
    root, _ = cc_root
    with FileServer(root) as server:
        settings = http_settings(server)
        with pytest.raises(FileNotFoundError) as info:
            resolve_snapshot(NEWEST, "https", settings, kind="robotstxt")
        assert f"crawl-data/{NEWEST}/robotstxt.paths.gz" in str(info.value)
        with pytest.raises(FileNotFoundError, match="CC-MAIN-2024-22"):
            resolve_snapshot("CC-MAIN-2024-22", "https", settings)
        with pytest.raises(ValueError, match="kind"):
            resolve_snapshot(NEWEST, "https", settings, kind="warcs")
        with pytest.raises(ValueError, match="gs"):
            resolve_snapshot(NEWEST, "gs", settings)
        with pytest.raises(ValueError, match="max_warcs"):
            resolve_snapshot(NEWEST, "https", settings, max_warcs=0)


def test_other_listing_kinds_and_corrupt_listing(cc_root):
    root, _ = cc_root
    write_gzip_lines(root / f"crawl-data/{NEWEST}/robotstxt.paths.gz",
                     [f"crawl-data/{NEWEST}/segments/x/robotstxt/r.warc.gz"])
    (root / f"crawl-data/{NEWEST}/wet.paths.gz").write_bytes(b"not gzip at all\n")
    with FileServer(root) as server:
        settings = http_settings(server)
        _, urls = resolve_snapshot(NEWEST, "https", settings, kind="robotstxt")
        assert urls == [server.url + f"crawl-data/{NEWEST}/segments/x/robotstxt/r.warc.gz"]
        with pytest.raises(ValueError, match="not a gzip text listing"):
            resolve_snapshot(NEWEST, "https", settings, kind="wet")


# -- sampling ------------------------------------------------------------------------------------

@pytest.fixture
def big_listing(tmp_path: Path) -> tuple[Path, list[str]]:
    paths = [f"crawl-data/{NEWEST}/segments/17000000000{s:02d}.{s}/warc/"
             f"CC-MAIN-2099-{s:02d}-{i:05d}.warc.gz" for s in range(20) for i in range(25)]
    write_gzip_lines(tmp_path / f"crawl-data/{NEWEST}/warc.paths.gz", paths)
    return tmp_path, paths


def test_max_warcs_sample_is_deterministic_seeded_and_spread(big_listing):
    root, paths = big_listing
    with FileServer(root) as server:
        settings = http_settings(server)

        def sample(k, seed):
            snapshot_id, urls = resolve_snapshot(NEWEST, "https", settings, max_warcs=k, seed=seed)
            assert snapshot_id == NEWEST
            return [u.removeprefix(server.url) for u in urls]

        a, again, other = sample(20, 0), sample(20, 0), sample(20, 1)
        small, everything = sample(5, 0), sample(10_000, 0)
    assert len(a) == 20 and len(set(a)) == 20
    assert a == again
    assert other != a and len(other) == 20
    assert set(a) <= set(paths)
    # Stable order: the listing's own order.
    assert a == [p for p in paths if p in set(a)]
    # Growing the sample only adds files.
    assert set(small) <= set(a)
    assert everything == paths
    # Spread over the listing rather than its head: several segments are represented.
    segments = {p.split("/segments/")[1].split("/")[0] for p in a}
    assert len(segments) >= 5
    assert a != paths[:20]
