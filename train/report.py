"""``reports/training.html``: one offline page with everything needed to judge a trained model.

The validation set is predicted once (``learn.get_preds(with_loss=True)``); the accuracy, the
confusion matrix, the per-class precision/recall/F1, the most-confused pairs and the top-losses
gallery are all derived from that one table, which is also written as ``predictions.csv``
(and the matrix as ``confusion.csv``) beside the report, so every number can be checked.

The top-losses gallery shows, per image, one three-panel picture from ``interpret.pictures``
(original | Grad-CAM overlay | guided Grad-CAM, for the predicted class), computed in one batched
Grad-CAM and one batched guided-backprop pass over the top-loss images, every panel
``GALLERY_PANEL`` px whatever the model's input size, laid out as a responsive grid of cards.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from train.config import REPORT_NAME

PREDICTIONS_NAME = "predictions.csv"
CONFUSION_NAME = "confusion.csv"
GALLERY_PANEL = 160  # px, longer side of each panel of a top-loss picture (any model size)
GALLERY_BATCH = 32  # top-loss images per batch when loading them for Grad-CAM

# --- pure tables from predictions ------------------------------------------------------------


def prediction_table(paths, probabilities, targets, losses, vocab) -> pd.DataFrame:
    """One row per validation image.

    Parameters
    ----------
    paths : sequence of str, length N
    probabilities : array of float, shape (N, K)
        Softmax outputs, rows sum to 1.
    targets : array of int, shape (N,)
        True class indices into ``vocab``.
    losses : array of float, shape (N,)
        Per-image loss.
    vocab : sequence of str, length K

    Returns
    -------
    DataFrame
        ``path``, ``actual``, ``predicted`` (labels), ``probability`` (of the predicted class),
        ``loss``, ``correct`` (bool), then ``probability:<label>`` for each class.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.int64)
    vocab = [str(label) for label in vocab]
    if probabilities.ndim != 2 or probabilities.shape != (len(targets), len(vocab)):
        raise ValueError(
            f"probabilities have shape {probabilities.shape}; expected "
            f"({len(targets)}, {len(vocab)}) = (images, classes)"
        )
    losses = np.asarray(losses, dtype=np.float64)
    paths = [str(p) for p in paths]
    if len(paths) != len(targets) or losses.shape != (len(targets),):
        raise ValueError(
            f"{len(paths)} paths and {losses.shape} losses for {len(targets)} targets; "
            "expected one path and one loss per image"
        )
    predicted = probabilities.argmax(axis=1)
    table = pd.DataFrame(
        {
            "path": paths,
            "actual": [vocab[i] for i in targets],
            "predicted": [vocab[i] for i in predicted],
            "probability": probabilities[np.arange(len(targets)), predicted],
            "loss": losses,
            "correct": predicted == targets,
        }
    )
    for index, label in enumerate(vocab):
        table[f"probability:{label}"] = probabilities[:, index]
    return table


def confusion_table(predictions: pd.DataFrame, vocab) -> pd.DataFrame:
    """Counts, rows = actual class, columns = predicted class, in ``vocab`` order (sklearn's
    ``confusion_matrix`` with ``labels=vocab``)."""
    from sklearn.metrics import confusion_matrix

    vocab = [str(label) for label in vocab]
    matrix = confusion_matrix(predictions["actual"], predictions["predicted"], labels=vocab)
    return pd.DataFrame(
        matrix,
        index=pd.Index(vocab, name="actual"),
        columns=pd.Index(vocab, name="predicted"),
    )


def class_metrics(predictions: pd.DataFrame, vocab) -> pd.DataFrame:
    """Per class: ``label``, ``precision``, ``recall``, ``f1``, ``support`` (sklearn; a class
    never predicted has precision 0)."""
    from sklearn.metrics import precision_recall_fscore_support

    vocab = [str(label) for label in vocab]
    precision, recall, f1, support = precision_recall_fscore_support(
        predictions["actual"], predictions["predicted"], labels=vocab, zero_division=0
    )
    return pd.DataFrame(
        {
            "label": vocab,
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": support.astype(int),
        }
    )


def most_confused(confusion: pd.DataFrame, *, minimum: int = 1) -> pd.DataFrame:
    """Off-diagonal cells with at least ``minimum`` images, largest first.

    Returns
    -------
    DataFrame
        ``actual``, ``predicted``, ``count``, ``share_of_actual`` (count / images of that class).
    """
    rows = []
    totals = confusion.sum(axis=1)
    for actual in confusion.index:
        for predicted in confusion.columns:
            count = int(confusion.loc[actual, predicted])
            if actual != predicted and count >= minimum:
                rows.append((actual, predicted, count, count / max(1, int(totals[actual]))))
    table = pd.DataFrame(rows, columns=["actual", "predicted", "count", "share_of_actual"])
    return table.sort_values(["count", "actual"], ascending=[False, True], kind="stable")


# --- predicting (fastai) ---------------------------------------------------------------------


def predict(learn) -> pd.DataFrame:
    """Predict the validation set once; :func:`prediction_table` of the result."""
    probabilities, targets, losses = learn.get_preds(ds_idx=1, with_loss=True)
    paths = list(learn.dls.valid.items["path"])
    return prediction_table(
        paths, probabilities.numpy(), targets.numpy(), losses.numpy(), learn.dls.vocab
    )


def tta_accuracy(learn) -> float:
    """Accuracy on valid with fastai's test-time augmentation (``learn.tta``, 4 augmented passes
    and the plain one)."""
    probabilities, targets = learn.tta(ds_idx=1)
    return float((probabilities.argmax(dim=1) == targets).float().mean())


def model_inputs(learn, paths: list[str]):
    """The images at ``paths`` as the model sees a validation image (valid item transforms,
    normalisation), and the same images for display.

    Returns
    -------
    inputs : torch.Tensor, float32, shape (N, C, H, W)
        Normalised, on the DataLoaders' device.
    display : ndarray of uint8, shape (N, H, W, 3)
        ``inputs`` with the normalisation undone (the crop the model saw, not the file).
    """
    import torch
    from fastai.vision.all import Normalize

    loader = learn.dls.test_dl(paths, bs=GALLERY_BATCH)
    inputs = torch.cat([batch[0].as_subclass(torch.Tensor).float() for batch in loader])
    pictures = inputs.detach().cpu()
    for transform in learn.dls.after_batch.fs:
        if isinstance(transform, Normalize):
            mean, std = transform.mean.cpu().float(), transform.std.cpu().float()
            pictures = pictures * std.view(1, -1, 1, 1) + mean.view(1, -1, 1, 1)
    display = (pictures.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return inputs, display


def _panel_size(height: int, width: int, panel: int) -> tuple[int, int]:
    """(width, height) with the longer side ``panel`` px, the aspect ratio kept."""
    scale = panel / max(height, width)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _resized_image(image: np.ndarray, panel: int) -> np.ndarray:
    """uint8 (H, W, 3) to the panel size: nearest-neighbour when enlarging (a 48 px input shows
    its real pixels), Lanczos when shrinking."""
    from PIL import Image

    size = _panel_size(*image.shape[:2], panel)
    resample = Image.Resampling.NEAREST if size[0] > image.shape[1] else Image.Resampling.LANCZOS
    return np.asarray(Image.fromarray(image).resize(size, resample))


def _resized_gradients(gradients: np.ndarray, panel: int) -> np.ndarray:
    """float (C, H, W) to the panel size, channel by channel (same resampling rule)."""
    from PIL import Image

    size = _panel_size(*gradients.shape[1:], panel)
    resample = (
        Image.Resampling.NEAREST if size[0] > gradients.shape[2] else Image.Resampling.BILINEAR
    )
    channels = [
        np.asarray(Image.fromarray(channel.astype(np.float32), mode="F").resize(size, resample))
        for channel in gradients
    ]
    return np.stack(channels)


def gallery_pictures(
    learn, paths: list[str], targets: list[int], *, panel: int = GALLERY_PANEL
) -> tuple[list[bytes] | None, str]:
    """Original | Grad-CAM overlay | guided Grad-CAM PNG for each image, all the same size.

    Grad-CAM (``interpret.gradcam``) and guided backprop (``interpret.guided``) each run once,
    batched, over all the images; the pictures are drawn by ``interpret.pictures``.

    Parameters
    ----------
    learn : fastai Learner
    paths : list of str, length N
    targets : list of int, length N
        The class each map explains (the gallery passes the predicted class).
    panel : int
        Longer side of every panel in px (the model's input is resized to it).

    Returns
    -------
    pictures : list of bytes, length N, or None
        PNG files, each ``3 * panel + 8`` px wide (two panels when the model has no ``nn.ReLU``
        to guide); None when interpret/ is missing or Grad-CAM cannot explain this model.
    note : str
        Why a panel or the pictures are missing; empty when all is well.
    """
    try:
        from interpret.gradcam import gradcam_with_scores
        from interpret.guided import guided_backprop
        from interpret.pictures import interpretation_png
    except ImportError as error:
        return None, f"Grad-CAM pictures need interpret/ ({error})."
    if not paths:
        return [], ""
    inputs, display = model_inputs(learn, paths)
    try:
        result = gradcam_with_scores(learn.model, inputs, list(targets))
    except (ValueError, TypeError) as error:  # e.g. a model without a convolutional layer
        return None, f"Grad-CAM cannot explain this model: {error}"
    note = ""
    try:
        guided = guided_backprop(learn.model, inputs, result.targets) * result.maps[:, None]
    except ValueError as error:  # no nn.ReLU to guide (GELU models)
        guided, note = None, f"No guided Grad-CAM panel: {error}"
    pictures = []
    for row, image in enumerate(display):
        pictures.append(
            interpretation_png(
                _resized_image(image, panel),
                result.maps[row],  # resized to the panel by the overlay
                None if guided is None else _resized_gradients(guided[row], panel),
                caption="original",
            )
        )
    return pictures, note


# --- figures ---------------------------------------------------------------------------------


def learning_curve_png(history: pd.DataFrame) -> bytes | None:
    """Losses and accuracy per epoch across stages (stage boundaries marked); None if empty."""
    if history.empty or "train_loss" not in history:
        return None
    from interpret.plots import figure_to_png, use_agg_backend

    use_agg_backend()
    import matplotlib.pyplot as plt

    steps = np.arange(1, len(history) + 1)
    figure, loss_axes = plt.subplots(figsize=(7, 3.6))
    loss_axes.plot(steps, history["train_loss"], marker="o", label="train loss")
    loss_axes.plot(steps, history["valid_loss"], marker="o", label="valid loss")
    loss_axes.set_xlabel("epoch (all stages)")
    loss_axes.set_ylabel("loss")
    accuracy_axes = loss_axes.twinx()
    accuracy_axes.plot(steps, history["accuracy"], color="tab:green", marker="s", label="accuracy")
    accuracy_axes.set_ylabel("accuracy")
    accuracy_axes.set_ylim(0, 1.02)
    starts = history.groupby("stage", sort=False).head(1).index
    for start in starts:
        loss_axes.axvline(start + 0.5, color="#999", linestyle=":")
        loss_axes.text(
            start + 0.6,
            loss_axes.get_ylim()[1],
            history.loc[start, "stage"],
            fontsize=8,
            va="top",
            color="#555",
        )
    handles = loss_axes.get_legend_handles_labels()
    more = accuracy_axes.get_legend_handles_labels()
    loss_axes.legend(handles[0] + more[0], handles[1] + more[1], loc="center right", fontsize=8)
    return figure_to_png(figure)


def confusion_png(confusion: pd.DataFrame) -> bytes:
    """Two seaborn heatmaps side by side: counts and row-normalised (recall on the diagonal)."""
    from interpret.plots import figure_to_png, use_agg_backend

    use_agg_backend()
    import matplotlib.pyplot as plt
    import seaborn as sns

    side = 3 + 0.45 * len(confusion)
    figure, (counts_axes, share_axes) = plt.subplots(1, 2, figsize=(2 * side + 1, side))
    sns.heatmap(confusion, annot=True, fmt="d", cmap="Blues", cbar=False, ax=counts_axes)
    counts_axes.set_title("counts")
    shares = confusion.div(confusion.sum(axis=1).replace(0, 1), axis=0)
    sns.heatmap(
        shares, annot=True, fmt=".2f", cmap="Blues", vmin=0, vmax=1, cbar=False, ax=share_axes
    )
    share_axes.set_title("row-normalised (share of each actual class)")
    figure.tight_layout()
    return figure_to_png(figure)


# --- the page --------------------------------------------------------------------------------


def _audit_section(gate: dict | None, allowed: bool, report_dir: Path) -> str:
    from interpret.html import escape, status_badge, table

    if gate is None:
        return "<p>The audit gate did not run.</p>"
    link = ""
    if (report_dir / "audit.html").is_file():
        link = ' <a href="audit.html">Full audit report</a>.'
    text = f"<p>Audit status: {status_badge(gate['status'])}.{link}</p>"
    if gate["status"] != "passed":
        if allowed:
            text += (
                '<p class="summary failed"><strong>Trained despite failing audits</strong> '
                "(--allow-audit-failures). The accuracy below may be inflated by the faults "
                "listed here.</p>"
            )
        if gate.get("failures"):
            text += table(pd.DataFrame(gate["failures"])[["rule", "status", "summary"]])
        elif gate.get("output"):
            text += f"<pre>{escape(gate['output'])}</pre>"
    text += f'<p class="muted">Command: <code>{escape(gate.get("command", ""))}</code></p>'
    return text


def gallery_image_bytes(path, *, size: int = GALLERY_PANEL) -> bytes:
    """JPEG bytes of the image at ``path`` scaled so its longer side is ``size`` px (small
    images are enlarged, nearest-neighbour, so a 32 px image is not a speck)."""
    import io

    from PIL import Image, ImageOps

    with Image.open(path) as opened:
        image = ImageOps.exif_transpose(opened).convert("RGB")
    scale = size / max(image.size)
    resample = Image.Resampling.NEAREST if scale > 1 else Image.Resampling.LANCZOS
    image = image.resize(
        (max(1, round(image.width * scale)), max(1, round(image.height * scale))), resample
    )
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


GALLERY_STYLE = """
.loss-grid { display: grid; gap: 12px; margin-top: 0.6em;
             grid-template-columns: repeat(auto-fill, minmax(min(100%, CARDpx), 1fr)); }
.loss-card { border: 1px solid #ddd; border-radius: 6px; padding: 8px; background: #fff;
             display: flex; flex-direction: column; align-items: center; }
.loss-card img { display: block; max-width: 100%; height: auto; }
.loss-caption { margin: 6px 0 0; font-size: 0.9em; text-align: center; }
.loss-caption .wrong { color: #b91c1c; }
.loss-path { margin: 2px 0 0; font-size: 0.75em; color: #666; text-align: center;
             overflow-wrap: anywhere; }
"""


def _png_width(content: bytes) -> int | None:
    """Width from a PNG's header (IHDR), None for anything else."""
    if content[:8] == b"\x89PNG\r\n\x1a\n" and len(content) >= 24:
        return int.from_bytes(content[16:20], "big")
    return None


def _gallery(top: pd.DataFrame, pictures: list[bytes] | None, note: str = "") -> str:
    """A grid of cards: the picture, ``actual X / predicted Y / p=0.97 / loss 12.8``, the path.

    ``pictures`` (one PNG per row of ``top``, :func:`gallery_pictures`) or, when None, the plain
    image files.
    """
    from interpret.html import escape, image_tag, placeholder

    cards = []
    widths = []
    for position, row in enumerate(top.itertuples(index=False)):
        predicted_class = "" if row.correct else ' class="wrong"'
        caption = (
            f"actual <b>{escape(row.actual)}</b> / "
            f"predicted <b{predicted_class}>{escape(row.predicted)}</b> / "
            f"p={row.probability:.2f} / loss {row.loss:.2f}"
        )
        alt = f"{Path(row.path).name}: original, Grad-CAM and guided Grad-CAM for {row.predicted}"
        if pictures is not None:
            width = _png_width(pictures[position])
            widths.append(width or GALLERY_PANEL)
            picture = image_tag(pictures[position], alt=alt, width=width)
        else:
            widths.append(GALLERY_PANEL)
            try:
                content = gallery_image_bytes(row.path)
                picture = image_tag(content, mime="image/jpeg", alt=Path(row.path).name)
            except (OSError, ValueError, SyntaxError) as error:  # PIL raises all three
                picture = placeholder(f"cannot show {Path(row.path).name}: {error}")
        cards.append(
            f'<div class="loss-card">{picture}<p class="loss-caption">{caption}</p>'
            f'<p class="loss-path" title="{escape(row.path)}">{escape(row.path)}</p></div>'
        )
    card = max(widths, default=GALLERY_PANEL) + 18  # picture + padding + border
    explained = (
        "Each picture: the image as the model saw it (resized and cropped) | Grad-CAM for the "
        "predicted class | guided Grad-CAM (the same map times guided backprop: the pixels "
        "that drove the prediction)."
        if pictures is not None
        else "The images (Grad-CAM pictures are not available)."
    )
    intro = f'<p class="muted">{escape(explained)}'
    intro += f" {escape(note)}</p>" if note else "</p>"
    style = f"<style>{GALLERY_STYLE.replace('CARD', str(card))}</style>"
    return style + intro + f'<div class="loss-grid">{"".join(cards)}</div>'


def render_training_html(
    *,
    settings: dict,
    gate: dict | None,
    allowed: bool,
    hardware_note: str,
    history: pd.DataFrame,
    predictions: pd.DataFrame,
    vocab,
    accuracy_with_tta: float | None,
    pictures: list[bytes] | None,
    top_losses: int,
    report_dir: Path,
    gallery_note: str = "",
) -> str:
    """The report's HTML (a complete page). ``predictions`` is :func:`prediction_table` output;
    every table below is derived from it. The confusion matrix is also embedded as JSON in
    ``<script type="application/json" id="confusion-matrix">`` (``labels``, ``counts``).
    ``pictures``: :func:`gallery_pictures` for the ``top_losses`` highest-loss rows (in
    descending loss order), or None for plain images."""
    from interpret.html import escape, image_tag, key_value_table, page, section, table

    confusion = confusion_table(predictions, vocab)
    metrics = class_metrics(predictions, vocab)
    pairs = most_confused(confusion)
    top = predictions.sort_values("loss", ascending=False, kind="stable").head(top_losses)
    accuracy = float(predictions["correct"].mean()) if len(predictions) else float("nan")

    figures = learning_curve_png(history)
    curves = image_tag(figures, alt="learning curves") if figures else "<p>No epochs logged.</p>"
    history_table = table(history.drop(columns=["time"], errors="ignore"))
    results = key_value_table(
        [
            ("validation images", len(predictions)),
            ("accuracy", round(accuracy, 4)),
            (
                "accuracy with TTA",
                "not computed" if accuracy_with_tta is None else round(accuracy_with_tta, 4),
            ),
            ("classes", len(vocab)),
        ]
    )
    embedded = json.dumps(
        {"labels": list(confusion.index), "counts": confusion.to_numpy().tolist()}
    ).replace("</", "<\\/")
    confusion_html = (
        image_tag(confusion_png(confusion), alt="confusion matrix")
        + table(confusion, index=True)
        + f'<script type="application/json" id="confusion-matrix">{embedded}</script>'
    )
    body = (
        "<h1>splitsafe training report</h1>"
        f'<p class="muted">{escape(hardware_note)}</p>'
        + section("audit", "Audit gate", _audit_section(gate, allowed, report_dir))
        + section("settings", "Settings", key_value_table(sorted(settings.items())))
        + section("results", "Results", results)
        + section("curves", "Learning curves", curves + history_table)
        + section("confusion", "Confusion matrix", confusion_html)
        + section("per-class", "Precision, recall and F1 per class", table(metrics))
        + section(
            "most-confused",
            "Most-confused pairs",
            table(pairs) if len(pairs) else "<p>No confusions.</p>",
        )
        + section("top-losses", f"Top {len(top)} losses", _gallery(top, pictures, gallery_note))
    )
    return page("splitsafe training report", body)


def write_training_report(
    learn,
    *,
    settings: dict,
    gate: dict | None,
    allowed: bool,
    hardware_note: str,
    history: pd.DataFrame,
    report_dir: Path,
    tta: bool = True,
    top_losses: int = 12,
    progress_bars: bool | None = None,
) -> Path:
    """Predict once, write ``predictions.csv``, ``confusion.csv`` and ``training.html`` into
    ``report_dir``; return the report's path.

    ``progress_bars``: fastai's bars for the prediction passes; None = only when stdout is a
    terminal (``train.recipe.wants_progress_bars``)."""
    from train.recipe import progress_output, wants_progress_bars

    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    vocab = [str(label) for label in learn.dls.vocab]
    bars = wants_progress_bars() if progress_bars is None else progress_bars
    with progress_output(learn, bars=bars):
        predictions = predict(learn)
        accuracy_with_tta = tta_accuracy(learn) if tta else None
    predictions.to_csv(report_dir / PREDICTIONS_NAME, index=False)
    confusion_table(predictions, vocab).to_csv(report_dir / CONFUSION_NAME)
    top = predictions.sort_values("loss", ascending=False, kind="stable").head(top_losses)
    pictures, gallery_note = gallery_pictures(
        learn, list(top["path"]), [vocab.index(label) for label in top["predicted"]]
    )
    html = render_training_html(
        settings=settings,
        gate=gate,
        allowed=allowed,
        hardware_note=hardware_note,
        history=history,
        predictions=predictions,
        vocab=vocab,
        accuracy_with_tta=accuracy_with_tta,
        pictures=pictures,
        top_losses=top_losses,
        report_dir=report_dir,
        gallery_note=gallery_note,
    )
    path = report_dir / REPORT_NAME
    path.write_text(html, encoding="utf-8")
    return path
