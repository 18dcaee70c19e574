"""The command line shared by the resumable paper-setting runs (``python -m mnistnd.<study>``)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable


def main(argv, description: str, run: Callable, publish: Callable, publish_help: str) -> None:
    """Parse ``WORKDIR [--threads N] [--source S] [--publish]``, run, then publish if asked.

    ``run(workdir, source=..., num_threads=...)`` does the (resumable) work;
    ``publish(workdir, source=...)`` writes the result tables into the release and returns the
    folder written.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("workdir")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--source", default="full", choices=("auto", "full", "bundled"))
    parser.add_argument("--publish", action="store_true", help=publish_help)
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    run(args.workdir, source=args.source, num_threads=args.threads)
    if args.publish:
        print(publish(args.workdir, source=args.source))
