"""A zygote for the chaos test: imports heald once, then forks a fresh daemon process on request.

Importing heald costs about 8 s of CPU (skops enumerates scikit-learn's estimators at import); a hundred
restarts would spend most of the test importing. Each child here is a new process that runs
``daemon.service.main`` (the very function behind the ``heald`` console script) from the start: it opens the
store, reconciles, settles intake and ticks, with nothing shared but the imported modules. The test kills
children with SIGKILL through this zygote, which reaps them and reports how they ended.

Protocol, one line each way: ``start CONFIG LOG`` -> ``PID``; ``kill PID`` / ``term PID`` -> the exit status
(negative: the signal).
"""

from __future__ import annotations

import os
import signal
import sys
import traceback

import daemon.service  # the whole daemon, imported once for every child


def run_child(config: str, log: str) -> None:
    """In the forked child: stdout and stderr to ``log``, then heald's own main; never returns."""
    code = 70
    try:
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        out = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.dup2(out, 1)
        os.dup2(out, 2)
        try:
            daemon.service.main(["--config", config])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def ended(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def main() -> None:
    for line in sys.stdin:
        command, *args = line.split()
        if command == "start":
            pid = os.fork()
            if pid == 0:
                run_child(*args)
            print(pid, flush=True)
        elif command in ("kill", "term"):
            pid = int(args[0])
            os.kill(pid, signal.SIGKILL if command == "kill" else signal.SIGTERM)
            print(ended(pid), flush=True)


if __name__ == "__main__":
    main()
