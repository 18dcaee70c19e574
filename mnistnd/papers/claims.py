"""Claims of a paper as data: each one a short record with the check that reads it off a table."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd

#: What a check returns: ``(ours, agrees)`` with our numbers in words and whether the claim
#: holds, or ``None`` when the table cannot test the claim (methods or experiments not run).
Outcome = tuple[str, bool] | None


@dataclass(frozen=True)
class Claim:
    """One statement of a paper and how to test it.

    Attributes
    ----------
    figure : str
        Where the paper makes the claim (``"3A"``, ``"Table 1"`` ...).
    text : str
        The claim, paraphrased.
    check : callable
        ``check(table) -> Outcome``.
    paper : str, default ""
        What the paper reports, in words, where the claim is about a value; shown beside ours.
    """

    figure: str
    text: str
    check: Callable[[pd.DataFrame], Outcome]
    paper: str = ""


def check_claims(claims: Sequence[Claim], table: pd.DataFrame) -> pd.DataFrame:
    """Test every claim on ``table``.

    Returns
    -------
    pandas.DataFrame
        One row per claim, in order: ``figure``, ``claim``, ``paper`` (only when a claim states
        the paper's value), ``ours`` (our numbers, or ``"not run"``) and ``agrees``
        (``True``/``False``, ``None`` when not testable).
    """
    rows = []
    for claim in claims:
        outcome = claim.check(table)
        ours, agrees = outcome if outcome is not None else ("not run", None)
        rows.append((claim.figure, claim.text, claim.paper, ours,
                     None if agrees is None else bool(agrees)))
    out = pd.DataFrame(rows, columns=["figure", "claim", "paper", "ours", "agrees"])
    return out if any(claim.paper for claim in claims) else out.drop(columns="paper")


def has_columns(table: pd.DataFrame, columns, by: str = "latent_dim", min_groups: int = 1) -> bool:
    """Whether ``table`` holds ``columns`` and ``by`` with at least ``min_groups`` values of ``by``.

    The common test of a check before it reads a table: without these the claim is not
    testable (the check returns ``None``).
    """
    return set(columns) | {by} <= set(table.columns) and table[by].nunique() >= min_groups


def per_dim(dims, values, fmt: str = "{}") -> str:
    """``"d=2: v2, d=4: v4, ..."``: one value per latent dimension, for a check's ``ours``."""
    return ", ".join(f"d={d}: {fmt.format(v)}" for d, v in zip(dims, values, strict=True))
