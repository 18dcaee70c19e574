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
    """

    figure: str
    text: str
    check: Callable[[pd.DataFrame], Outcome]


def check_claims(claims: Sequence[Claim], table: pd.DataFrame) -> pd.DataFrame:
    """Test every claim on ``table``.

    Returns
    -------
    pandas.DataFrame
        One row per claim, in order: ``figure``, ``claim``, ``ours`` (our numbers, or
        ``"not run"``) and ``agrees`` (``True``/``False``, ``None`` when not testable).
    """
    rows = []
    for claim in claims:
        outcome = claim.check(table)
        ours, agrees = outcome if outcome is not None else ("not run", None)
        rows.append((claim.figure, claim.text, ours, None if agrees is None else bool(agrees)))
    return pd.DataFrame(rows, columns=["figure", "claim", "ours", "agrees"])
