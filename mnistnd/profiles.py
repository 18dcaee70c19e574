"""Named profiles (``smoke``, ``quick``, ``paper``): parameters for every chapter at once.

The profiles live in one data file, ``mnistnd/profiles.yaml``, with one block per notebook (its
file stem) holding one mapping per profile::

    data:
      smoke: {n_per_digit: 4}
      quick: {}
      paper: {}

A chapter's own parameter defaults are its ``quick`` values; ``smoke`` and ``paper`` override
them. The runner (:func:`mnistnd.book.run_notebook`) applies a profile's values first and
explicit parameters on top. ``artifacts_dir`` and ``profile`` are injected by the runner and
must not appear in the file.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import yaml

#: The profiles, fastest first.
PROFILES = ("smoke", "quick", "paper")
#: Parameters injected by the runner; a profile must not set them.
RESERVED = ("artifacts_dir", "profile")
PROFILES_FILE = Path(__file__).with_name("profiles.yaml")


def check_profile(profile) -> str:
    """Return ``profile`` if it is a known profile name.

    Raises
    ------
    ValueError
        Naming the parameter ``profile`` and listing the known profiles.
    """
    if not isinstance(profile, str) or profile not in PROFILES:
        raise ValueError(f"profile={profile!r} is unknown; known profiles: {', '.join(PROFILES)}")
    return profile


def load_profiles(path: str | os.PathLike | None = None) -> dict[str, dict[str, dict]]:
    """Read and validate the profiles file.

    Parameters
    ----------
    path
        YAML file to read; ``None`` means the package's ``profiles.yaml``.

    Returns
    -------
    dict
        ``{notebook_stem: {profile: {parameter: value}}}`` with every profile present (an absent
        or empty profile is ``{}``). A fresh copy on each call.

    Raises
    ------
    ValueError
        If the file is not a mapping of mappings, names an unknown profile, or sets a reserved or
        non-identifier parameter name. The message names the notebook and profile.
    """
    path = Path(path) if path is not None else PROFILES_FILE
    stat = path.stat()
    # cache on the file's identity and mtime so edits are picked up in a long session
    return _copy(_load(str(path.resolve()), stat.st_mtime_ns, stat.st_size))


@lru_cache(maxsize=8)
def _load(path: str, _mtime: int, _size: int) -> dict:
    with open(path, encoding="utf-8") as fh:
        raw = yaml.safe_load(fh)
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping of notebook blocks, got {type(raw).__name__}")
    profiles: dict[str, dict[str, dict]] = {}
    for stem, block in raw.items():
        if not isinstance(stem, str):
            raise ValueError(f"{path}: notebook block name {stem!r} is not a string")
        block = block or {}
        if not isinstance(block, dict):
            raise ValueError(f"{path}: block {stem!r} must map profile names to parameters")
        unknown = sorted(set(block) - set(PROFILES))
        if unknown:
            raise ValueError(
                f"{path}: block {stem!r} names unknown profile(s) {unknown}; "
                f"known profiles: {', '.join(PROFILES)}"
            )
        profiles[stem] = {}
        for profile in PROFILES:
            values = block.get(profile) or {}
            if not isinstance(values, dict):
                raise ValueError(f"{path}: {stem}.{profile} must be a mapping of parameters")
            for name in values:
                if not isinstance(name, str) or not name.isidentifier():
                    raise ValueError(f"{path}: {stem}.{profile}: {name!r} is not a parameter name")
                if name in RESERVED:
                    raise ValueError(
                        f"{path}: {stem}.{profile}: {name!r} is injected by the runner; "
                        "remove it from the profile"
                    )
            profiles[stem][profile] = dict(values)
    return profiles


def _copy(profiles: dict) -> dict:
    import copy

    return copy.deepcopy(profiles)


def profile_parameters(notebook_stem: str, profile: str) -> dict:
    """Return the parameters a profile sets for one notebook.

    Parameters
    ----------
    notebook_stem
        File stem of the chapter (``"data"`` for ``notebooks/data.md``).
    profile
        One of :data:`PROFILES`.

    Returns
    -------
    dict
        Parameter values; ``{}`` when the notebook has no block (it then runs with its defaults).

    Raises
    ------
    ValueError
        If ``profile`` is unknown (the message lists the known ones).
    """
    check_profile(profile)
    return load_profiles().get(notebook_stem, {}).get(profile, {})
