"""``pipelines.config``: the old import name of the configuration module, kept so that existing
code and scripts (``from pipelines.config import load_config``) keep working.

The code lives in the top-level ``settings`` package (Beam-free, below every layer) so that
``tokenization`` and ``trainer`` read configuration without importing ``pipelines``.  New code
imports ``settings``; this module only re-exports its public names.
"""
from __future__ import annotations

from settings import *  # noqa: F401,F403  (the names in settings.__all__)
from settings import __all__  # noqa: F401
