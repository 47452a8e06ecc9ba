"""S3 sources against moto's real S3 server (and a fault-injecting proxy in front of it)."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from pipelines.sources import (InputError, SourceSettings, expand_inputs, open_binary,
                               resolve_snapshot)
from pipelines.sources.s3 import list_keys
from tests.conftest import require_shared
from tests.servers import (FaultInjector, FaultyProxy, make_cc_layout, moto_s3_server,
                           patched_env, s3_test_client, upload_dir_to_s3, write_payload)

SNAPSHOT = "CC-MAIN-TEST-00"
FAST = dict(backoff_base_s=0.001, backoff_max_s=0.005, timeout_s=10.0)
WARCS = ["example.warc.gz", "example-resource.warc.gz", "post-test.warc.gz", "example.warc",
         "example.arc.gz"]


@pytest.fixture(scope="module")
def cc_bucket(tmp_path_factory):
    """moto S3 with a mini Common Crawl snapshot in bucket ``commoncrawl``."""
    sources = [require_shared(f"warc/warcio/{name}") for name in WARCS]
    root = tmp_path_factory.mktemp("cc")
    rel_paths = make_cc_layout(root, SNAPSHOT, sources, extra_collinfo_ids=["CC-MAIN-2001-01"])
    with moto_s3_server() as endpoint:
        upload_dir_to_s3(endpoint, "commoncrawl", root)
        yield endpoint, root, rel_paths


def settings_for(endpoint: str, **extra) -> SourceSettings:
    return SourceSettings(s3_endpoint_url=endpoint, **FAST, **extra)


def test_resolve_snapshot_lists_s3_urls(cc_bucket):
    endpoint, _, rel_paths = cc_bucket
    snapshot_id, urls = resolve_snapshot(SNAPSHOT, "s3", settings_for(endpoint))
    assert snapshot_id == SNAPSHOT
    assert urls == [f"s3://commoncrawl/{rel}" for rel in rel_paths]
    assert len(urls) == len(WARCS)


def test_open_binary_streams_exact_bytes(cc_bucket):
    endpoint, root, rel_paths = cc_bucket
    settings = settings_for(endpoint)
    for rel in rel_paths:
        with open_binary(f"s3://commoncrawl/{rel}", settings) as stream:
            got = stream.read(100) + stream.read()
            assert (stream.retries, stream.resumes) == (0, 0)
        assert got == (root / rel).read_bytes(), rel


def test_expand_inputs_s3_glob_prefix_and_key(cc_bucket):
    endpoint, _, rel_paths = cc_bucket
    settings = settings_for(endpoint)
    gz = [f"s3://commoncrawl/{r}" for r in rel_paths if r.endswith(".warc.gz")]
    assert len(gz) == 3
    assert expand_inputs("s3://commoncrawl/crawl-data/*/segments/*/warc/*.warc.gz", settings) == gz
    # A prefix yields archives only (not warc.paths.gz), with or without the trailing slash.
    everything = sorted(f"s3://commoncrawl/{r}" for r in rel_paths)
    assert expand_inputs(f"s3://commoncrawl/crawl-data/{SNAPSHOT}", settings) == everything
    assert expand_inputs(f"s3://commoncrawl/crawl-data/{SNAPSHOT}/", settings) == everything
    listing = f"s3://commoncrawl/crawl-data/{SNAPSHOT}/warc.paths.gz"
    assert expand_inputs(listing, settings) == [listing]
    assert expand_inputs(f"{gz[0]},{gz[0]},{gz[1]}", settings) == sorted(gz[:2])


def test_expand_inputs_s3_nothing_matched(cc_bucket):
    endpoint, _, _ = cc_bucket
    with pytest.raises(InputError) as info:
        expand_inputs("s3://commoncrawl/crawl-data/CC-MAIN-1999-01/*.warc.gz", settings_for(endpoint))
    assert "CC-MAIN-1999-01" in str(info.value) and "endpoint" in str(info.value)


def test_listing_paginates(cc_bucket):
    endpoint, _, rel_paths = cc_bucket
    keys = list(list_keys("commoncrawl", "crawl-data/", settings_for(endpoint), page_size=2))
    assert sorted(keys) == sorted(rel_paths + [f"crawl-data/{SNAPSHOT}/warc.paths.gz"])


def test_missing_key_and_bucket_are_file_not_found(cc_bucket):
    endpoint, _, _ = cc_bucket
    settings = settings_for(endpoint)
    url = "s3://commoncrawl/crawl-data/nope/missing.warc.gz"
    with pytest.raises(FileNotFoundError) as info:
        open_binary(url, settings)
    assert url in str(info.value)
    with pytest.raises(FileNotFoundError, match="no-such-bucket"):
        open_binary("s3://no-such-bucket/x.warc.gz", settings)
    with pytest.raises(ValueError, match="no object"):
        open_binary("s3://commoncrawl/", settings)


def test_missing_listing_is_a_clear_error(cc_bucket):
    endpoint, _, _ = cc_bucket
    with pytest.raises(FileNotFoundError) as info:
        resolve_snapshot(SNAPSHOT, "s3", settings_for(endpoint), kind="robotstxt")
    message = str(info.value)
    assert f"crawl-data/{SNAPSHOT}/robotstxt.paths.gz" in message and "check" in message


def test_default_endpoint_resolution_from_environment(cc_bucket):
    # s3_endpoint_url=None leaves endpoint choice to boto3, which honours AWS_ENDPOINT_URL_S3.
    endpoint, _, rel_paths = cc_bucket
    with patched_env({"AWS_ENDPOINT_URL_S3": endpoint}):
        _, urls = resolve_snapshot(SNAPSHOT, "s3", SourceSettings(**FAST))
    assert urls == [f"s3://commoncrawl/{rel}" for rel in rel_paths]


def test_custom_s3_base_prefix(cc_bucket):
    endpoint, root, rel_paths = cc_bucket
    client = s3_test_client(endpoint)
    client.create_bucket(Bucket="mirror")
    for rel in [f"crawl-data/{SNAPSHOT}/warc.paths.gz", *rel_paths]:
        client.upload_file(str(root / rel), "mirror", f"cc/{rel}")
    _, urls = resolve_snapshot(SNAPSHOT, "s3", settings_for(endpoint, s3_base="s3://mirror/cc"),
                               max_warcs=2, seed=5)
    assert len(urls) == 2
    assert all(u.startswith("s3://mirror/cc/crawl-data/") for u in urls)
    with open_binary(urls[0], settings_for(endpoint)) as stream:
        assert stream.read() == (root / urls[0].removeprefix("s3://mirror/cc/")).read_bytes()


def test_s3_survives_throttling_and_mid_body_resets(tmp_path):
    data = write_payload(tmp_path / "big" / "big.warc.gz", 2 * 1024 * 1024 + 777, seed=11)
    with moto_s3_server() as endpoint:
        upload_dir_to_s3(endpoint, "commoncrawl", tmp_path / "big")
        faults = FaultInjector(p=0.0)
        # Throttled twice, then the body dies twice (RST and clean close) before a clean resume.
        faults.script = ["503", "503-retry-after-0", "reset", "truncate", None]
        with FaultyProxy(endpoint, faults) as proxy:
            settings = settings_for(proxy.endpoint)
            with open_binary("s3://commoncrawl/big.warc.gz", settings) as stream:
                got = stream.read()
                retries, resumes = stream.retries, stream.resumes
            faults.p, faults.kinds = 0.3, ("503", "429")
            listed = expand_inputs("s3://commoncrawl/*.warc.gz", settings)
            requests = proxy.requests
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()
    assert faults.counts["reset"] == faults.counts["truncate"] == 1
    assert retries >= 2 and retries + resumes == 4
    ranged = [r for r in requests if r["range"]]
    assert ranged and all(r["range"].startswith("bytes=") for r in ranged)
    assert listed == ["s3://commoncrawl/big.warc.gz"]


def test_s3_object_replaced_mid_read_is_an_error(tmp_path):
    from pipelines.sources import ObjectChangedError

    write_payload(tmp_path / "v" / "obj.warc.gz", 1024 * 1024, seed=1)
    with moto_s3_server() as endpoint:
        upload_dir_to_s3(endpoint, "commoncrawl", tmp_path / "v")
        faults = FaultInjector(p=0.0)
        faults.script = ["truncate"]
        with FaultyProxy(endpoint, faults) as proxy:
            stream = open_binary("s3://commoncrawl/obj.warc.gz", settings_for(proxy.endpoint))
            s3_test_client(endpoint).put_object(Bucket="commoncrawl", Key="obj.warc.gz",
                                                Body=Path(tmp_path / "v" / "obj.warc.gz")
                                                .read_bytes()[::-1])
            with pytest.raises(ObjectChangedError, match="obj.warc.gz"):
                stream.read()
            stream.close()
