"""The audit anchor file: one sealed head per line, only ever appended to.

It lives outside the database on purpose: whoever can rewrite the database
(and disable its triggers) should not also be able to rewrite this file.
Make it append-only at the OS level too where you can (`chattr +a`).
"""

from __future__ import annotations

import os
from pathlib import Path

import sqlalchemy as sa

from gasbill.domain.audit import Anchor, AnchorReading, anchor_line, parse_anchor

SUFFIX = ".audit-anchor"
TAIL_BYTES = 8192


def anchor_path(database_url: str, configured: str = "") -> Path | None:
    """The anchor file: as configured, else next to a SQLite database file, else none."""
    if configured:
        return Path(configured)
    try:
        url = sa.engine.make_url(database_url)
    except sa.exc.ArgumentError:
        return None
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(f"{url.database}{SUFFIX}")


class AnchorFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> AnchorReading:
        """Every anchor in the file, in order; a missing file holds none."""
        reading = AnchorReading()
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return reading
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                reading.anchors.append(parse_anchor(line))
            except ValueError:
                reading.unreadable.append(number)
        return reading

    def last(self) -> Anchor | None:
        """The newest readable anchor, from the file's tail only (the file grows for years)."""
        try:
            with self.path.open("rb") as handle:
                size = handle.seek(0, os.SEEK_END)
                handle.seek(max(0, size - TAIL_BYTES))
                tail = handle.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return None
        for line in reversed(tail.splitlines()):
            try:
                return parse_anchor(line)
            except ValueError:
                continue
        return None

    def append(self, anchor: Anchor) -> None:
        """Add one line and make it durable before returning."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, (anchor_line(anchor) + "\n").encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
