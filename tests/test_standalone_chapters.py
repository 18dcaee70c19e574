"""Each chapter runs on an empty artifacts folder: the upstream chapters it needs run first.

What a chapter reads from other chapters is declared once (``mnistnd.book.toc.INPUTS``). Under
every profile the MNIST-Nd chapters read the release shipped with the package, so they need no
upstream run; with ``mnistnd_source="artifacts"`` they need the m-VAE chapter's datasets, and
``mnistnd run`` runs it first and says so (one chapter is executed that way, the cheapest).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mnistnd.book import INPUTS, notebook_parameters, read_timings, toc_chapters
from mnistnd.book.execute import missing_upstream, prepare
from mnistnd.cli import main
from mnistnd.profiles import PROFILES

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = toc_chapters(ROOT)


def test_inputs_name_chapters_and_their_switch_parameters():
    for chapter, upstream in INPUTS.items():
        assert chapter in CHAPTERS
        declared = notebook_parameters(ROOT / "notebooks" / f"{chapter}.md")
        for up, switch in upstream.items():
            assert CHAPTERS.index(up) < CHAPTERS.index(chapter), "upstream comes first in the toc"
            assert "artifacts" in declared[switch].allowed


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("stem", CHAPTERS)
def test_profiles_need_no_upstream_run(stem, profile, tmp_path):
    chapter = prepare(ROOT / "notebooks" / f"{stem}.md", None, profile)
    assert missing_upstream(chapter, tmp_path) == []


@pytest.mark.parametrize("stem", sorted(INPUTS))
def test_own_artifacts_need_the_training_chapter(stem, tmp_path):
    chapter = prepare(ROOT / "notebooks" / f"{stem}.md", {"mnistnd_source": "artifacts"}, "smoke")
    assert missing_upstream(chapter, tmp_path) == ["mvae_training"]
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "mvae_training.ipynb").write_text("{}")
    assert missing_upstream(chapter, tmp_path) == []


@pytest.mark.slow
def test_run_on_empty_folder_runs_the_upstream_chapter_first(tmp_path, capsys):
    runs = tmp_path / "runs"
    argv = ["run", "appendix_cvi", "--profile", "smoke", "-p", "mnistnd_source", "artifacts",
            "--artifacts-dir", str(runs), "--no-progress"]
    assert main(argv) == 0, capsys.readouterr().err[-3000:]
    assert "running 'mvae_training' first" in capsys.readouterr().err
    rows = [(r["chapter"], r["status"]) for r in read_timings(runs / "smoke")]
    assert rows == [("mvae_training", "ok"), ("appendix_cvi", "ok")]
