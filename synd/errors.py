"""One-line messages: every problem synd reports is one line, and these make it so.

* `one_line(text, limit)`: any text on one line (runs of whitespace, newlines included,
  become one space), cut at `limit` characters with "..." if given.
* `error_line(exc)`: an exception's message on one line, or its type's name when the
  message is empty.
* `shown_name(name, limit)`: a file or model name (or a message holding one) fit for one
  line: control characters escaped, a very long text shortened in the middle.
"""

from __future__ import annotations

import os


def one_line(text: object, limit: int | None = None) -> str:
    """`text` as one line of at most about `limit` characters."""
    line = " ".join(str(text).split())
    return line if limit is None or len(line) <= limit else line[:limit] + "..."


def error_line(exc: BaseException, limit: int | None = None) -> str:
    """The message of `exc` on one line (its type's name when it has none)."""
    return one_line(exc, limit) or type(exc).__name__


def shown_name(name: str | os.PathLike, limit: int = 200) -> str:
    """A file or model name (or a message holding one) fit for one line: control
    characters (a newline, a NUL) escaped, and a very long text shortened in the middle."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in os.fspath(name))
    return text if len(text) <= limit else f"{text[: limit * 2 // 3]}...{text[-limit // 3 :]}"
