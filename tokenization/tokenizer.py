"""Byte-level BPE tokenizers: train one with HF ``tokenizers``, load ``tokenizer.json``, or convert a
tiktoken-format BPE file (``base64(token bytes) rank`` per line).

Every tokenizer we hand out has ``<|endoftext|>`` as a special token and encodes that string, when
it appears inside a document, as ordinary text (``encode_special_tokens``) so that data can never
forge a document boundary; the shard writer appends the real end-of-text id itself.
"""
from __future__ import annotations

import base64
import heapq
import json
import os
from pathlib import Path
from typing import Callable, Iterable, Iterator

from tokenization.encoding import DEFAULT_MAX_CHARS, text_pieces
from tokenization.dochash import doc_hash, row_doc_id
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

EOT_TOKEN = "<|endoftext|>"
MIN_VOCAB_SIZE = 256 + 1  # the 256 byte symbols plus <|endoftext|>

# Pre-tokenization patterns of well-known tiktoken encodings (tiktoken files do not carry them).
# Written for Oniguruma (HF tokenizers): there ``{1,3}+`` means "repeat the group", not possessive,
# so cl100k's possessive ``\p{N}{1,3}+`` is spelled ``\p{N}{1,3}`` (same matches: nothing follows).
TIKTOKEN_PATTERNS = {
    "gpt2": r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""",
    "cl100k_base": r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",
}


class TokenizerError(ValueError):
    """A tokenizer file cannot be used; the message names the file and the problem."""


# --- byte-level helpers ------------------------------------------------------------------------

def _bytes_to_unicode() -> dict[int, str]:
    # GPT-2's reversible byte -> printable character table, which HF's ByteLevel uses.
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) \
        + list(range(ord("®"), ord("ÿ") + 1))
    table = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


BYTE_TO_CHAR = _bytes_to_unicode()
CHAR_TO_BYTE = {c: b for b, c in BYTE_TO_CHAR.items()}


def token_bytes(tokenizer: Tokenizer, token_id: int) -> bytes:
    """The raw bytes a byte-level token stands for."""
    tok = tokenizer.id_to_token(token_id)
    if tok is None:
        raise KeyError(token_id)
    return bytes(CHAR_TO_BYTE[c] for c in tok)


def _finish(tok: Tokenizer) -> Tokenizer:
    if tok.token_to_id(EOT_TOKEN) is None:
        tok.add_special_tokens([AddedToken(EOT_TOKEN, special=True, normalized=False)])
    tok.encode_special_tokens = True
    return tok


def eot_id(tokenizer: Tokenizer) -> int:
    tid = tokenizer.token_to_id(EOT_TOKEN)
    if tid is None:
        raise TokenizerError(f"tokenizer has no {EOT_TOKEN} token")
    return tid


def vocab_size(tokenizer: Tokenizer) -> int:
    """One more than the largest token id (what the shard dtype must hold)."""
    return max(tokenizer.get_vocab(with_added_tokens=True).values()) + 1


# --- training ----------------------------------------------------------------------------------

def new_byte_level_bpe() -> Tokenizer:
    tok = Tokenizer(models.BPE())
    # add_prefix_space=False keeps decode(encode(x)) == x exactly.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    return tok


def train_bpe(texts: Iterable[str], vocab_size: int, *, min_frequency: int = 2,
              length: int | None = None) -> Tokenizer:
    """Train a byte-level BPE with ``vocab_size`` tokens (incl. ``<|endoftext|>``) on ``texts``."""
    if vocab_size < MIN_VOCAB_SIZE:
        raise ValueError(f"vocab size must be at least {MIN_VOCAB_SIZE} (256 bytes + {EOT_TOKEN}), "
                         f"got {vocab_size}")
    tok = new_byte_level_bpe()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, show_progress=False,
        special_tokens=[AddedToken(EOT_TOKEN, special=True, normalized=False)],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    # Long documents reach the trainer in pieces cut at spaces: the same pre-tokens, so the same
    # pair counts, in bounded memory (see tokenization/encoding.py).
    pieces = (p for text in texts for p in text_pieces(text, DEFAULT_MAX_CHARS))
    tok.train_from_iterator(pieces, trainer=trainer, length=length)
    return _finish(tok)


# --- loading -----------------------------------------------------------------------------------

def _looks_like_json(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(64).lstrip()
    return head.startswith(b"{")


def read_tiktoken_ranks(path: str | os.PathLike) -> dict[bytes, int]:
    """Parse a tiktoken BPE file into ``{token bytes: rank}``; errors name the file and line."""
    ranks: dict[bytes, int] = {}
    seen_ranks: set[int] = set()
    with open(path, "rb") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2:
                raise TokenizerError(f"{path}:{lineno}: expected 'BASE64TOKEN RANK', got {line[:60]!r}")
            try:
                tok = base64.b64decode(parts[0], validate=True)
                rank = int(parts[1])
            except ValueError as exc:
                raise TokenizerError(f"{path}:{lineno}: bad token or rank ({exc})") from None
            if tok in ranks or rank in seen_ranks or rank < 0:
                raise TokenizerError(f"{path}:{lineno}: duplicate or negative token/rank")
            ranks[tok] = rank
            seen_ranks.add(rank)
    missing = [b for b in range(256) if bytes([b]) not in ranks]
    if missing:
        raise TokenizerError(f"{path}: not a byte-level BPE: {len(missing)} single bytes have no rank "
                             f"(e.g. {missing[0]})")
    return ranks


def tokenizer_from_ranks(ranks: dict[bytes, int], *, pattern: str = "gpt2",
                         eot: int | None = None) -> Tokenizer:
    """A HF BPE that merges like tiktoken does over ``ranks``.

    tiktoken repeatedly joins the adjacent pair whose concatenation has the lowest rank, so every
    split ``token = a + b`` with both halves in the vocabulary becomes a merge with the priority of
    ``token``'s rank.  (Ties between two different splits of one token that are adjacent in the
    same word cannot be ordered the way tiktoken does, leftmost first; real vocabularies do not
    reach that state in practice — the tests compare against tiktoken itself.)
    """
    vocab = {"".join(BYTE_TO_CHAR[b] for b in tok): rank for tok, rank in ranks.items()}
    top = max(ranks.values())
    eot = top + 1 if eot is None else eot
    if eot < 0 or eot in ranks.values():
        raise TokenizerError(f"{EOT_TOKEN} id {eot} is already the rank of a BPE token")
    # HF gives an added token the id it already has in the model vocabulary, else the next id
    # after the vocabulary's size; placing <|endoftext|> and fillers for unused ranks in the
    # vocabulary keeps every id where the rank file put it.  No merge can produce these strings.
    vocab[EOT_TOKEN] = eot
    used = set(vocab.values())
    for i in range(max(top, eot) + 1):
        if i not in used:
            vocab[f"<|unused_{i}|>"] = i
    merges: list[tuple[int, int, int, str, str]] = []
    for tok, rank in ranks.items():
        for cut in range(1, len(tok)):
            left, right = tok[:cut], tok[cut:]
            if left in ranks and right in ranks:
                merges.append((rank, ranks[left], ranks[right],
                               "".join(BYTE_TO_CHAR[b] for b in left),
                               "".join(BYTE_TO_CHAR[b] for b in right)))
    merges.sort()
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[(a, b) for *_, a, b in merges]))
    regex = TIKTOKEN_PATTERNS.get(pattern, pattern)
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(regex), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(EOT_TOKEN, special=True, normalized=False)])
    if tok.token_to_id(EOT_TOKEN) != eot:
        raise TokenizerError(f"could not place {EOT_TOKEN} at id {eot}")
    return _finish(tok)


def load_tokenizer_file(path: str | os.PathLike, *, pattern: str = "gpt2",
                        eot: int | None = None) -> Tokenizer:
    """Load ``tokenizer.json`` or a tiktoken BPE file (detected by content)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"tokenizer file not found: {path}")
    if _looks_like_json(p):
        try:
            tok = Tokenizer.from_file(str(p))
        except Exception as exc:  # the Rust error text is good; add the file name
            raise TokenizerError(f"{path}: not a valid tokenizer.json ({exc})") from None
        return _finish(tok)
    return tokenizer_from_ranks(read_tiktoken_ranks(p), pattern=pattern, eot=eot)


def tokenizer_from_json(data: str) -> Tokenizer:
    return _finish(Tokenizer.from_str(data))


def tokenizer_json(tokenizer: Tokenizer) -> str:
    return tokenizer.to_str(pretty=False)


def tokenizer_meta(tokenizer_json: str, source: str) -> dict:
    """The manifest's tokenizer entry (without file/sha256) for a serialized tokenizer."""
    tok = tokenizer_from_json(tokenizer_json)
    return {"vocab_size": vocab_size(tok), "eot_token": EOT_TOKEN, "eot_id": eot_id(tok), "source": source}


# --- deterministic training sample from Parquet ------------------------------------------------

document_id = row_doc_id  # the one fallback id policy (tokenization.dochash)


def _success_listing(fs, root: str) -> set[str]:
    """Top-level names the folder's ``_SUCCESS`` (a stage's JSON marker) lists; empty otherwise."""
    try:
        with fs.open_input_stream(f"{root.rstrip('/')}/_SUCCESS") as fh:
            marker = json.loads(fh.read().decode("utf-8"))
        return {f for f in marker.get("files") or [] if isinstance(f, str) and "/" not in f}
    except Exception:  # noqa: BLE001 - absent, empty (Spark) or not ours: lists nothing
        return set()


def list_parquet(input_dir: str) -> tuple[object, list[str]]:
    """(pyarrow filesystem, sorted Parquet paths) for a directory, glob-free; local, s3:// or gs://.

    The standalone trainer's lister (no Beam here); the same rule as ``pipelines.inputs`` for one
    folder: its top-level ``*.parquet``, names starting with ``_`` or ``.`` skipped unless the
    folder's ``_SUCCESS`` lists them.  The pipelines list and read with ``pipelines.inputs`` and
    pass ``files``/``docs`` to :func:`sample_texts`."""
    import pyarrow.fs as pafs

    if "://" in input_dir:
        fs, root = pafs.FileSystem.from_uri(input_dir)
    else:
        fs, root = pafs.LocalFileSystem(), os.path.abspath(input_dir)
    info = fs.get_file_info(root)
    if info.type == pafs.FileType.File:
        return fs, [root]
    if info.type != pafs.FileType.Directory:
        raise FileNotFoundError(f"--input {input_dir}: no such directory")
    # Top level only, like the stages: refine keeps removed documents in DIR/removed/.
    listed = _success_listing(fs, root)
    files = sorted(f.path for f in fs.get_file_info(pafs.FileSelector(root, recursive=False))
                   if f.type == pafs.FileType.File and f.path.endswith(".parquet")
                   and (not os.path.basename(f.path).startswith((".", "_")) or os.path.basename(f.path) in listed))
    if not files:
        raise FileNotFoundError(f"--input {input_dir}: no .parquet files in it")
    return fs, files


class MissingTextColumn(ValueError):
    """A Parquet file without a ``text`` column; the message lists the columns it has."""


def parquet_rows(fh, batch_rows: int = 2048) -> Iterator[tuple[int, object, object, object]]:
    """(row number, doc_id or None, url or None, text as stored: maybe None or empty) of every row
    of an open Parquet file, read ``batch_rows`` at a time."""
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(fh)
    names = set(pf.schema_arrow.names)
    if "text" not in names:
        raise MissingTextColumn(f"columns: {sorted(names)}")
    cols = ["text"] + [c for c in ("doc_id", "url") if c in names]
    row = 0
    for batch in pf.iter_batches(batch_size=batch_rows, columns=cols):
        data = batch.to_pydict()
        ids = data.get("doc_id") or [None] * batch.num_rows
        urls = data.get("url") or [None] * batch.num_rows
        for doc_id, url, text in zip(ids, urls, data["text"]):
            yield row, doc_id, url, text
            row += 1


def iter_parquet_docs(fs, path: str, batch_rows: int = 2048) -> Iterator[tuple[int, str, str]]:
    """(row number, doc id, text) for each row with a non-empty string ``text``."""
    with fs.open_input_file(path) as fh:
        try:
            for row, doc_id, url, text in parquet_rows(fh, batch_rows):
                if isinstance(text, str) and text:
                    yield row, document_id(doc_id, url, text), text
        except MissingTextColumn:
            raise ValueError(f"{path}: Parquet file has no 'text' column") from None


def sample_texts(input_dir: str, sample_docs: int | None, seed: int, *, files: list[str] | None = None,
                 docs: Callable[[str], Iterator[tuple[int, str, str]]] | None = None) -> Iterator[str]:
    """Texts of the ``sample_docs`` documents with the smallest seeded hash (all when None).

    Two passes so memory holds only ``sample_docs`` small (hash, file, row) tuples, never the texts.
    ``files`` and ``docs`` (path -> (row, doc id, text) of the rows with text) let a caller list
    and read with its own I/O (``pipelines.inputs``); by default :func:`list_parquet` and pyarrow.
    """
    if files is None:
        fs, files = list_parquet(input_dir)
        docs = docs or (lambda path: iter_parquet_docs(fs, path))
    elif docs is None:
        raise ValueError("sample_texts: give docs (a reader) with files")
    if sample_docs is None:
        for path in files:
            for _, _, text in docs(path):
                yield text
        return
    keyed = ((doc_hash(seed, doc_id), fi, row)
             for fi, path in enumerate(files) for row, doc_id, _ in docs(path))
    chosen = heapq.nsmallest(sample_docs, keyed)
    wanted: dict[int, set[int]] = {}
    for _, fi, row in chosen:
        wanted.setdefault(fi, set()).add(row)
    for fi in sorted(wanted):
        rows = wanted[fi]
        for row, _, text in docs(files[fi]):
            if row in rows:
                yield text


def train_from_parquet(input_dir: str, vocab_size: int, *, sample_docs: int | None = None,
                       seed: int = 0, min_frequency: int = 2, files: list[str] | None = None,
                       docs: Callable[[str], Iterator[tuple[int, str, str]]] | None = None) -> Tokenizer:
    if sample_docs is not None and sample_docs <= 0:
        raise ValueError(f"--sample-docs must be positive, got {sample_docs}")
    # BPE pair counts do not depend on the order texts arrive in, so the second pass can stream
    # in file order; the sample itself is fixed by the seeded hash.
    return train_bpe(sample_texts(input_dir, sample_docs, seed, files=files, docs=docs), vocab_size,
                     min_frequency=min_frequency)
