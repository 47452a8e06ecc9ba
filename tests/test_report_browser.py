"""The report as a person sees it: opened from disk in headless Chromium (Debian's ``chromium``).

Checks that the page renders without console errors (the browser's console is logged to stderr;
a control page with a deliberate error proves that errors would show), that the report's own
script runs under its Content-Security-Policy while an injected one is refused, that a number in
the rendered DOM equals the summary, and saves a screenshot under the test's temp dir.
Skips when no Chromium is installed (``.ci/run`` installs it on CI).
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pipelines.config import load_config
from pipelines.report import write_report
from tests.test_report import real_run  # noqa: F401  (session fixture: the stages run once)

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(BROWSER is None, reason="chromium not installed (apt-get install chromium; "
                                                       ".ci/run installs it on CI)")


def chromium(tmp_path: Path, page: Path, *extra: str) -> tuple[str, list[str]]:
    """(DOM after scripts ran or the tool's stdout, console lines) for ``page`` opened from disk."""
    profile = tmp_path / f"profile-{page.stem}"
    proc = subprocess.run([BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
                           "--virtual-time-budget=3000", *extra, page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line]
    return proc.stdout, console


def test_console_errors_would_be_seen(tmp_path):
    control = tmp_path / "control.html"
    control.write_text("<!DOCTYPE html><html><body><p>x</p><script>noSuchFunction();</script></body></html>")
    _, console = chromium(tmp_path, control, "--dump-dom")
    assert any("Uncaught" in line and "noSuchFunction" in line for line in console), console


def test_report_renders_cleanly_and_shows_the_summary(real_run, tmp_path):  # noqa: F811
    out = tmp_path / "report.html"
    write_report(str(real_run), load_config(), out=str(out))
    dom, console = chromium(tmp_path, out, "--dump-dom")
    assert console == [], console
    kept = json.loads((real_run / "refined" / "summary.json").read_text())["kept"]
    shown = re.search(r'data-fact="refine.kept">([\d,]+)<', dom)
    assert shown and int(shown.group(1).replace(",", "")) == kept
    assert 'title="click to sort"' in dom, "the report's own script ran (allowed by its CSP hash)"
    assert dom.count("<svg") >= 3

    shot = tmp_path / "report.png"
    chromium(tmp_path, out, f"--screenshot={shot}", "--window-size=1280,2400", "--hide-scrollbars")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000

    injected = tmp_path / "injected.html"
    injected.write_text(out.read_text(encoding="utf-8").replace(
        "</main>", "</main><script>document.title = 'pwned';</script>"), encoding="utf-8")
    dom, console = chromium(tmp_path, injected, "--dump-dom")
    assert "<title>pwned</title>" not in dom
    assert any("Content Security Policy" in line for line in console), console
