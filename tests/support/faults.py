"""Real write failures inside a running server: libfiu (Debian's fiu-utils).

The server runs under `fiu-run -x` (the POSIX preload library wraps libc's I/O
calls); `fiu-ctrl` turns failure points on and off in the live process, e.g.
`posix/io/rw/pwrite` (SQLite's page and WAL writes), `posix/io/sync/fdatasync`
(its commits' syncs), `posix/io/oc/open`. A failing call returns -1 with an
errno libfiu picks from the ones the call may set (EIO, ENOSPC, ...), so SQLite
sees what a failing disk would give it.
"""

from __future__ import annotations

import shutil
import subprocess

from .needs import require

FIU_RUN = shutil.which("fiu-run")
FIU_CTRL = shutil.which("fiu-ctrl")
WRAPPER = (FIU_RUN, "-x") if FIU_RUN else ()

WRITES = ("posix/io/rw/pwrite", "posix/io/sync/fdatasync")


def require_fiu() -> None:
    """Skip (saying why) where libfiu is missing; in CI it must be there (.ci/run installs it)."""
    require(None if FIU_RUN and FIU_CTRL else
            "libfiu's fiu-run/fiu-ctrl are not installed (Debian: apt-get install fiu-utils)")


class Faults:
    """Failure points of one process started under fiu-run."""

    def __init__(self, pid: int):
        self.pid = pid

    def _ctrl(self, command: str) -> None:
        subprocess.run([FIU_CTRL, "-c", command, str(self.pid)], check=True, timeout=10, capture_output=True)

    def fail(self, *names: str, probability: float = 1.0) -> None:
        for name in names:
            if probability >= 1:
                self._ctrl(f"enable name={name}")
            else:
                self._ctrl(f"enable_random name={name},probability={probability}")

    def clear(self, *names: str) -> None:
        for name in names:
            self._ctrl(f"disable name={name}")
