"""``python -m adapters.local.deployer.reaper LABEL=VALUE``: removes a controller's replica containers once it is gone.

The controller starts it with a pipe on its stdin and never writes to it; the pipe ends when the controller's process
ends, whether it stopped, crashed or was SIGKILLed, and then the reaper force-removes every container carrying the
label (the controller's state dir, :mod:`.containers`). A controller that stopped normally has already stopped and
removed its containers, so the reaper usually finds none. It ignores SIGTERM and SIGINT: a ``lastmile down`` that
signals the controller's whole family must not take it away before the controller is gone. It imports nothing
heavy until then: waiting costs a blocked read.
"""

from __future__ import annotations

import signal
import sys


def main(argv: list[str]) -> int:
    if len(argv) != 1 or "=" not in argv[0]:
        print("usage: python -m adapters.local.deployer.reaper LABEL=VALUE", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while sys.stdin.buffer.read(65536):
        pass
    from adapters.local.deployer.containers import remove_labelled

    key, _, value = argv[0].partition("=")
    remove_labelled({key: value})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
