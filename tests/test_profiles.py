"""Profiles: the YAML file's structure, and its agreement with each chapter's parameters cell."""

from __future__ import annotations

from pathlib import Path

import pytest

from mnistnd.book import ParameterError, check_value, notebook_parameters
from mnistnd.profiles import PROFILES, load_profiles, profile_parameters

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.md"))
PROFILED = [p for p in NOTEBOOKS if p.stem in load_profiles()]


def test_profiles_file_has_every_profile_per_block():
    profiles = load_profiles()
    assert profiles, "mnistnd/profiles.yaml is empty"
    for stem, block in profiles.items():
        assert set(block) == set(PROFILES), stem
        for values in block.values():
            assert isinstance(values, dict)


def test_unknown_profile_lists_known_ones():
    with pytest.raises(ValueError, match=r"profile='fast'.*smoke, quick, paper"):
        profile_parameters("data", "fast")


def test_profile_parameters_returns_a_copy():
    values = profile_parameters("data", "smoke")
    values["injected_by_test"] = 1
    assert "injected_by_test" not in profile_parameters("data", "smoke")


def test_notebook_without_block_gets_no_values():
    assert profile_parameters("no_such_chapter", "paper") == {}


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("data:\n  fast: {n: 1}\n", "unknown profile"),
        ("data:\n  smoke: {artifacts_dir: /tmp}\n", "injected by the runner"),
        ("data:\n  smoke: [1, 2]\n", "mapping of parameters"),
        ("- data\n", "mapping of notebook blocks"),
        ("data:\n  smoke: {'not a name': 1}\n", "not a parameter name"),
    ],
)
def test_malformed_profiles_file_is_refused(tmp_path, text, match):
    path = tmp_path / "profiles.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        load_profiles(path)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_declares_runner_parameters(notebook):
    declared = notebook_parameters(notebook)
    assert declared["artifacts_dir"].type_name == "str | None"
    assert declared["profile"].type_name == "str"
    assert declared["profile"].default == "quick"
    for param in declared.values():
        assert param.annotation is not None, f"{notebook.stem}: {param.name} has no type"
        assert param.help, f"{notebook.stem}: {param.name} has no comment"
        assert check_value(param, param.default) == param.default, "default not allowed"
        if param.name != "artifacts_dir":
            assert param.rules, f"{notebook.stem}: {param.name} declares no allowed values"


@pytest.mark.parametrize("notebook", PROFILED, ids=lambda p: p.stem)
def test_defaults_equal_quick_block(notebook):
    declared = notebook_parameters(notebook)
    quick = load_profiles()[notebook.stem]["quick"]
    for name, value in quick.items():
        assert name in declared, f"{notebook.stem}: quick sets undeclared {name!r}"
        assert declared[name].default == check_value(declared[name], value), (
            f"{notebook.stem}: default of {name!r} is {declared[name].default!r}, "
            f"the quick profile says {value!r}"
        )


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("notebook", PROFILED, ids=lambda p: p.stem)
def test_profile_keys_are_declared_with_compatible_types(notebook, profile):
    declared = notebook_parameters(notebook)
    for name, value in load_profiles()[notebook.stem][profile].items():
        assert name in declared, f"{notebook.stem}.{profile}: {name!r} is not declared"
        check_value(declared[name], value)  # raises ParameterError on a wrong type


def test_yaml_float_pitfall_is_caught(tmp_path):
    # YAML 1.1 reads 1e-3 as a string: the type check must refuse it for a float parameter
    nb = tmp_path / "lr.md"
    nb.write_text(
        "---\njupytext:\n  text_representation:\n    format_name: myst\nkernelspec:\n"
        "  name: python3\n  display_name: Python 3\n---\n\n"
        "```{code-cell} ipython3\n:tags: [parameters]\n\nlr: float = 0.001  # rate\n```\n"
    )
    path = tmp_path / "profiles.yaml"
    path.write_text("lr:\n  smoke: {lr: 1e-3}\n  paper: {lr: 1.0e-3}\n")
    profiles = load_profiles(path)
    param = notebook_parameters(nb)["lr"]
    assert check_value(param, profiles["lr"]["paper"]["lr"]) == pytest.approx(1e-3)
    with pytest.raises(ParameterError, match="'lr' got '1e-3': expects float"):
        check_value(param, profiles["lr"]["smoke"]["lr"])
