"""PATH sandboxes for testing the project's shell scripts with stub cloud tools."""
from __future__ import annotations

import shutil
from pathlib import Path

BASIC_TOOLS = ("bash", "sed", "git", "mktemp", "cp", "find", "date", "tr", "dirname", "rm", "cat", "mkdir",
               "env", "printf", "gcloud", "terraform")


def tool_path(tmp_path: Path, drop: set[str]) -> str:
    """A PATH with the basic tools the scripts use, minus ``drop``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in BASIC_TOOLS:
        found = shutil.which(tool)
        if found and tool not in drop and not (bin_dir / tool).exists():
            (bin_dir / tool).symlink_to(found)
    return str(bin_dir)


def stub_tool(tmp_path: Path, name: str, log_own_path: bool = False) -> None:
    """Replace ``name`` on the sandbox PATH by a stub appending its arguments to $FAKE_LOG
    (prefixed by its own path when ``log_own_path``)."""
    path = tmp_path / "bin" / name
    if path.exists() or path.is_symlink():
        path.unlink()
    line = '"$0 $*"' if log_own_path else '"$*"'
    path.write_text(f'#!/bin/bash\nprintf \'%s\\n\' {line} >> "${{FAKE_LOG:-/dev/null}}"\n')
    path.chmod(0o755)
