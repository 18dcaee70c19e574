"""Bad input across the ``mnistnd`` command and the library: refused early, with a clear message.

Every case names what it refuses and checks the message (the parameter and what is allowed), the
exit status 2 of the command, and that nothing was created in the artifacts folder: each is
refused before a kernel starts.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mnistnd.book import (
    Parameter,
    ParameterError,
    build_book,
    check_value,
    notebook_parameters,
    parse_value,
    repository_url,
    run_notebook,
)
from mnistnd.book.params import parameters_of_source, resolve_parameters
from mnistnd.cli import main

ROOT = Path(__file__).resolve().parent.parent
NB = ROOT / "notebooks"

#: (id, argv after `mnistnd`, substrings the error message must contain)
CLI_CASES = [
    ("unknown-chapter", ["run", "no_such_chapter"], ["no chapter 'no_such_chapter'", "data"]),
    ("unknown-profile-run", ["run", "data", "--profile", "fast"],
     ["profile='fast'", "smoke, quick, paper"]),
    ("unknown-profile-book", ["book", "--profile", "huge"], ["profile='huge'"]),
    ("zero-epochs", ["run", "mvae_training", "-p", "epochs", "0"],
     ["'epochs' got 0", "not >= 1", "allowed: int; >= 1"]),
    ("negative-epochs", ["run", "pbmc_autoencoders", "-p", "epochs", "-3"],
     ["'epochs' got -3", "not >= 1"]),
    ("float-for-int", ["run", "mvae_training", "-p", "epochs", "2.5"],
     ["'epochs' got '2.5'", "expects int"]),
    ("none-for-int", ["run", "mvae_training", "-p", "epochs", "None"],
     ["'epochs'", "expects int"]),
    ("bad-latent-dim", ["run", "mvae_training", "-p", "latent_dims", "2,3"],
     ["'latent_dims'", "3 is not one of 2, 4, 8, 16, 32, 64"]),
    ("empty-latent-dims", ["run", "clustering_benchmark", "-p", "latent_dims", "[]"],
     ["'latent_dims' got []", "len >= 1"]),
    ("repeated-latent-dims", ["run", "appendix_cvi", "-p", "latent_dims", "2,2"],
     ["'latent_dims' got [2, 2]", "elements repeat"]),
    ("word-in-int-list", ["run", "embedding_properties", "-p", "latent_dims", "2,four"],
     ["'latent_dims' got 'four'", "expects int"]),
    ("bad-source", ["run", "data", "-p", "source", "web"],
     ["'source' got 'web'", "not one of auto, full, bundled"]),
    ("bad-mnistnd-source", ["run", "clustering_benchmark", "-p", "mnistnd_source", "cloud"],
     ["'mnistnd_source'", "not one of release, artifacts, auto"]),
    ("percentile-zero", ["run", "embedding_properties", "-p", "percentiles", "0,50"],
     ["'percentiles'", "0.0 is not > 0"]),
    ("percentile-100", ["run", "appendix_density_peaks", "-p", "percentiles", "2,100"],
     ["'percentiles'", "100.0 is not < 100"]),
    ("figure-percentiles-length", ["run", "embedding_properties", "-p", "figure_percentiles",
                                   "0.5"], ["'figure_percentiles'", "len == 2"]),
    ("dropout-one", ["run", "moe_sim_vae", "-p", "gate_dropout", "1"],
     ["'gate_dropout' got 1.0", "not < 1"]),
    ("nan-rate", ["run", "moe_sim_vae", "-p", "lr", "nan"], ["'lr'", "expects float"]),
    ("bad-method", ["run", "clustering_benchmark", "-p", "methods", "kmeans,dbscan"],
     ["'methods'", "'dbscan' is not one of kmeans"]),
    ("bad-model", ["run", "pbmc_autoencoders", "-p", "models", "VAE"],
     ["'models'", "'VAE' is not one of Autoencoder, BetaVAE, BetaVSC"]),
    ("n-jobs-zero", ["run", "mvae_training", "-p", "n_jobs", "0"], ["'n_jobs' got 0", "!= 0"]),
    ("bad-device", ["run", "pbmc_autoencoders", "-p", "device", "tpu"],
     ["'device' got 'tpu'", "auto, cpu, cuda"]),
    ("undeclared", ["run", "data", "-p", "n_per_digits", "4"],
     ["'n_per_digits' is not declared", "declared: n_per_digit"]),
    ("runner-parameter", ["run", "data", "-p", "profile", "paper"],
     ["'profile' is set by the runner", "--profile"]),
    ("given-twice", ["run", "data", "-p", "seed", "1", "-p", "seed", "2"],
     ["'seed' is given twice"]),
    ("bad-timeout", ["run", "data", "--timeout", "-1"], ["--timeout must be > 0"]),
    ("export-source-h5ad", ["export", "--source", "release"], ["--source applies to"]),
]


@pytest.mark.parametrize(("argv", "expected"), [c[1:] for c in CLI_CASES],
                         ids=[c[0] for c in CLI_CASES])
def test_cli_refuses(argv, expected, tmp_path, capsys):
    artifacts = tmp_path / "runs"
    assert main([*argv, "--artifacts-dir", str(artifacts)]) == 2
    err = capsys.readouterr().err
    for text in expected:
        assert text in err, f"{text!r} not in {err!r}"
    assert not artifacts.exists(), "refused input must not create the artifacts folder"


def test_cli_refuses_artifacts_dir_without_parent(tmp_path, capsys):
    target = tmp_path / "missing" / "deeper" / "runs"
    assert main(["run", "data", "--artifacts-dir", str(target)]) == 2
    err = capsys.readouterr().err
    assert "artifacts_dir" in err and "does not exist" in err
    assert not (tmp_path / "missing").exists()


def test_cli_refuses_file_as_artifacts_dir(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    assert main(["run", "data", "--artifacts-dir", str(blocker)]) == 2
    assert "exists and is not a directory" in capsys.readouterr().err


def test_library_refuses_values_before_running(tmp_path):
    with pytest.raises(ParameterError, match=r"'epochs' got 0: 0 is not >= 1.*mvae_training"):
        run_notebook(NB / "mvae_training.md", {"epochs": 0}, artifacts_dir=tmp_path / "r")
    with pytest.raises(ParameterError, match=r"'latent_dims' got \[2, 5\]: 5 is not one of"):
        run_notebook(NB / "appendix_cvi.md", {"latent_dims": (2, 5)}, artifacts_dir=tmp_path)
    with pytest.raises(ParameterError, match="'n_points' got '100': expects int"):
        run_notebook(NB / "clustering_benchmark.md", {"n_points": "100"}, artifacts_dir=tmp_path)
    assert not (tmp_path / "r").exists()


def test_library_refuses_unknown_chapter_and_parameters_type(tmp_path):
    with pytest.raises(ValueError, match=r"chapters: \['nope'\] not in _toc.yml"):
        build_book("smoke", artifacts_dir=tmp_path, chapters=["nope"], book_root=ROOT)
    declared = notebook_parameters(NB / "data.md")
    with pytest.raises(TypeError, match="parameters must be a dict"):
        resolve_parameters("data", declared, "smoke", [("seed", 1)])


@pytest.mark.parametrize(("annotation", "value", "match"), [
    ("bool", "maybe", "expects bool"),
    ("bool", 1, "expects bool"),
    ("list[float]", 0.5, "expects a list of float"),
    ("str", None, "None is not allowed"),
])
def test_library_check_of_single_values(annotation, value, match):
    param = Parameter("x", annotation, None)
    with pytest.raises(ParameterError, match=f"parameter 'x' got .*{match}"):
        parse_value(param, value) if isinstance(value, str) else check_value(param, value)


@pytest.mark.parametrize(("source", "match"), [
    ("x: dict = {}  # a mapping", "annotation 'dict'"),
    ("x: int = 1  # {>= one} a count", "constraints"),
    ("x: int = 1  # {between 1 and 2} a count", "constraints"),
    ("x = 1  # untyped", "not `name: type = value"),
    ("x: int = f(1)  # computed", "not a literal"),
])
def test_malformed_parameters_cell(source, match):
    with pytest.raises(ValueError, match=match):
        parameters_of_source(source, "tiny.md")


def test_bad_repository_url(monkeypatch):
    with pytest.raises(ValueError, match="MNISTND_REPOSITORY_URL"):
        repository_url("http://example.org/a/b")
