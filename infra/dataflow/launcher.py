"""The file FLEX_TEMPLATE_PYTHON_PY_FILE names: hands the launcher's arguments to
pipelines.template_main.  It lives outside the pipelines package on purpose: a script inside
pipelines/ would put that folder first on sys.path, where pipelines/tokenize.py would shadow the
standard library's tokenize module."""
import sys

from pipelines.template_main import main

if __name__ == "__main__":
    sys.exit(main())
