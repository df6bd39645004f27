"""Figures as PNG bytes: the one way splitsafe's reports embed matplotlib/seaborn plots.

Plots are drawn off-screen (matplotlib's Agg backend, chosen before pyplot is first imported)
and closed once rendered, so a session that makes hundreds of figures holds none of them.
"""

from __future__ import annotations

import io

DEFAULT_DPI = 100  # 100 dpi: a 6x4 inch figure is 600x400 px, sharp enough in an HTML report


def use_agg_backend() -> None:
    """Select matplotlib's non-interactive Agg backend unless pyplot is already in use.

    Call before importing ``matplotlib.pyplot`` or seaborn's figure-level functions; a
    headless CI machine has no display, and Agg never opens a window.
    """
    import sys

    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")


def figure_to_png(figure, *, dpi: int = DEFAULT_DPI, tight: bool = True) -> bytes:
    """Render a figure to PNG bytes and close it.

    Parameters
    ----------
    figure : matplotlib.figure.Figure or seaborn grid
        A matplotlib figure, or anything with a ``.figure`` attribute holding one
        (``seaborn.FacetGrid``, ``seaborn.JointGrid``, an ``Axes``).
    dpi : int, keyword-only
        Resolution; default :data:`DEFAULT_DPI`.
    tight : bool, keyword-only
        Crop to the drawn content (``bbox_inches="tight"``: one more rendering pass). False
        saves the figure as laid out, for a figure already laid out with ``tight_layout``.

    Returns
    -------
    bytes
        A PNG file (starts with ``b"\\x89PNG"``).
    """
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    if not isinstance(figure, Figure):
        figure = getattr(figure, "figure", None)
        if not isinstance(figure, Figure):
            raise TypeError(
                f"figure_to_png expects a matplotlib Figure or an object with a .figure "
                f"attribute (seaborn grid, Axes); got {type(figure).__name__}"
            )
    buffer = io.BytesIO()
    try:
        figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight" if tight else None)
    finally:
        plt.close(figure)
    return buffer.getvalue()
