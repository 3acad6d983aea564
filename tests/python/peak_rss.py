"""Runs a command and writes its own peak RSS (KiB) to a file.

Usage: peak_rss.py OUT COMMAND [ARGS...]

Exits with the command's exit code (128 + signal when killed); its stdin,
stdout and stderr are the command's. Why not `wait4` on the command directly
from the test: Linux counts the mm a process replaces at `exec` in its peak
RSS, and a child spawned by a test process shares (vfork) or copies (fork)
that process's memory, so its `ru_maxrss` starts at the test process's own
peak, hundreds of MiB in a test binary that runs many tests. Spawned from
this small process instead, the command's peak is its own (plus this
interpreter's few MiB).
"""

import os
import sys


def main() -> int:
    out, argv = sys.argv[1], sys.argv[2:]
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    with open(out, "w", encoding="ascii") as f:
        f.write(str(usage.ru_maxrss))
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


if __name__ == "__main__":
    sys.exit(main())
