"""Book builds that share an artifacts folder: run at once, or killed and rerun.

A tiny book (the ``data`` chapter and a one-cell chapter, ``smoke``) is built by two ``mnistnd
book`` processes started together on one artifacts folder: both must finish, one after the
other (the second says it waits), with complete outputs. Then a build is killed (its whole
process group, SIGKILL) after a random delay and run again: the rerun must reach the same pages
and leave no temporary files.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from test_cli import HEADER

from mnistnd.book import read_timings

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow

TINY = HEADER + """```{code-cell} ipython3
:tags: [parameters]

n_items: int = 3  # {>= 1} how many items
artifacts_dir: str | None = None  # injected
profile: str = "quick"  # {in smoke|quick|paper} injected
```

```{code-cell} ipython3
print(list(range(n_items)))
```
"""


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("concurrent_book")
    (root / "book").mkdir()
    (root / "notebooks").mkdir()
    shutil.copy(ROOT / "_config.yml", root / "_config.yml")
    shutil.copy(ROOT / "book" / "references.bib", root / "book" / "references.bib")
    (root / "book" / "intro.md").write_text("# Tiny book\n\nTwo chapters.\n")
    # links to chapters outside the tiny book become plain text (a -W build refuses them)
    data = re.sub(r"\{doc\}`([^`]*)`", r"`\1`", (ROOT / "notebooks" / "data.md").read_text())
    (root / "notebooks" / "data.md").write_text(data)
    (root / "notebooks" / "tiny.md").write_text(TINY)
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n"
                                   "  - file: notebooks/data\n  - file: notebooks/tiny\n")
    return root


def start(root: Path, artifacts: Path, out: Path, *options: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("MNISTND_REPOSITORY_URL", None)
    cmd = [sys.executable, "-m", "mnistnd.cli", "book", "--profile", "smoke", "--artifacts-dir",
           str(artifacts), "--output", str(out), "--no-progress", *options]
    return subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def pages(html: Path) -> list[str]:
    return sorted(str(p.relative_to(html)) for p in html.rglob("*.html"))


def check_complete(artifacts: Path, html: Path) -> None:
    folder = artifacts / "smoke"
    for stem in ("data", "tiny"):
        nb = nbformat.read(folder / "notebooks" / f"{stem}.ipynb", as_version=4)
        assert not [o for c in nb.cells for o in c.get("outputs", [])
                    if o.get("output_type") == "error"]
        assert (html / "notebooks" / f"{stem}.html").is_file()
    rows = {r["chapter"]: r for r in read_timings(folder)}
    assert {rows[s]["status"] for s in ("data", "tiny")} == {"ok"}
    assert all(float(rows[s]["peak_rss_mb"]) > 0 for s in ("data", "tiny"))
    assert not list(folder.rglob(".tmp-*")), "temporary files left behind"
    assert not [p for p in html.parent.iterdir() if p.name.startswith(f".{html.name}.")]


@pytest.fixture(scope="module")
def two_builds(tiny_root, tmp_path_factory) -> Path:
    """Two builds started at once on one artifacts folder (``runs``), into ``html0``/``html1``."""
    base = tmp_path_factory.mktemp("two_builds")
    procs = [start(tiny_root, base / "runs", base / f"html{i}") for i in range(2)]
    results = [p.communicate(timeout=600) for p in procs]
    for proc, (_, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err[-3000:]
    assert sum("waiting for" in err for _, err in results) >= 1, "the second build must wait"
    return base


def test_two_builds_at_once(two_builds):
    for i in range(2):
        check_complete(two_builds / "runs", two_builds / f"html{i}")
    assert pages(two_builds / "html0") == pages(two_builds / "html1")


def test_killed_build_reruns_to_the_same_outputs(tiny_root, two_builds):
    runs, html = two_builds / "runs", two_builds / "html0"
    expected = pages(html)
    seconds = random.Random().uniform(0.5, 15.0)
    # the kill lands in the checks, the chapter, staging or Jupyter Book; `data` is reused
    victim = start(tiny_root, runs, html, "--chapters", "tiny")
    time.sleep(seconds)
    if victim.poll() is None:
        os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(timeout=60)
    assert pages(html) == expected, f"killed after {seconds:.1f} s: the old pages must remain"
    rerun = start(tiny_root, runs, html, "--chapters", "tiny")
    _, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, f"after a kill at {seconds:.1f} s: {err[-3000:]}"
    check_complete(runs, html)
    assert pages(html) == expected
