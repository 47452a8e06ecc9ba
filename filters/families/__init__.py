"""The signal families, one module each (see filters/family.py for what a module declares).

``BUILTIN`` is the registry's starting list, in stored-column order: the families below in this
order, then every other module of this package that defines ``FAMILY``, by module name.  So a
new family is one new module here: nothing else lists it.  (Once a new family ships, add it to
``ORDER`` at the end, so that a later module cannot sort in front of it and move its columns.)
"""
from __future__ import annotations

import importlib
import pkgutil

from filters.families import consent, language, pii, quality, quality_model, toxicity

ORDER = (language, quality, quality_model, toxicity, pii, consent)


def discovered() -> list:
    """The ``FAMILY`` of every module of this package not in ``ORDER``, by module name."""
    listed = {module.__name__ for module in ORDER}
    out = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        name = f"{__name__}.{info.name}"
        if name not in listed and not info.name.startswith("_"):
            out.append(importlib.import_module(name).FAMILY)
    return out


BUILTIN = (*(module.FAMILY for module in ORDER), *discovered())
