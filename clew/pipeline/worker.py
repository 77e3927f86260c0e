"""The parse worker process: ``python -m clew.pipeline.worker FD`` (or a fork that calls ``run``).

It reads the pickled list of jobs from stdin and sends their batches down the pipe whose write
end is file descriptor ``FD`` (see ``clew.pipeline._stream``). It runs only Clew's own code on
jobs that Clew's own writer process built.
"""

from __future__ import annotations

import gc
import pickle
import sys
from multiprocessing.connection import Connection

from clew.pipeline import parse_worker


def run(jobs: bytes, fd: int) -> None:
    """Parse the pickled ``jobs`` and send their items down file descriptor ``fd``."""
    # The modules are never garbage: no collection needs to walk them (parse_worker pauses the
    # automatic collection itself).
    gc.freeze()
    if not jobs:
        return  # started ahead and then not needed (see clew.pipeline.ParseWorker)
    parse_worker(Connection(fd, readable=False), pickle.loads(jobs))


def main(argv: list[str]) -> None:
    run(sys.stdin.buffer.read(), int(argv[0]))


if __name__ == "__main__":
    main(sys.argv[1:])
