"""The ``mnistnd`` command: run one chapter, build the book, export the MNIST-Nd datasets.

Examples
--------
::

    mnistnd run notebooks/data.md --profile smoke -p n_per_digit 4 -p source bundled
    mnistnd params notebooks/data.md
    mnistnd book --profile quick            # HTML in _build/html
    mnistnd export --out mnistnd_datasets   # .h5ad/.csv.gz of the six datasets
    mnistnd export --format clustbench --out suite   # the release as the battery suite/mnistnd
    mnistnd release verify --dims 2 --epochs 1   # retrain one epoch, compare with the release
    mnistnd release build                   # train at the paper's settings, write the release
    mnistnd classroom --out student         # the chapters without solutions, with check cells

Exit status: 0 on success, 2 for bad input (nothing was run), 1 when a chapter or the book build
failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mnistnd.profiles import PROFILES

_EPILOG = (
    "--artifacts-dir is the artifacts root (default $MNISTND_ARTIFACTS_DIR or ./_runs); "
    "each profile works in <root>/<profile>."
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mnistnd",
        description="MNIST-Nd compendium: run chapters, build the book, export datasets.",
        epilog=_EPILOG,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(p, profile_default="quick"):
        p.add_argument("--profile", default=profile_default,
                       help=f"one of {', '.join(PROFILES)} (default: {profile_default})")
        p.add_argument("--artifacts-dir", default=None, metavar="DIR",
                       help="artifacts root (default: $MNISTND_ARTIFACTS_DIR or ./_runs)")

    run = sub.add_parser("run", help="execute one chapter with papermill",
                         description="Execute one chapter (notebooks/<name>.md) into "
                         "<artifacts>/<profile>/notebooks/<name>.ipynb.", epilog=_EPILOG)
    run.add_argument("notebook", help="chapter source (notebooks/data.md) or name (data)")
    run.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                     metavar=("NAME", "VALUE"),
                     help="set a parameter the notebook declares (repeatable); lists as 2,4,8")
    common(run)
    run.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                     help="time limit per cell")
    run.add_argument("--no-progress", action="store_true", help="hide progress bars")

    params = sub.add_parser("params", help="list a chapter's parameters and profile values")
    params.add_argument("notebook", help="chapter source (notebooks/data.md) or name (data)")

    book = sub.add_parser("book", help="run every chapter of _toc.yml, then jupyter-book build -W",
                          epilog=_EPILOG)
    common(book)
    book.add_argument("--output", default=None, metavar="DIR",
                      help="HTML output folder (default: <book root>/_build/html)")
    book.add_argument("--chapters", nargs="+", default=None, metavar="NAME",
                      help="execute only these chapters (the others reuse their executed copies)")
    book.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                      help="time limit per cell")
    book.add_argument("--no-progress", action="store_true", help="hide progress bars")

    export = sub.add_parser("export", help="write the MNIST-Nd datasets as .h5ad and .csv.gz, "
                            "or as a clustbench battery", epilog=_EPILOG)
    common(export)
    export.add_argument("--out", default="mnistnd_datasets", metavar="DIR",
                        help="output folder (default: ./mnistnd_datasets); clustbench: the "
                        "suite folder, the battery is <DIR>/mnistnd")
    export.add_argument("--format", choices=("h5ad", "clustbench"), default="h5ad",
                        help="h5ad: the profile's trained datasets as .h5ad and .csv.gz; "
                        "clustbench: a battery for clustbench.load_dataset (default: h5ad)")
    export.add_argument("--source", choices=("release", "artifacts", "auto"), default=None,
                        help="clustbench only: the release shipped with the package, the "
                        "profile's trained datasets, or those when present (default: release)")
    _release_parser(sub)
    _classroom_parser(sub)
    return parser


def _classroom_parser(sub) -> None:
    room = sub.add_parser("classroom", help="write the student edition: chapters without "
                          "solutions, with a check cell per checkable exercise",
                          description="Write the chapters as notebooks for students: "
                          "solutions removed, exercises with a computable answer followed by "
                          "a cell calling mnistnd.exercises.check (see book/instructors.md).")
    room.add_argument("--out", required=True, metavar="DIR",
                      help="output folder (must not exist, or be empty)")
    room.add_argument("--chapters", nargs="+", default=None, metavar="NAME",
                      help="chapters to include (default: every chapter of _toc.yml)")
    room.add_argument("--format", choices=("ipynb", "md"), default="ipynb",
                      help="notebook format: ipynb, or MyST markdown for jupytext (default: ipynb)")


def _release_parser(sub) -> None:
    rel = sub.add_parser("release", help="build or verify the MNIST-Nd release shipped with "
                         "the package", description="The MNIST-Nd release (mnistnd.release): "
                         "`build` trains the six m-VAEs at the paper's settings and writes the "
                         "release; `verify` retrains the first epochs and compares bit for bit.")
    action = rel.add_subparsers(dest="action", required=True, metavar="ACTION")
    build = action.add_parser("build", help="train (resumable) and write the release")
    build.add_argument("--artifacts-dir", default=None, metavar="DIR",
                       help="training folder (default: <artifacts root>/paper)")
    build.add_argument("--out", default=None, metavar="DIR",
                       help="release folder to write (default: the package's own)")
    build.add_argument("--n-jobs", type=int, default=2, metavar="N",
                       help="models trained at once, one single-thread process each")
    verify = action.add_parser("verify", help="retrain the first epochs and compare histories")
    verify.add_argument("--dims", type=int, nargs="+", default=[2], metavar="D",
                        help="latent dimensions to retrain (default: 2)")
    verify.add_argument("--epochs", type=int, default=1, metavar="N",
                        help="epochs to retrain and compare (default: 1)")
    action.add_parser("check", help="check every release file against the manifest's sha256")


class _BadInput(Exception):
    pass


def _cli_parameters(notebook, pairs: list[list[str]]) -> dict:
    """Parse ``-p NAME VALUE`` pairs per the notebook's declarations (before anything runs)."""
    from mnistnd.book import ParameterError, notebook_parameters, parse_value
    from mnistnd.profiles import RESERVED

    declared = notebook_parameters(notebook)
    values: dict = {}
    for name, text in pairs:
        if name in values:
            raise ParameterError(f"parameter {name!r} is given twice")
        if name in RESERVED:
            option = "--artifacts-dir" if name == "artifacts_dir" else "--profile"
            raise ParameterError(f"parameter {name!r} is set by the runner; use {option}")
        if name not in declared:
            known = ", ".join(n for n in declared if n not in RESERVED) or "(none)"
            raise ParameterError(f"parameter {name!r} is not declared in the parameters cell of "
                                 f"{notebook}; declared: {known}")
        values[name] = parse_value(declared[name], text)
    return values


def _notebook_path(text: str):
    """Accept a chapter name (``data``) as well as a path (``notebooks/data.md``)."""
    from mnistnd.book.toc import chapter_source

    return chapter_source(text)


def _check_creatable(path: Path, name: str) -> None:
    """Refuse a folder that exists as a file, or that cannot be created or written."""
    import os

    if path.exists():
        if not path.is_dir():
            raise NotADirectoryError(f"{name}: {str(path)!r} exists and is not a directory")
        if not os.access(path, os.W_OK | os.X_OK):
            raise PermissionError(f"{name}: directory {str(path)!r} is not writable")
        return
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"{name}: cannot create {str(path)!r} ({str(parent)!r} is not a "
                              "writable directory)")


def _check_timeout(timeout):
    if timeout is not None and not timeout > 0:
        raise _BadInput(f"--timeout must be > 0 seconds, got {timeout}")


def _cmd_run(args) -> int:
    from mnistnd.book import run_notebook
    from mnistnd.profiles import check_profile

    check_profile(args.profile)
    _check_timeout(args.timeout)
    notebook = _notebook_path(args.notebook)
    parameters = _cli_parameters(notebook, args.parameter)
    path = run_notebook(notebook, parameters=parameters, profile=args.profile,
                        artifacts_dir=args.artifacts_dir, timeout=args.timeout,
                        progress_bar=not args.no_progress)
    print(f"executed notebook: {path}")
    return 0


def _cmd_params(args) -> int:
    from mnistnd.book import notebook_parameters
    from mnistnd.profiles import load_profiles

    notebook = _notebook_path(args.notebook)
    declared = notebook_parameters(notebook)
    block = load_profiles().get(Path(notebook).stem, {})
    rows = [("name", "allowed", "default", *PROFILES, "help")]
    for p in declared.values():
        rows.append((p.name, p.allowed, repr(p.default),
                     *(repr(block.get(pr, {})[p.name]) if p.name in block.get(pr, {}) else ""
                       for pr in PROFILES), p.help))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [str(c).ljust(w) for c, w in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1]]))
    return 0


def _cmd_book(args) -> int:
    from mnistnd.book import build_book

    _check_timeout(args.timeout)
    html = build_book(profile=args.profile, artifacts_dir=args.artifacts_dir,
                      output_dir=args.output, chapters=args.chapters, timeout=args.timeout,
                      progress_bar=not args.no_progress)
    from mnistnd import settings
    from mnistnd.book import read_timings, toc_chapters

    root = settings.artifacts_root() if args.artifacts_dir is None else Path(args.artifacts_dir)
    rows = {r["chapter"]: r for r in read_timings(root.expanduser().resolve() / args.profile)}
    for stem in toc_chapters():
        if stem in rows:
            row = rows[stem]
            print(f"  {stem:<28} {float(row['seconds']):8.1f} s  "
                  f"{row.get('peak_rss_mb') or '?':>6} MiB  ({row['status']})")
    print(f"book built: {html / 'index.html'}")
    return 0


def _cmd_export(args) -> int:
    from mnistnd import settings
    from mnistnd.profiles import check_profile

    check_profile(args.profile)
    if args.format == "h5ad" and args.source is not None:
        raise _BadInput("--source applies to --format clustbench only (the h5ad export "
                        "writes the profile's trained datasets)")
    root = settings.artifacts_root() if args.artifacts_dir is None else Path(args.artifacts_dir)
    folder = root.expanduser().resolve() / args.profile
    if args.format == "clustbench":
        return _export_clustbench(args, folder)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"artifacts_dir: {str(folder)!r} does not exist; build the datasets first with "
            f"`mnistnd book --profile {args.profile}` (chapter mvae_training)"
        )
    _check_creatable(Path(args.out).expanduser(), "--out")
    try:
        from mnistnd import datasets
    except ImportError as err:
        raise RuntimeError(f"mnistnd.datasets is not available ({err})") from err
    try:
        written = datasets.export(artifacts_dir=folder, out_dir=Path(args.out).expanduser())
    except FileNotFoundError as err:
        raise FileNotFoundError(
            f"{err}\nThe MNIST-Nd datasets are missing in {folder}: build them with "
            f"`mnistnd run notebooks/mvae_training.md --profile {args.profile}` or "
            f"`mnistnd book --profile {args.profile}`"
        ) from err
    print(f"exported to {Path(args.out).expanduser().resolve()}")
    if isinstance(written, (list, tuple)):
        for path in written:
            print(f"  {path}")
    return 0


def _export_clustbench(args, folder: Path) -> int:
    """``mnistnd export --format clustbench``: the battery ``<--out>/mnistnd``."""
    from mnistnd import datasets

    source = args.source or "release"
    if source == "artifacts" and not folder.is_dir():
        raise FileNotFoundError(
            f"artifacts_dir: {str(folder)!r} does not exist; build the datasets first with "
            f"`mnistnd run notebooks/mvae_training.md --profile {args.profile}`, or export the "
            "release with --source release"
        )
    out = Path(args.out).expanduser()
    _check_creatable(out, "--out")
    written = datasets.export_clustbench(out, source=source, artifacts_dir=folder)
    print(f"exported the clustbench battery {written[-1].parent.name!r} to {out.resolve()}")
    for path in written:
        print(f"  {path}")
    return 0


def _cmd_release(args) -> int:
    from mnistnd import release, settings

    if args.action == "check":
        for name, digest in release.check_all().items():
            print(f"  {name:<24} sha256 {digest}  ok")
        print(f"{release.NAME}: every file matches its manifest")
        return 0
    if args.action == "verify":
        table = release.verify(args.dims, args.epochs, progress=True)
        bad = table[~table["equal"]]
        for (d, e), rows in table.groupby(["latent_dim", "epoch"]):
            status = "identical" if rows["equal"].all() else "DIFFERENT"
            print(f"  d = {d:<3} epoch {e:<3} {len(rows)} loss terms {status}")
        if len(bad):
            print(bad.to_string(index=False), file=sys.stderr)
            raise RuntimeError(f"{len(bad)} history values differ from {release.NAME}")
        print(f"history equals {release.NAME} bit for bit")
        return 0
    if args.n_jobs < 1:
        raise _BadInput(f"--n-jobs must be >= 1, got {args.n_jobs}")
    folder = args.artifacts_dir or settings.artifacts_root() / "paper"
    content = release.build(folder, args.out, n_jobs=args.n_jobs)
    print(f"wrote {content['name']} ({len(content['files'])} files) to "
          f"{args.out or release.release_dir()}")
    return 0


def _cmd_classroom(args) -> int:
    from mnistnd.classroom import write_edition

    try:
        written = write_edition(args.out, args.chapters, fmt=args.format)
    except FileExistsError as err:
        raise _BadInput(str(err)) from err
    print(f"student edition written to {Path(args.out).expanduser().resolve()}")
    for path in written:
        print(f"  {path.name}")
    return 0


_COMMANDS = {"run": _cmd_run, "params": _cmd_params, "book": _cmd_book, "export": _cmd_export,
             "release": _cmd_release, "classroom": _cmd_classroom}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mnistnd`` command; returns the exit status."""
    from mnistnd.book import ChapterError

    args = _parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except ChapterError as err:
        print(f"mnistnd {args.command}: error: {err}", file=sys.stderr)
        return 1
    except (_BadInput, ValueError, TypeError, FileNotFoundError, PermissionError,
            NotADirectoryError) as err:
        print(f"mnistnd {args.command}: error: {err}", file=sys.stderr)
        return 2
    except RuntimeError as err:
        print(f"mnistnd {args.command}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
