"""mypy, with bridges/ checked under its installed name, synd.bridges.

pyproject.toml installs bridges/ as synd.bridges ([tool.setuptools.package-dir]); mypy has
no such mapping and would check bridges/*.py as a top-level package `bridges`, leaving
every `from synd.bridges... import` unresolved. This runs mypy as `mypy` does, with the
settings of [tool.mypy] and any command-line arguments, after renaming those sources.

    .venv/bin/python scripts/typecheck.py          # the files of [tool.mypy]
    .venv/bin/python scripts/typecheck.py bridges/ndi.py synd/engine.py
"""

from __future__ import annotations

import sys
import time

from mypy import util
from mypy.fscache import FileSystemCache
from mypy.main import process_options, run_build


def main(args: list[str]) -> int:
    t0 = time.time()
    fscache = FileSystemCache()
    sources, options = process_options(args, fscache=fscache)
    for source in sources:
        if source.module == "bridges" or source.module.startswith("bridges."):
            source.module = "synd." + source.module
    _, messages, blockers = run_build(sources, options, fscache, t0, sys.stdout, sys.stderr)
    n_errors, n_notes, n_files = util.count_stats(messages)
    formatter = util.FancyFormatter(sys.stdout, sys.stderr, options.hide_error_codes)
    if n_errors:
        print(
            formatter.format_error(
                n_errors, n_files, len(sources), blockers=blockers, use_color=options.color_output
            )
        )
    else:
        print(formatter.format_success(len(sources), options.color_output))
    if messages and n_notes < len(messages):
        return 2 if blockers else 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
