"""Main-text extraction (trafilatura, or resiliparse), under a per-document time limit.

``extract.extractor`` picks the extractor: ``trafilatura`` (default; its options are
``extract.trafilatura``, ``fast: true`` skips its fallback extractors) or ``resiliparse``
(``extract_plain_text(html, main_content=True, **extract.resiliparse)``, the DCLM route: several
times cheaper, lower boilerplate-removal quality; see BENCHMARKS.md).  Each extractor gets only
its own section of options (``extractor_options``); an unknown option is a one-line error.  An
extractor whose package is missing is refused by ``check_extractor`` before any work, with a
one-line error -- never a silent fallback to the other one.

trafilatura runs in C (lxml) for much of its time, so a thread cannot be interrupted and SIGALRM
only works in a process's main thread (Beam runs DoFns in worker threads).  We therefore keep one
long-lived child process per extractor: documents go to it over a pipe, and only when one overruns
the limit is the child killed and a fresh one started.  The cost per document is one round trip
over the pipe, not a process: the page goes as its UTF-8 bytes (a page that has none -- lone
surrogates -- goes pickled, as it always did) and the child decodes them to the same str, so both
extractors see exactly the str they were given; the reply is pickled.  Starting the child costs
0.3 CPU-s once (BENCHMARKS.md "Cost per page").

``meta_consent`` parses only the part of a page that can hold a consent ``<meta>`` tag
(``consent_html``): nothing at all for a page whose <meta name> values are all ones
``filters.consent.extract_meta_consent`` ignores.
"""
from __future__ import annotations

import html as html_lib
import json
import logging
import os
import pickle
import re
import select
import struct
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, Mapping

from filters.consent import extract_meta_consent, meta_name_kept

log = logging.getLogger(__name__)

_TITLE = re.compile(r"<title[^>]*>(.*?)</title\s*>", re.I | re.S)

STARTUP_TIMEOUT_S = 120.0

EXTRACTORS = ("trafilatura", "resiliparse")
TRAFILATURA_KEYS = ("favor_precision", "favor_recall", "include_comments", "include_tables",
                    "include_links", "deduplicate", "fast")
# resiliparse.extract.html2text.extract_plain_text's switches; main_content is always on (without
# it the whole page is text: not an extractor).
RESILIPARSE_KEYS = ("alt_texts", "comments", "links", "list_bullets", "preserve_formatting", "form_fields",
                    "noscript")


class ExtractionTimeout(Exception):
    pass


class ExtractionError(Exception):
    pass


@dataclass
class Extracted:
    text: str
    title: str | None


def page_title(html: str) -> str | None:
    match = _TITLE.search(html[:200_000])
    if not match:
        return None
    title = " ".join(html_lib.unescape(match.group(1)).split())
    return title or None


# A <meta> start tag as both libxml2 and HTML5 tokenise it when it is well formed: attributes with
# "quoted", 'quoted' or plain values.  Any other "<meta" (a stray quote, no closing ">") is not
# understood here and the whole page goes to the parser.
_META_OPEN = re.compile(r"<meta(?=[\s/>])", re.I)
_META_TAG = re.compile(r"""<meta(?:\s+[^\s"'<>/=]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'=<>`]+))?|\s*/)*\s*>""", re.I)
_NAME_ATTR = re.compile(r"""[\s/]name\s*=""", re.I)
# The same tag in a stricter form whose attributes every HTML tokeniser reads alike (ASCII
# attribute names, ASCII blanks but no form feed, "/" only just before ">"), with exactly one name
# attribute, quoted, whose value is a plain ASCII word: the parser reads the same word, no entity.
# A tag that fails this counts as possibly kept.  No re.I: with it [a-z] would also match the
# Kelvin sign and the long s.
_BLANK = r"[ \t\n\r]"
_OTHER_ATTR = (rf"""{_BLANK}+(?![Nn][Aa][Mm][Ee](?![A-Za-z0-9_:.\-]))[A-Za-z][A-Za-z0-9_:.\-]*"""
               rf"""(?:{_BLANK}*={_BLANK}*(?:"[^"]*"|'[^']*'|[^ \t\n\r"'=<>`]+))?""")
_PLAIN_WORD = rf"{_BLANK}*([A-Za-z0-9_:.\-]+){_BLANK}*"
_PLAIN_NAME_TAG = re.compile(
    rf"""<[Mm][Ee][Tt][Aa](?:{_OTHER_ATTR})*{_BLANK}+[Nn][Aa][Mm][Ee]{_BLANK}*={_BLANK}*"""
    rf"""(?:"{_PLAIN_WORD}"|'{_PLAIN_WORD}')(?:{_OTHER_ATTR})*{_BLANK}*/?>""")


def _may_be_kept(tag: str) -> bool:
    """False only when ``tag`` (a ``_META_TAG`` match) surely has a name that
    ``filters.consent.extract_meta_consent`` ignores; anything unclear counts as kept."""
    plain = _PLAIN_NAME_TAG.fullmatch(tag)
    if plain is None:
        return True
    return meta_name_kept(plain.group(1) or plain.group(2))


def consent_html(html: str) -> str:
    """The part of ``html`` that gives the same ``filters.consent.extract_meta_consent`` result.

    Only ``<meta name=...>`` elements whose name that function keeps count (robots,
    tdm-reservation, a configured agent, a crawler-like name), and an HTML parser builds elements
    in one pass, so the page up to the end of the last ``<meta>`` tag that may carry such a name
    holds every one of them with the same attributes; the rest (usually most of the head and the
    whole body) need not be parsed.  A tag's name counts as ignorable only when it is a plain
    quoted ASCII word (no entity, one ``name`` attribute, a tag every tokeniser reads alike) that
    the function ignores; a cut never falls inside an earlier ``<meta`` tag.  A page without a tag
    that may count gives "" (no meta consent); one with a ``<meta`` this scan cannot tokenise is
    returned whole.  Measured in bench/profile_extract.py ("consent meta tags").
    """
    if not isinstance(html, str):
        return html
    end = 0
    tags_end = 0                    # end of the furthest tag so far: a cut never falls inside one
    for opening in _META_OPEN.finditer(html):
        tag = _META_TAG.match(html, opening.start())
        if tag is None:
            return html
        text = tag.group()
        if _NAME_ATTR.search(text) and _may_be_kept(text):
            end = max(end, tag.end(), tags_end if tag.start() < tags_end else 0)
        tags_end = max(tags_end, tag.end())
    return html[:end]


def meta_consent(html: str) -> dict:
    """``filters.consent.extract_meta_consent`` of the page, parsing only ``consent_html(html)``."""
    return extract_meta_consent(consent_html(html))


def trafilatura_kwargs(options: Mapping[str, Any]) -> dict:
    return _switches("trafilatura", options, TRAFILATURA_KEYS)


def resiliparse_kwargs(options: Mapping[str, Any]) -> dict:
    return {"main_content": True, **_switches("resiliparse", options, RESILIPARSE_KEYS)}


def _switches(name: str, options: Mapping[str, Any], known: tuple[str, ...]) -> dict:
    unknown = set(options) - set(known)
    if unknown:
        raise ValueError(f"unknown {name} option(s): {', '.join(sorted(unknown))} (known: {', '.join(known)})")
    return {k: bool(v) for k, v in options.items()}


def extractor_options(cfg: Mapping[str, Any]) -> dict:
    """The options of the configured extractor: ``cfg[cfg["extractor"]]`` (an ``extract`` config)."""
    return dict(cfg.get(cfg["extractor"]) or {})


def check_extractor(name: str) -> None:
    """ValueError (one line) unless ``name`` is a known extractor whose package imports."""
    if name not in EXTRACTORS:
        raise ValueError(f"extract.extractor must be one of {', '.join(EXTRACTORS)}, got {name!r}")
    if name == "resiliparse":
        try:
            import resiliparse.extract.html2text  # noqa: F401
        except ImportError as exc:
            raise ValueError("extract.extractor is 'resiliparse' but the resiliparse package cannot be "
                             f"imported ({exc}); install resiliparse==2.0.0 (requirements.lock)") from None


def extract_now(html: str, url: str | None, options: Mapping[str, Any],
                extractor: str = "trafilatura") -> Extracted:
    """Extract in this process (no time limit)."""
    if extractor == "resiliparse":
        from resiliparse.extract.html2text import extract_plain_text

        return Extracted(text=extract_plain_text(html, **resiliparse_kwargs(options)) or "", title=page_title(html))
    import trafilatura

    text = trafilatura.extract(html, url=url, output_format="txt", with_metadata=False,
                               **trafilatura_kwargs(options))
    return Extracted(text=text or "", title=page_title(html))


def _send(fh, obj) -> None:
    blob = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    fh.write(struct.pack("<Q", len(blob)))
    fh.write(blob)
    fh.flush()


def _recv(fh):
    head = fh.read(8)
    if len(head) < 8:
        raise EOFError("extractor pipe closed")
    (size,) = struct.unpack("<Q", head)
    blob = fh.read(size)
    if len(blob) < size:
        raise EOFError("extractor pipe closed mid-message")
    return pickle.loads(blob)


# A request to the child: two little-endian 8-byte sizes, a pickled ``(html, url)`` (or None: stop)
# and a raw payload.  The page travels as its UTF-8 bytes in the payload, with ``html`` None: the
# child decodes them to the very same str, and the parent saves pickle's extra copy of the page
# (and the UTF-8 copy pickling caches inside the str).  Replies are ``_send`` frames.
_REQUEST_HEAD = struct.Struct("<QQ")


def _send_request(fh, message, payload: bytes = b"") -> None:
    blob = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    fh.write(_REQUEST_HEAD.pack(len(blob), len(payload)))
    fh.write(blob)
    if payload:
        fh.write(payload)
    fh.flush()


def _recv_request(fh):
    """``(message, payload)``; EOFError when the pipe closes."""
    head = fh.read(_REQUEST_HEAD.size)
    if len(head) < _REQUEST_HEAD.size:
        raise EOFError("extractor pipe closed")
    blob_size, payload_size = _REQUEST_HEAD.unpack(head)
    blob = fh.read(blob_size)
    payload = fh.read(payload_size) if payload_size else b""
    if len(blob) < blob_size or len(payload) < payload_size:
        raise EOFError("extractor pipe closed mid-message")
    return pickle.loads(blob), payload


def _serve(options: Mapping[str, Any], extractor: str = "trafilatura") -> None:
    """Child side: read ``_send_request`` frames from stdin, answer on the original stdout."""
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything a library prints goes to stderr, never into the protocol
    logging.getLogger("trafilatura").setLevel(logging.ERROR)
    # imported before "ready" so it does not count against a document
    if extractor == "resiliparse":
        import resiliparse.extract.html2text  # noqa: F401
    else:
        import trafilatura  # noqa: F401

    _send(out, "ready")
    inp = sys.stdin.buffer
    while True:
        try:
            message, payload = _recv_request(inp)
        except EOFError:
            return
        if message is None:
            return
        html, url = message
        try:
            if html is None:
                html = payload.decode("utf-8")
            result = extract_now(html, url, options, extractor)
            _send(out, ("ok", result.text, result.title))
        except Exception as exc:  # reported to the parent, which dead-letters the record
            _send(out, ("error", f"{type(exc).__name__}: {exc!s:.300}", None))


class Extractor:
    """Extracts main text; ``timeout_s`` > 0 runs the extractor in a reusable child process."""

    def __init__(self, options: Mapping[str, Any], timeout_s: float = 0.0, extractor: str = "trafilatura"):
        """``options``: the chosen extractor's own (``extractor_options(cfg)``)."""
        self.options = dict(options)
        check_extractor(extractor)
        (resiliparse_kwargs if extractor == "resiliparse" else trafilatura_kwargs)(self.options)  # validate early
        self.extractor = extractor
        self.timeout_s = float(timeout_s or 0)
        self._proc: subprocess.Popen | None = None
        self.restarts = 0

    def _start(self) -> None:
        # A fresh interpreter (fork+exec), not multiprocessing: the Beam SDK worker runs gRPC
        # threads that do not survive a bare fork, and "spawn" would re-import the caller's main.
        proc = subprocess.Popen([sys.executable, "-m", "pipelines.html_text", json.dumps(self.options),
                                 self.extractor],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None)
        self._proc = proc
        try:
            if not self._wait(STARTUP_TIMEOUT_S) or _recv(proc.stdout) != "ready":
                raise ExtractionError("extractor process did not start")
        except (EOFError, OSError) as exc:
            self._kill()
            raise ExtractionError(f"extractor process did not start: {exc}") from exc

    def _wait(self, seconds: float) -> bool:
        ready, _, _ = select.select([self._proc.stdout], [], [], seconds)
        return bool(ready)

    def extract(self, html: str, url: str | None = None, utf8: bytes | None = None) -> Extracted:
        """``utf8``, if given, must be ``html.encode("utf-8")`` (``charset.utf8_of``): the bytes
        the child process is sent, saving the encoding of the page."""
        if self.timeout_s <= 0:
            try:
                return extract_now(html, url, self.options, self.extractor)
            except Exception as exc:
                raise ExtractionError(f"{type(exc).__name__}: {exc!s:.300}") from exc
        if self._proc is None or self._proc.poll() is not None:
            self._start()
        try:
            self._send_document(html, url, utf8)
            if not self._wait(self.timeout_s):
                self._kill()
                raise ExtractionTimeout(f"extraction exceeded {self.timeout_s:g}s")
            status, text, title = _recv(self._proc.stdout)
        except (EOFError, BrokenPipeError, ConnectionResetError, OSError) as exc:
            self._kill()
            raise ExtractionError(f"extractor process died: {type(exc).__name__}") from exc
        if status != "ok":
            raise ExtractionError(text)
        return Extracted(text=text or "", title=title)

    def _send_document(self, html, url, utf8: bytes | None = None) -> None:
        if utf8 is not None:
            _send_request(self._proc.stdin, (None, url), utf8)
            return
        if type(html) is str:
            try:
                data = html.encode("utf-8")
            except UnicodeEncodeError:
                pass  # lone surrogates: the pickled str reaches the extractor as it always did
            else:
                _send_request(self._proc.stdin, (None, url), data)
                return
        _send_request(self._proc.stdin, (html, url))

    def _kill(self) -> None:
        self.restarts += 1
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()
            proc.wait(timeout=10)
            for fh in (proc.stdin, proc.stdout):
                try:
                    fh.close()
                except Exception:
                    pass

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            _send_request(proc.stdin, None)
            proc.stdin.close()
            proc.wait(timeout=5)
        except Exception:
            proc.kill()
            proc.wait(timeout=5)
        finally:
            try:
                proc.stdout.close()
            except Exception:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


if __name__ == "__main__":
    _serve(json.loads(sys.argv[1]) if len(sys.argv) > 1 else {},
           sys.argv[2] if len(sys.argv) > 2 else "trafilatura")
