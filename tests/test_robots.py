"""robots.txt opt-out: the library on Google's conformance cases, our status policy, and the
Beam join reproducing the shared truth file for every realweb URL on the 120 captured hosts."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from filters.robots import (
    STATUS_MISSING,
    STATUS_NOT_FOUND,
    STATUS_OK,
    STATUS_REDIRECT,
    STATUS_SERVER_ERROR,
    RobotsPolicy,
    choose_policy,
    host_key,
    strip_bom,
)
from tests.conftest import require_shared

AGENTS = ["CCBot", "GPTBot", "Google-Extended", "anthropic-ai", "ClaudeBot"]


# --- Google's conformance cases -------------------------------------------------------------

def _spec_message_class():
    """The RobotsTxtSpecification message built from its schema (specification.proto), so the
    textproto files are read by protobuf's own text-format parser."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    F = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(name="robots_spec_test.proto", package="specification",
                                             syntax="proto2")
    for enum_name, values in (("Outcome", ["UNSPECIFIED", "ALLOWED", "DISALLOWED"]),
                              ("TestType", ["STANDARD", "GOOGLE_SPECIFIC"])):
        enum = fdp.enum_type.add(name=enum_name)
        for number, value in enumerate(values):
            enum.value.add(name=value, number=number)
    spec = fdp.message_type.add(name="RobotsTxtSpecification")
    spec.field.add(name="tests", number=1, label=F.LABEL_REPEATED, type=F.TYPE_MESSAGE,
                   type_name=".specification.RobotsTxtTest")
    test = fdp.message_type.add(name="RobotsTxtTest")
    test.field.add(name="robotstxt", number=1, label=F.LABEL_OPTIONAL, type=F.TYPE_BYTES)
    test.field.add(name="test_expectations", number=2, label=F.LABEL_REPEATED, type=F.TYPE_MESSAGE,
                   type_name=".specification.Expectation")
    exp = fdp.message_type.add(name="Expectation")
    exp.field.add(name="testurl", number=1, label=F.LABEL_OPTIONAL, type=F.TYPE_STRING)
    exp.field.add(name="useragent", number=2, label=F.LABEL_OPTIONAL, type=F.TYPE_STRING)
    exp.field.add(name="expected_outcome", number=3, label=F.LABEL_OPTIONAL, type=F.TYPE_ENUM,
                  type_name=".specification.Outcome")
    # bytes, not string: some explanations hold deliberately invalid UTF-8 escapes (BOM cases).
    exp.field.add(name="additional_explanation", number=4, label=F.LABEL_OPTIONAL, type=F.TYPE_BYTES)
    exp.field.add(name="test_type", number=5, label=F.LABEL_OPTIONAL, type=F.TYPE_ENUM,
                  type_name=".specification.TestType")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("specification.RobotsTxtSpecification"))


def _conformance_cases(folder: Path):
    from google.protobuf import text_format

    spec_class = _spec_message_class()
    cases = []
    for path in sorted(folder.glob("*.textproto")):
        message = text_format.Parse(path.read_text(encoding="utf-8"), spec_class())
        for test in message.tests:
            for e in test.test_expectations:
                cases.append({"file": path.stem, "robots": test.robotstxt, "url": e.testurl,
                              "agent": e.useragent, "allowed": e.expected_outcome == 1,
                              "google_specific": e.test_type == 1})
    return cases


# Cases our choice (Protego + BOM stripping) decides differently from Google's C++ parser.
# Standard ones: Google compares paths byte-wise and expects callers to pass percent-encoded
# URLs; Protego normalises both sides (a raw "ツ" in the URL matches an "ツ" rule, "%62%61%7A"
# matches "baz").  Google-specific ones: Google reads "User-agent: Foo Bar" as "Foo" (up to the
# first space); Protego keeps the whole value, so "Foo" does not match that group.
KNOWN_DIFFERENCES = {
    ("non-ascii-paths", "http://foo.bar/foo/bar/ツ", "FooBot"),
    ("non-ascii-paths", "http://foo.bar/foo/bar/baz", "FooBot"),
    ("user-agent-name", "http://foo.bar/x/y", "Foo"),
    ("user-agent-name", "http://foo.bar/x/y", "Foo Bar"),
    ("user-agent-name", "http://foo.bar/a/b", "Foo"),
    ("user-agent-name", "http://foo.bar/a/b", "foo"),
}


def test_google_conformance_cases_all_run_and_only_known_differences_fail():
    folder = require_shared("robots/google-spec-tests")
    cases = _conformance_cases(folder)
    assert len(cases) > 100, "the conformance folder looks incomplete"
    failures = []
    for case in cases:
        policy = RobotsPolicy.from_response(200, case["robots"])
        allowed = not policy.disallowed_agents(case["url"], [case["agent"]])
        if allowed != case["allowed"]:
            failures.append(case)
    standard = [c for c in cases if not c["google_specific"]]
    std_fail = [c for c in failures if not c["google_specific"]]
    print(f"\nGoogle robots.txt conformance: {len(cases) - len(failures)}/{len(cases)} pass "
          f"({100 * (len(cases) - len(failures)) / len(cases):.1f}%); standard "
          f"{len(standard) - len(std_fail)}/{len(standard)}, google-specific "
          f"{len(cases) - len(standard) - (len(failures) - len(std_fail))}/{len(cases) - len(standard)}")
    unexpected = [(c["file"], c["url"], c["agent"], "ALLOWED" if c["allowed"] else "DISALLOWED")
                  for c in failures if (c["file"], c["url"], c["agent"]) not in KNOWN_DIFFERENCES]
    assert not unexpected, f"conformance cases newly failing: {unexpected}"
    # Everything that matters for us - groups, longest match, Allow overrides, wildcards, case
    # of directives, BOM, line endings - passes; only the documented URL-encoding edge cases differ.
    assert len(std_fail) <= 3


# --- status policy and parsing ---------------------------------------------------------------

@pytest.mark.parametrize("status,kind,disallowed", [
    (200, STATUS_OK, ["GPTBot"]),
    (301, STATUS_REDIRECT, []),
    (404, STATUS_NOT_FOUND, []),
    (403, STATUS_NOT_FOUND, []),       # RFC 9309: any 4xx, including 401/403, means "unavailable"
    (503, STATUS_SERVER_ERROR, AGENTS),
    (500, STATUS_SERVER_ERROR, AGENTS),
    (None, STATUS_SERVER_ERROR, AGENTS),
])
def test_status_policy(status, kind, disallowed):
    policy = RobotsPolicy.from_response(status, b"User-agent: GPTBot\nDisallow: /\n")
    assert policy.status == kind
    assert policy.disallowed_agents("https://example.org/page", AGENTS) == disallowed


def test_server_error_can_be_configured_as_allow():
    policy = RobotsPolicy.from_response(503, b"", server_error="allow")
    assert policy.disallowed_agents("https://example.org/", AGENTS) == []
    with pytest.raises(ValueError, match="server_error"):
        RobotsPolicy.from_response(503, b"", server_error="maybe")


def test_longest_match_allow_override_and_agent_groups():
    body = (b"User-agent: CCBot\nDisallow: /\nAllow: /blog/\n\n"
            b"User-agent: GPTBot\nUser-agent: ClaudeBot\nDisallow: /private\n\n"
            b"User-agent: *\nDisallow: /tmp/\n")
    policy = RobotsPolicy.from_response(200, body)
    assert policy.disallowed_agents("https://h.example/blog/post", AGENTS) == []
    assert policy.disallowed_agents("https://h.example/news/post", AGENTS) == ["CCBot"]
    assert policy.disallowed_agents("https://h.example/private/x", AGENTS) == ["CCBot", "GPTBot", "ClaudeBot"]
    # Agents without their own group fall back to "*"; GPTBot/ClaudeBot have one and do not.
    assert policy.disallowed_agents("https://h.example/tmp/a", AGENTS) == ["CCBot", "Google-Extended", "anthropic-ai"]


def test_case_insensitive_directives_bom_comments_and_empty_body():
    body = b"\xef\xbb\xbf# comment\nuser-agent: ccbot # the crawl\nDISALLOW: /x\n"
    policy = RobotsPolicy.from_response(200, body)
    assert policy.disallowed_agents("http://h.example/x/1", ["CCBot", "GPTBot"]) == ["CCBot"]
    assert RobotsPolicy.from_response(200, b"").disallowed_agents("http://h.example/", AGENTS) == []
    assert strip_bom(b"\xef\xbbUser-agent") == b"User-agent"


def test_invalid_utf8_does_not_lose_the_rules():
    body = b"# caf\xe9 menu\nUser-agent: GPTBot\nDisallow: /\n"
    assert RobotsPolicy.from_response(200, body).disallowed_agents("http://h.example/a", AGENTS) == ["GPTBot"]


def test_parse_limit_ignores_rules_after_max_bytes():
    body = b"User-agent: *\nDisallow: /a\n" + b"#" * 100 + b"\nUser-agent: GPTBot\nDisallow: /\n"
    policy = RobotsPolicy.from_response(200, body, max_bytes=40)
    assert policy.disallowed_agents("http://h.example/b", ["GPTBot"]) == []


def test_policy_text_round_trip_keeps_decisions():
    policy = RobotsPolicy.from_response(200, b"User-agent: GPTBot\nDisallow: /x\n", fetch_date="2024-05-01T00:00:00Z")
    again = RobotsPolicy.from_text(policy.to_text())
    assert again == policy
    assert again.disallowed_agents("http://h.example/x", AGENTS) == ["GPTBot"]


def test_choose_policy_prefers_success_then_latest_independent_of_order():
    old_ok = RobotsPolicy.from_response(200, b"User-agent: GPTBot\nDisallow: /\n", fetch_date="2024-01-01T00:00:00Z")
    new_ok = RobotsPolicy.from_response(200, b"User-agent: CCBot\nDisallow: /\n", fetch_date="2024-06-01T00:00:00Z")
    error = RobotsPolicy.from_response(503, b"", fetch_date="2024-09-01T00:00:00Z")
    for order in ([old_ok, new_ok, error], [error, new_ok, old_ok], [new_ok, error, old_ok]):
        assert choose_policy(order) == new_ok
    assert choose_policy([]).status == STATUS_MISSING


@pytest.mark.parametrize("url,key", [
    ("https://WWW.Example.org/a?b", "www.example.org"),
    ("http://www.example.org:80/", "www.example.org"),
    ("https://example.org:8443/x", "example.org:8443"),
    ("https://bücher.de/", "xn--bcher-kva.de"),
    ("https://example.org./", "example.org"),
    ("not a url", None),
    ("", None),
])
def test_host_key(url, key):
    assert host_key(url) == key


# --- the shared truth, through the Beam join --------------------------------------------------

def _realweb_urls_on(hosts: set[str]) -> list[str]:
    from pipelines.warc import iter_records, local_opener

    path = require_shared("realweb/realweb.warc.gz")
    return sorted({r.target_uri for r in iter_records(local_opener(str(path)), str(path))
                   if getattr(r, "rec_type", None) == "response" and host_key(r.target_uri or "") in hosts})


def _run_join(tmp_path: Path, docs: list[dict], robots_path: str, agents: list[str], workers: int) -> dict:
    import apache_beam as beam

    from pipelines.consent import ApplyHostOptOut, ReadRobots
    from pipelines.runner import new_pipeline

    out = tmp_path / f"joined-{workers}.json"
    with new_pipeline([], workers=workers) as p:
        read = p | ReadRobots([robots_path], {}, with_dead_letter=True)
        annotated = p | beam.Create(docs) | ApplyHostOptOut(read["robots"], agents)
        dead = read["dead_letter"] | "CountDead" >> beam.combiners.Count.Globally()
        (annotated | beam.combiners.ToList()
         | beam.Map(_dump, str(out), beam.pvalue.AsSingleton(dead)))
    return json.loads(out.read_text())


def _dump(rows, path, dead_count):
    with open(path, "w") as fh:
        json.dump({"rows": sorted(rows, key=lambda r: r["url"]), "dead": dead_count}, fh)


@pytest.mark.parametrize("workers", [1, 2])
def test_beam_join_reproduces_truth_for_every_realweb_url(tmp_path, workers):
    robots = require_shared("robots/robotstxt.warc.gz")
    truth = json.loads(require_shared("robots/robotstxt-truth.json").read_text())
    agents = truth["agents"]
    policies = {host_key("http://" + h): p for h, p in truth["hosts"].items()}   # IDN hosts as punycode
    # Realweb URLs on the captured hosts, plus the truth URLs themselves: three are spelled
    # differently in the WARC (trailing space, IDN host in Unicode vs punycode).
    urls = sorted(set(_realweb_urls_on(set(policies))) | set(truth["urls"]))
    docs = [{"url": u, "text": f"text of {u}"} for u in urls] + [{"url": "no-host-here", "text": "x"}]
    result = _run_join(tmp_path, docs, str(robots), agents, workers)
    rows = {r["url"]: r for r in result["rows"]}
    assert result["dead"] == 0
    assert len(rows) == len(docs), "documents were lost or duplicated in the join"
    assert rows["no-host-here"]["robots_status"] == "no_host"
    assert rows["no-host-here"]["robots_disallowed_agents"] == ""

    agree = disagree = checked = 0
    by_status: dict[str, int] = {}
    for url in urls:
        row = rows[url]
        assert row["text"] == f"text of {url}"
        by_status[row["robots_status"]] = by_status.get(row["robots_status"], 0) + 1
        opted_out = bool(row["robots_disallowed_agents"])
        policy = policies[host_key(url)]
        if url in truth["urls"]:
            expected = truth["urls"][url]["opted_out"]
        elif policy == "not-found":
            expected = False          # truth: 404 hosts are absent = allowed
            assert row["robots_status"] == "not_found"
        elif policy == "server-error":
            expected = True           # our documented policy: RFC 9309 complete disallow on 5xx
            assert row["robots_status"] == "server_error"
            assert row["robots_disallowed_agents"] == ",".join(agents)
        else:
            continue                  # another page of a host whose truth URL is checked above
        checked += 1
        if opted_out == expected:
            agree += 1
        else:
            disagree += 1
    print(f"\nworkers={workers}: {len(urls)} realweb docs on the 120 hosts joined; {agree}/{checked} "
          f"checked URLs agree with robotstxt-truth.json (+ our 503 policy); statuses "
          f"{dict(sorted(by_status.items()))}")
    assert checked == len(truth["urls"]) + sum(1 for u in urls if policies[host_key(u)] in ("not-found", "server-error"))
    assert disagree == 0
    assert by_status.get("not_found", 0) > 0 and by_status.get("server_error", 0) > 0


def test_host_without_capture_is_missing_and_allowed(tmp_path):
    robots = require_shared("robots/robotstxt.warc.gz")
    docs = [{"url": "https://no-capture.example/page", "text": "t"},
            {"url": "https://taz.de/some/page", "text": "t"}]
    rows = {r["url"]: r for r in _run_join(tmp_path, docs, str(robots), AGENTS, 1)["rows"]}
    assert rows["https://no-capture.example/page"]["robots_status"] == "missing"
    assert rows["https://no-capture.example/page"]["robots_disallowed_agents"] == ""
    assert rows["https://taz.de/some/page"]["robots_disallowed_agents"] == "CCBot"


def test_corrupt_robots_file_gives_dead_letter_not_crash(tmp_path):
    from pipelines.consent import robots_pairs_from_file
    from pipelines.sources import SourceSettings

    good = require_shared("robots/robotstxt.warc.gz").read_bytes()
    damaged = tmp_path / "damaged.warc.gz"
    # Garbage in the middle of the file: records before and after it must still come through.
    cut = len(good) // 2
    damaged.write_bytes(good[:cut] + b"garbage, not gzip" * 3 + good[cut:])
    out = list(robots_pairs_from_file(str(damaged), SourceSettings()))
    kinds = [k for k, _ in out]
    assert "dead" in kinds
    assert kinds.count("robots") >= 110
    missing = list(robots_pairs_from_file(str(tmp_path / "nope.warc.gz"), SourceSettings()))
    assert [k for k, _ in missing] == ["dead"] and missing[0][1]["reason"] == "source_error"


def test_robots_files_resolves_a_glob_and_needs_exactly_one_source():
    from pipelines.consent import ReadRobots, robots_files
    from pipelines.sources import SourceSettings

    robots = require_shared("robots/robotstxt.warc.gz")
    settings = SourceSettings()
    assert robots_files(settings, robots=str(robots.parent / "*.warc.gz")) == [str(robots)]
    with pytest.raises(ValueError, match="exactly one"):
        robots_files(settings)
    with pytest.raises(ValueError, match="exactly one"):
        robots_files(settings, robots=str(robots), snapshot="CC-MAIN-2024-22")
    with pytest.raises(ValueError, match="no robots.txt WARC files"):
        ReadRobots([], settings)
    with pytest.raises(ValueError, match="server_error"):
        ReadRobots([str(robots)], settings, server_error="sometimes")
