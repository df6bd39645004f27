"""What an audit found: the value, kept apart from how the report displays it."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


@dataclass
class Finding:
    """The outcome of one audit rule (one pytest test, one parametrisation).

    Attributes
    ----------
    rule : str
        Stable anchor id of the rule, e.g. ``"near-duplicates"``; the report section
        is ``audit.html#<rule>``.
    title : str
        The invariant as a sentence, e.g. "No near-duplicate crosses valid and train".
    passed : bool
        False fails the test.
    summary : str
        The assertion message: what is wrong, how many, first examples, the
        threshold, the fix. Shown in the terminal and the report.
    count : int
        Number of offending images, pairs or groups.
    examples : DataFrame or None
        The offenders, one row each (paths relative to the dataset root, distances, ...).
        Columns named ``path``, ``path_a``/``path_b`` or ending in ``_path`` are shown as
        thumbnails in the report.
    figures : dict of str to bytes
        PNG images (plots) for the report, by caption.
    details : dict
        JSON-serialisable numbers and tables (per-class counts, scores, p-values).
    warning : bool
        Passed but worth reading (e.g. duplicates within a split when failing on them is off).
    """

    rule: str
    title: str
    passed: bool
    summary: str
    count: int = 0
    examples: pd.DataFrame | None = None
    figures: dict[str, bytes] = field(default_factory=dict)
    details: dict = field(default_factory=dict)
    warning: bool = False
    test: str = ""  # pytest node id, filled in by the record_finding fixture

    @property
    def status(self) -> str:
        if not self.passed:
            return "failed"
        return "warning" if self.warning else "passed"
