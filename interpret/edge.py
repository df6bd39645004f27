"""Edge focus: the share of a class activation map's mass in the outer band of the image.

A model that classifies by the frame (the thin black lines near the border of one movie
in the original project) puts its Grad-CAM mass there. Pure numpy (pandas for the table).
"""

from __future__ import annotations

import numpy as np

DEFAULT_BAND = 0.10  # share of each side; same default as AuditConfig.edge_band


def band_weights(length: int, band: float) -> np.ndarray:
    """Share of each pixel (row or column) that lies *inside* the central region.

    Pixel ``i`` covers ``[i, i + 1)``; the central region is ``[band * length,
    (1 - band) * length]``. Pixels cut by the boundary count in part, so the result does
    not depend on rounding: a uniform map gives exactly ``1 - (1 - 2 band)^2``.

    Returns
    -------
    ndarray of float64, shape (length,), values in [0, 1]
    """
    low, high = band * length, (1.0 - band) * length
    edges = np.arange(length, dtype=np.float64)
    return np.clip(np.minimum(edges + 1, high) - np.maximum(edges, low), 0.0, 1.0)


def edge_focus(cams, band: float = DEFAULT_BAND) -> np.ndarray:
    """Share of each map's mass in the outer band (``band`` of each side).

    Parameters
    ----------
    cams : array_like, shape (N, H, W) or (H, W)
        Non-negative maps (Grad-CAM output, any scale).
    band : float
        Width of the band as a fraction of each side, in (0, 0.5).

    Returns
    -------
    ndarray of float64, shape (N,)
        In [0, 1]; NaN for a map whose mass is zero (no evidence anywhere: undefined).
        A uniform map gives ``1 - (1 - 2 band)^2`` (0.36 at band 0.1); the result does
        not change when a map is multiplied by a positive number.
    """
    maps = np.asarray(cams, dtype=np.float64)
    if maps.ndim == 2:
        maps = maps[None]
    if maps.ndim != 3:
        raise ValueError(f"cams must have shape (N, H, W) or (H, W); got {maps.shape}")
    if not 0.0 < band < 0.5:
        raise ValueError(f"band must be in (0, 0.5) (a fraction of each side); got {band}")
    if maps.size and not np.isfinite(maps).all():
        raise ValueError("cams contain NaN or infinite values")
    if maps.size and maps.min() < 0:
        raise ValueError(f"cams must be non-negative (Grad-CAM after ReLU); min is {maps.min()}")
    rows = band_weights(maps.shape[1], band)
    columns = band_weights(maps.shape[2], band)
    total = maps.sum(axis=(1, 2))
    inner = np.einsum("nhw,h,w->n", maps, rows, columns)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total > 0, 1.0 - inner / np.where(total > 0, total, 1.0), np.nan)
    return np.clip(share, 0.0, 1.0)


def edge_focus_by_class(
    shares,
    labels,
    *,
    paths=None,
    threshold: float | None = None,
    examples: int = 3,
):
    """Mean edge focus per class, worst first.

    Parameters
    ----------
    shares : array_like of float, shape (N,)
        `edge_focus` per image (NaN values are ignored).
    labels : array_like of str, shape (N,)
        Class of each image (the true label).
    paths : array_like of str, shape (N,), optional
        Image paths; the ``examples`` with the highest share per class are listed.
    threshold : float, optional
        When given, ``flagged`` is ``mean_edge_focus > threshold``.
    examples : int
        Number of example paths per class.

    Returns
    -------
    DataFrame
        One row per class: ``label`` (str), ``images`` (int, maps with mass),
        ``mean_edge_focus``, ``median_edge_focus``, ``max_edge_focus`` (float),
        ``flagged`` (bool; False without a threshold), ``examples`` (list of str, highest
        share first). Sorted by ``mean_edge_focus``, descending.
    """
    import pandas as pd

    shares = np.asarray(shares, dtype=np.float64).reshape(-1)
    labels = np.asarray(labels).astype(str).reshape(-1)
    if labels.shape != shares.shape:
        raise ValueError(f"{shares.size} shares but {labels.size} labels")
    paths = np.asarray([""] * shares.size if paths is None else paths).astype(str).reshape(-1)
    if paths.shape != shares.shape:
        raise ValueError(f"{shares.size} shares but {paths.size} paths")
    rows = []
    for label in sorted(set(labels.tolist())):
        mine = (labels == label) & np.isfinite(shares)
        values = shares[mine]
        order = np.argsort(-values, kind="stable")
        mean = float(values.mean()) if values.size else float("nan")
        rows.append(
            {
                "label": label,
                "images": int(values.size),
                "mean_edge_focus": mean,
                "median_edge_focus": float(np.median(values)) if values.size else float("nan"),
                "max_edge_focus": float(values.max()) if values.size else float("nan"),
                "flagged": bool(threshold is not None and values.size and mean > threshold),
                "examples": [p for p in paths[mine][order][:examples].tolist() if p],
            }
        )
    columns = ["label", "images", "mean_edge_focus", "median_edge_focus", "max_edge_focus"]
    table = pd.DataFrame(rows, columns=[*columns, "flagged", "examples"])
    return table.sort_values("mean_edge_focus", ascending=False, kind="stable").reset_index(
        drop=True
    )
