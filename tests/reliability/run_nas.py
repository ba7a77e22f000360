"""``python tests/reliability/run_nas.py ARGS``: ``python -m nas.cli ARGS`` with a test-only
pause point, so a kill test can stop the command at an exact moment and then SIGKILL it.

With ``NAS_TEST_PAUSE_AT=NAME:N`` and ``NAS_TEST_PAUSE_MARKER=PATH`` in the environment, the
N-th ``os.replace`` onto a file called NAME (the rename that ends an atomic write: the new
content is whole in its temporary file, the old file still in place) writes PATH and sleeps
until PATH.go exists, then renames. The test waits for PATH and kills the process there (or
lets it go on). Nothing of this is in the library.
"""

from __future__ import annotations

import os
import runpy
import sys
import time
from pathlib import Path


def _install_pause() -> None:
    spec = os.environ.get("NAS_TEST_PAUSE_AT")
    if not spec:
        return
    name, _, count = spec.rpartition(":")
    marker = Path(os.environ["NAS_TEST_PAUSE_MARKER"])
    real_replace = os.replace
    seen = 0

    def replace(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
        nonlocal seen
        if os.path.basename(os.fspath(target)) == name:
            seen += 1
            if seen == int(count):
                marker.write_text(f"{os.getpid()} {os.fspath(source)}\n")
                go = marker.with_name(marker.name + ".go")
                while not go.exists():  # or until the test's SIGKILL
                    time.sleep(0.01)
        real_replace(source, target)

    os.replace = replace  # type: ignore[assignment]


if __name__ == "__main__":
    _install_pause()
    sys.argv[0] = "nas"
    runpy.run_module("nas.cli", run_name="__main__", alter_sys=True)
