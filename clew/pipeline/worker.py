"""The parse worker process: ``python -m clew.pipeline.worker FD``.

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


def main(argv: list[str]) -> None:
    # The modules are never garbage: no collection needs to walk them (parse_worker pauses the
    # automatic collection itself).
    gc.freeze()
    data = sys.stdin.buffer.read()
    if not data:
        return  # started ahead and then not needed (see clew.pipeline.ParseWorker)
    parse_worker(Connection(int(argv[0]), readable=False), pickle.loads(data))


if __name__ == "__main__":
    main(sys.argv[1:])
