"""Building blocks for self-contained, offline HTML reports.

Every report splitsafe writes (the audit report, the training report) is one ``.html`` file
that opens without a network: images are embedded as ``data:`` URIs, the style sheet is inline,
nothing refers to an external URL. The helpers return HTML fragments as ``str``; text is
escaped here, so callers pass plain strings.
"""

from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Callable, Iterable, Sequence

import pandas as pd

STYLESHEET = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 1200px; padding: 0 1em; color: #1d1d1f; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
h3 { font-size: 1.05em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f4f4f6; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
.status { font-weight: 600; padding: 0.1em 0.5em; border-radius: 0.3em; white-space: nowrap; }
.status-passed { background: #d9f2dc; color: #14532d; }
.status-failed { background: #fbd5d5; color: #7f1d1d; }
.status-error { background: #f5c2e7; color: #701a75; }
.status-warning { background: #fff3c4; color: #713f12; }
.status-skipped { background: #e5e7eb; color: #374151; }
.summary { white-space: pre-wrap; background: #fafafa; border-left: 4px solid #bbb;
           padding: 0.5em 0.8em; }
.summary.failed { border-left-color: #dc2626; }
.summary.warning { border-left-color: #d97706; }
.summary.passed { border-left-color: #16a34a; }
figure { display: inline-block; margin: 0.3em; text-align: center; font-size: 0.8em; }
figure img { display: block; border: 1px solid #ccc; }
.placeholder { display: inline-block; width: 120px; height: 90px; background: #eee; color: #666;
               font-size: 0.75em; padding: 0.3em; overflow: hidden; border: 1px dashed #aaa; }
pre { background: #f6f6f6; padding: 0.6em; overflow-x: auto; font-size: 0.85em; }
.muted { color: #666; font-size: 0.9em; }
"""

THUMBNAIL_SIZE = 160  # px, longest side of an embedded thumbnail
RECTANGLE_COLOR = (230, 0, 0)

Box = tuple[float, float, float, float]  # left, top, right, bottom in original image pixels


def escape(text) -> str:
    """HTML-escape ``str(text)`` (quotes included)."""
    return html.escape(str(text), quote=True)


def data_uri(content: bytes, *, mime: str = "image/png") -> str:
    """``data:`` URI of ``content`` (base64)."""
    return f"data:{mime};base64,{base64.b64encode(content).decode('ascii')}"


def image_tag(
    content: bytes, *, mime: str = "image/png", alt: str = "", width: int | None = None
) -> str:
    """``<img>`` embedding ``content`` (PNG or JPEG bytes)."""
    size = f' width="{int(width)}"' if width else ""
    return f'<img src="{data_uri(content, mime=mime)}" alt="{escape(alt)}"{size}>'


def placeholder(reason: str) -> str:
    """A grey box standing in for an image that could not be shown, with the reason."""
    return f'<span class="placeholder" title="{escape(reason)}">{escape(reason)}</span>'


def thumbnail_bytes(
    path: str | os.PathLike,
    *,
    size: int = THUMBNAIL_SIZE,
    boxes: Sequence[Box] | Callable[[int, int], Sequence[Box]] = (),
) -> bytes:
    """JPEG bytes of a thumbnail of the image at ``path``, optionally with red rectangles.

    Parameters
    ----------
    path : path
        Any image PIL reads; EXIF orientation is applied, the first frame of an animation used.
    size : int
        Longest side of the thumbnail in pixels (never enlarged).
    boxes : sequence of (left, top, right, bottom), or callable
        Rectangles in the original image's pixel coordinates (after EXIF orientation), or a
        function ``(width, height) -> boxes`` for rectangles that depend on the image size (a
        strip along an edge). Drawn as 2 px outlines after resizing, so a 1 px line in a
        large image stays visible.

    Raises
    ------
    OSError, ValueError
        When the file cannot be read or decoded (callers show :func:`placeholder`).
    """
    from PIL import Image, ImageDraw, ImageOps

    with Image.open(path) as opened:
        opened.seek(0)
        image = ImageOps.exif_transpose(opened).convert("RGB")
    width, height = image.size
    rectangles = boxes(width, height) if callable(boxes) else boxes
    image.thumbnail((size, size))
    if rectangles:
        scale_x, scale_y = image.width / width, image.height / height
        draw = ImageDraw.Draw(image)
        for left, top, right, bottom in rectangles:
            draw.rectangle(
                [
                    max(0, int(left * scale_x) - 1),
                    max(0, int(top * scale_y) - 1),
                    min(image.width - 1, int(round(right * scale_x))),
                    min(image.height - 1, int(round(bottom * scale_y))),
                ],
                outline=RECTANGLE_COLOR,
                width=2,
            )
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85, subsampling=0)  # crisp red lines
    return buffer.getvalue()


def thumbnail_tag(
    path: str | os.PathLike,
    *,
    caption: str = "",
    size: int = THUMBNAIL_SIZE,
    boxes: Sequence[Box] | Callable[[int, int], Sequence[Box]] = (),
) -> str:
    """``<figure>`` with an embedded thumbnail and a caption; a placeholder if unreadable."""
    try:
        content = thumbnail_bytes(path, size=size, boxes=boxes)
        body = image_tag(content, mime="image/jpeg", alt=caption or str(path))
    except (OSError, ValueError, SyntaxError) as error:  # PIL raises all three on bad files
        body = placeholder(f"cannot show {os.path.basename(path)}: {error}")
    return f"<figure>{body}<figcaption>{escape(caption)}</figcaption></figure>"


def format_value(value) -> str:
    """Readable text for a table cell: floats to 3 significant decimals, lists joined."""
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e4 else f"{value:,.0f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(v) for v in value)
    return str(value)


def table(
    frame: pd.DataFrame,
    *,
    max_rows: int | None = None,
    cell: Callable[[str, object, int], str | None] | None = None,
    index: bool = False,
) -> str:
    """HTML ``<table>`` of a DataFrame.

    Parameters
    ----------
    frame : DataFrame
        Any columns; values are escaped.
    max_rows : int, optional
        Show at most this many rows and say how many were left out.
    cell : callable, optional
        ``cell(column, value, row)`` (``row``: 0-based position) returning ready HTML for a
        cell, or None for the default (escaped :func:`format_value`). Lets a caller turn
        paths into thumbnails.
    index : bool
        Include the index as the first column.
    """
    shown = frame if max_rows is None else frame.head(max_rows)
    if index:
        shown = shown.reset_index()
    header = "".join(f"<th>{escape(column)}</th>" for column in shown.columns)
    rows = []
    for row, values in enumerate(shown.itertuples(index=False, name=None)):
        cells = []
        for column, value in zip(shown.columns, values, strict=True):
            rendered = cell(column, value, row) if cell is not None else None
            if rendered is None:
                is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
                css = ' class="number"' if is_number else ""
                rendered = f"<td{css}>{escape(format_value(value))}</td>"
            else:
                rendered = f"<td>{rendered}</td>"
            cells.append(rendered)
        rows.append("<tr>" + "".join(cells) + "</tr>")
    more = ""
    if max_rows is not None and len(frame) > max_rows:
        more = f'<p class="muted">{len(frame) - max_rows} more rows not shown.</p>'
    return f"<table><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>{more}"


def key_value_table(items: Iterable[tuple[str, object]]) -> str:
    """Two-column table of (name, value) pairs."""
    rows = "".join(
        f"<tr><th>{escape(key)}</th><td>{escape(format_value(value))}</td></tr>"
        for key, value in items
    )
    return f"<table><tbody>{rows}</tbody></table>"


def status_badge(status: str) -> str:
    """Coloured label for passed / failed / warning / skipped / error."""
    return f'<span class="status status-{escape(status)}">{escape(status)}</span>'


def section(anchor: str, title: str, body: str) -> str:
    """``<section id=anchor>`` with a heading linking to itself."""
    return (
        f'<section id="{escape(anchor)}"><h2><a href="#{escape(anchor)}">{escape(title)}</a></h2>'
        f"{body}</section>"
    )


def page(title: str, body: str) -> str:
    """A complete HTML document with the inline style sheet."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{STYLESHEET}</style></head>"
        f"<body>{body}</body></html>\n"
    )
