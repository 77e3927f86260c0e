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
    # Parsing allocates millions of short-lived objects: collect rarely, and never the modules.
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    jobs = pickle.loads(sys.stdin.buffer.read())
    parse_worker(Connection(int(argv[0]), readable=False), jobs)


if __name__ == "__main__":
    main(sys.argv[1:])
