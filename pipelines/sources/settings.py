"""Settings shared by every input source (HTTP(S), S3, local, gs://).

Plain values only, so a ``SourceSettings`` pickles into Beam workers unchanged.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

DEFAULT_USER_AGENT = "corpus-pipeline/0.1 (Common Crawl corpus builder)"


@dataclass(frozen=True)
class SourceSettings:
    # None -> boto3's own resolution (AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL env, config file).
    s3_endpoint_url: str | None = None
    https_base: str = "https://data.commoncrawl.org/"
    s3_base: str = "s3://commoncrawl/"
    collinfo_url: str = "https://index.commoncrawl.org/collinfo.json"
    # Retries allowed per request, and per interrupted body before it must make progress again.
    max_retries: int = 8
    # Exponential backoff with full jitter: sleep ~ U(0, min(backoff_max_s, backoff_base_s * 2**n)).
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    timeout_s: float = 60.0
    # None -> boto3's region resolution (AWS_DEFAULT_REGION etc.); Common Crawl's bucket is us-east-1.
    s3_region: str | None = None
    # Anonymous (unsigned) S3 requests, for public buckets that allow them and for credential-less mirrors.
    s3_unsigned: bool = False
    user_agent: str = DEFAULT_USER_AGENT
    # Seed of the deterministic --max-warcs sample (resolve_snapshot's default seed).
    sample_seed: int = 0

    def __post_init__(self) -> None:
        for name in ("https_base", "s3_base"):
            value = getattr(self, name)
            if not value.endswith("/"):
                # Bases are joined with relative listing paths; a missing slash would glue names together.
                object.__setattr__(self, name, value + "/")
        if not self.https_base.startswith(("https://", "http://")):
            raise ValueError(f"https_base must be an http(s):// URL, got {self.https_base!r}")
        if not self.s3_base.startswith("s3://") or len(self.s3_base) <= len("s3:///"):
            raise ValueError(f"s3_base must look like s3://bucket/[prefix/], got {self.s3_base!r}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        if self.backoff_base_s < 0 or self.backoff_max_s < 0:
            raise ValueError("backoff_base_s and backoff_max_s must be >= 0")
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s}")

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "SourceSettings":
        """Settings from a config mapping (e.g. a YAML section); unknown keys are an error."""
        d = dict(d or {})
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - set(fields))
        if unknown:
            raise ValueError(f"unknown source setting(s) {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(fields))}")
        kwargs = {}
        for name, value in d.items():
            kwargs[name] = _coerce(name, fields[name].type, value)
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _coerce(name: str, annotation: str, value: Any) -> Any:
    # Annotations are strings (``from __future__ import annotations``); accept ints for floats
    # (YAML writes ``backoff_max_s: 30``) but nothing lossy or surprising.
    optional = "None" in annotation
    if value is None:
        if optional:
            return None
        raise ValueError(f"source setting {name} may not be null")
    if annotation.startswith("bool"):
        if isinstance(value, bool):
            return value
    elif annotation.startswith("int"):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif annotation.startswith("float"):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif annotation.startswith("str"):
        if isinstance(value, str):
            return value
    else:  # pragma: no cover - a new field with a new type must extend this
        return value
    raise ValueError(f"source setting {name} must be {annotation}, got {value!r}")
