"""The model-focus audit's logic: does the model look at the frame instead of the content?

On a sample of validation images per class, Grad-CAM for the image's own class; the share
of its mass in the outer band (`interpret.edge.edge_focus`); the mean per class; a class
whose mean exceeds the threshold fails. The original project found its Castle in the Sky
model reading thin black lines near the frame border this way.
"""

from __future__ import annotations

import math

import numpy as np

from interpret.edge import edge_focus, edge_focus_by_class

MIN_CAM_SIDE = 4  # a Grad-CAM layer smaller than 4x4 cannot localise an edge band at all
HELD_OUT_SPLITS = ("valid", "test")  # sampled in this order; all images when unsplit
FIGURES_PER_CLASS = 2  # overlays shown in the report for each flagged class


def select_focus_sample(manifest, *, per_class: int, seed: int):
    """Up to ``per_class`` readable images of each label from the first held-out split present.

    Parameters
    ----------
    manifest : DataFrame
        Columns ``path``, ``split``, ``label``, ``error`` (see ARCHITECTURE.md).

    Returns
    -------
    DataFrame
        Rows of ``manifest`` (same columns and index labels), sorted by label then path.
        Sampling is deterministic for ``seed``.
    """
    usable = manifest[(manifest["error"].fillna("") == "") & (manifest["label"].fillna("") != "")]
    for split in HELD_OUT_SPLITS:
        if (usable["split"] == split).any():
            usable = usable[usable["split"] == split]
            break
    parts = []
    for offset, (_, rows) in enumerate(sorted(usable.groupby("label"), key=lambda item: item[0])):
        take = min(per_class, len(rows))
        parts.append(rows.sample(n=take, random_state=seed + offset) if take else rows)
    if not parts:
        return usable.iloc[0:0]
    import pandas as pd

    return pd.concat(parts).sort_values(["label", "path"], kind="stable")


def cam_side_for(band: float) -> int:
    """Smallest Grad-CAM side (in cells) whose cells are no wider than the band.

    A coarser map smears a border line's evidence over a whole cell and, upsampled, far
    into the image: on the demo (96x160 px, band 0.1) a model reading the border line
    shows 0.44 at its 6x10 last block but 0.54 at the 12x20 block before it. So the
    layer is the deepest block with at least ``1 / band`` cells a side (10 at 0.1), and
    at least `MIN_CAM_SIDE`.
    """
    return max(MIN_CAM_SIDE, math.ceil(1.0 / band - 1e-9))


def measure_edge_focus(loaded, root, sample, *, band: float, batch_size: int = 32):
    """Grad-CAM edge focus for each sampled image, for its own class.

    Parameters
    ----------
    loaded : interpret.model_loading.LoadedModel
    root : Path
        Dataset root; ``sample["path"]`` is relative to it.
    sample : DataFrame
        Columns ``path`` and ``label``.
    band : float
        Outer band, fraction of each side.

    Returns
    -------
    per_image : DataFrame
        ``path``, ``label``, ``predicted`` (str), ``probability`` (of the label, float),
        ``edge_focus`` (float, NaN for a map with no mass).
    cams : ndarray of float32, shape (N, H, W)
        The maps, in the order of ``per_image``.
    layer_name : str
        Which module the maps come from, and its output size: the deepest block with at
        least `cam_side_for` ``(band)`` cells a side (see there why).
    """
    from pathlib import Path

    import pandas as pd
    import torch

    from interpret.gradcam import find_layer_with_resolution, gradcam_with_scores

    model, class_names, preprocess = loaded
    index = {name: position for position, name in enumerate(class_names)}
    paths = sample["path"].astype(str).tolist()
    labels = sample["label"].astype(str).tolist()
    if not paths:
        empty = pd.DataFrame(columns=["path", "label", "predicted", "probability", "edge_focus"])
        return empty, np.zeros((0, *preprocess.size), np.float32), ""
    images = torch.stack([preprocess(Path(root) / path) for path in paths])
    layer, spatial = find_layer_with_resolution(model, images[:1], min_side=cam_side_for(band))
    targets = [index.get(label, -1) for label in labels]
    known = np.array(targets) >= 0
    if known.all():  # explain each image's own class
        result = gradcam_with_scores(model, images, targets, layer, batch_size=batch_size)
        cams = result.maps
    else:  # labels the model does not know: explain its prediction instead
        result = gradcam_with_scores(model, images, None, layer, batch_size=batch_size)
        cams = result.maps.copy()
        if known.any():
            own = gradcam_with_scores(
                model,
                images[torch.from_numpy(known)],
                np.array(targets)[known],
                layer,
                batch_size=batch_size,
            )
            cams[known] = own.maps
    guesses = result.probabilities.argmax(axis=1)
    predicted = [class_names[t] if t < len(class_names) else str(t) for t in guesses]
    probability = [
        float(result.probabilities[row, target]) if target >= 0 else float("nan")
        for row, target in enumerate(targets)
    ]
    per_image = pd.DataFrame(
        {
            "path": paths,
            "label": labels,
            "predicted": predicted,
            "probability": probability,
            "edge_focus": edge_focus(cams, band=band),
        }
    )
    layer_name = f"{_module_name(model, layer)} ({spatial[0]}x{spatial[1]})"
    return per_image, cams, layer_name


def model_focus_finding(per_image, *, band: float, threshold: float, examples: int = 12):
    """Judge per-image edge focus: a class whose mean exceeds ``threshold`` fails.

    Parameters
    ----------
    per_image : DataFrame
        Columns ``path``, ``label``, ``edge_focus`` (as `measure_edge_focus` returns).

    Returns
    -------
    data.findings.Finding
        Rule ``model-focus``; ``examples`` lists the images of failing classes, highest
        edge focus first (``path``, ``label``, ``predicted``, ``edge_focus``);
        ``details["classes"]`` is the per-class table.
    """
    from data.findings import Finding

    table = edge_focus_by_class(
        per_image["edge_focus"], per_image["label"], paths=per_image["path"], threshold=threshold
    )
    uniform = 1.0 - (1.0 - 2.0 * band) ** 2
    flagged = table[table["flagged"]]
    title = (
        f"Grad-CAM mass in the outer {band:.0%} band stays at or below {threshold:.2f} per class"
    )
    details = {
        "band": band,
        "threshold": threshold,
        "uniform_share": uniform,
        "classes": [
            {key: row[key] for key in ("label", "images", "mean_edge_focus", "flagged")}
            for row in table.to_dict("records")
        ],
    }
    columns = [c for c in ("path", "label", "predicted", "edge_focus") if c in per_image]
    offenders = per_image[per_image["label"].isin(flagged["label"])][columns]
    offenders = offenders.sort_values("edge_focus", ascending=False, kind="stable").head(examples)
    listing = "; ".join(
        f"{row.label}: {row.mean_edge_focus:.2f} of the mass over {row.images} images "
        f"(e.g. {', '.join(row.examples) or 'n/a'})"
        for row in (flagged if len(flagged) else table).itertuples()
    )
    if len(table) == 0:
        summary = "no readable held-out images to explain; nothing measured"
    elif len(flagged):
        summary = (
            f"{len(flagged)} class(es) where Grad-CAM puts more than {threshold:.2f} of its mass "
            f"in the outer {band:.0%} band (a uniform map puts {uniform:.2f} there): {listing}. "
            "The model may classify these by the frame (lines, letterbox, watermark) rather "
            "than the content: look at the overlays, crop the borders "
            "(python -m data crop-borders) and retrain."
        )
    else:
        summary = (
            f"every class keeps its Grad-CAM mass in the outer {band:.0%} band at or below "
            f"{threshold:.2f} (uniform map: {uniform:.2f}); highest: "
            f"{table.iloc[0]['label']} {table.iloc[0]['mean_edge_focus']:.2f}"
        )
    return Finding(
        rule="model-focus",
        title=title,
        passed=len(flagged) == 0,
        summary=summary,
        count=int(len(flagged)),
        examples=offenders.reset_index(drop=True),
        details=details,
    )


def audit_model_focus(
    model_path,
    manifest,
    root,
    *,
    band: float,
    threshold: float,
    per_class: int,
    seed: int,
    examples: int = 12,
):
    """The whole audit: load the model, sample, measure, judge; PNG overlays of offenders.

    Returns
    -------
    data.findings.Finding
        As `model_focus_finding`, with ``details["layer"]``, ``details["model"]`` and, for
        failing classes, ``figures`` (original | Grad-CAM | guided Grad-CAM per example).
    """
    from interpret.model_loading import load_model

    loaded = load_model(model_path)
    sample = select_focus_sample(manifest, per_class=per_class, seed=seed)
    per_image, cams, layer_name = measure_edge_focus(loaded, root, sample, band=band)
    finding = model_focus_finding(per_image, band=band, threshold=threshold, examples=examples)
    finding.details["layer"] = layer_name
    finding.details["model"] = str(model_path)
    if not finding.passed:
        finding.figures.update(_offender_figures(loaded, root, per_image, cams, finding))
    return finding


def _offender_figures(loaded, root, per_image, cams, finding) -> dict[str, bytes]:
    from pathlib import Path

    from interpret.pictures import interpretation_png

    figures = {}
    flagged = [row["label"] for row in finding.details["classes"] if row["flagged"]]
    for label in flagged:
        rows = per_image[per_image["label"] == label].sort_values("edge_focus", ascending=False)
        for position in rows.index[:FIGURES_PER_CLASS]:
            path = per_image.at[position, "path"]
            image = loaded.preprocess.resize(Path(root) / path)
            share = per_image.at[position, "edge_focus"]
            caption = f"{label}: edge {share:.2f}"
            figures[f"{path} ({caption})"] = interpretation_png(
                image, cams[position], caption=caption
            )
    return figures


def _module_name(model, layer) -> str:
    for name, module in model.named_modules():
        if module is layer:
            return name or type(layer).__name__
    return type(layer).__name__
