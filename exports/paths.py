"""Checks of the files a command will write, made before it does any work."""

from __future__ import annotations

from pathlib import Path

from exports.errors import ConfigError


def output_file(path: Path | str, what: str) -> Path:
    """``path`` as a Path, once its folder exists; ConfigError (one line, with the fix) when the
    folder is missing or ``path`` is a folder. ``what`` names the flag, e.g. ``'-o'``."""
    path = Path(path).expanduser()
    folder = path.parent
    if path.is_dir():
        raise ConfigError(f"{what} {path} is a folder; expected a file name inside it")
    if not folder.is_dir():
        raise ConfigError(
            f"{what} {path}: the folder {folder} does not exist; create it "
            f"(mkdir -p {folder}) or write somewhere else"
        )
    return path
