"""The audit report: ``audit.html`` (one self-contained page) and ``audit.json`` from findings.

conftest.py collects one :class:`data.findings.Finding` per audit test (plus the tests that were
skipped or errored without one) and calls :func:`write_audit_report` at the end of the session.
The HTML page has a summary table, then one section per rule (anchor id = rule id, so a
failure message can say ``see reports/audit.html#near-duplicates``) with the message, the
examples (paths shown as thumbnails, pairs side by side, border strips outlined in red), the
figures and the details; the effective configuration and the dataset come last.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from interpret import html

# Report order of the rules (ARCHITECTURE.md); unknown rules follow in the order seen.
RULE_ORDER = (
    "integrity",
    "expectations",
    "near-duplicates",
    "label-conflicts",
    "duplicates-within-split",
    "group-leakage",
    "scene-leakage",
    "augmentation-lineage",
    "class-balance",
    "origin-mix",
    "border-artifacts",
    "metadata-shortcut",
    "property-drift",
    "image-quality",
    "model-focus",
)
STATUS_ORDER = ("failed", "error", "warning", "skipped", "passed")
SIDES = ("top", "bottom", "left", "right")


def is_path_column(column: str) -> bool:
    """Columns shown as thumbnails: ``path``, ``path_a``/``path_b``, names ending in ``_path``."""
    return column in {"path", "path_a", "path_b"} or str(column).endswith("_path")


def border_boxes(row: dict):
    """``(width, height) -> boxes`` outlining the strips given by a row's ``border_*`` columns."""

    def boxes(width: int, height: int):
        found = []
        for side in SIDES:
            strip = int(row.get(f"border_{side}_width", 0) or 0)
            offset = int(row.get(f"border_{side}_offset", 0) or 0)
            if strip <= 0:
                continue
            if side == "top":
                found.append((0, offset, width, offset + strip))
            elif side == "bottom":
                found.append((0, height - offset - strip, width, height - offset))
            elif side == "left":
                found.append((offset, 0, offset + strip, height))
            else:
                found.append((width - offset - strip, 0, width - offset, height))
        return found

    return boxes


def _resolve(dataset_root: Path | None, path: str) -> Path:
    candidate = Path(path)
    if candidate.is_absolute() or dataset_root is None:
        return candidate
    return dataset_root / candidate


def examples_html(examples: pd.DataFrame, *, dataset_root: Path | None, max_rows: int) -> str:
    """Examples table with image paths rendered as thumbnails (border strips outlined)."""
    has_borders = any(f"border_{side}_width" in examples.columns for side in SIDES)
    shown = examples.head(max_rows).reset_index(drop=True)
    records = shown.to_dict("records")

    def cell(column, value, row):
        if not (is_path_column(column) and isinstance(value, str) and value):
            return None
        boxes = border_boxes(records[row]) if has_borders and column == "path" else ()
        return html.thumbnail_tag(_resolve(dataset_root, value), caption=value, boxes=boxes)

    table = html.table(shown, cell=cell)
    if len(examples) > max_rows:
        table += f'<p class="muted">{len(examples) - max_rows} more in audit.json.</p>'
    return table


def details_html(details: dict) -> str:
    """Render a finding's details: tables for records and mappings, JSON for the rest."""
    parts = []
    for key, value in details.items():
        title = f"<h4>{html.escape(key)}</h4>"
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            parts.append(title + html.table(pd.DataFrame(value), max_rows=200))
        elif isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            parts.append(title + html.table(pd.DataFrame(value).T, index=True))
        elif isinstance(value, dict) and value:
            parts.append(title + html.key_value_table(value.items()))
        else:
            text = json.dumps(value, indent=2, default=str)
            parts.append(title + f"<pre>{html.escape(text)}</pre>")
    return "<details open><summary>Details</summary>" + "".join(parts) + "</details>"


def _finding_html(finding, *, dataset_root: Path | None, max_examples: int, data_docs: str | None):
    body = [
        f"<h3>{html.status_badge(finding.status)} {html.escape(finding.title)}</h3>",
        f'<p class="muted">test: <code>{html.escape(finding.test)}</code> · '
        f"count: {finding.count}</p>",
        f'<div class="summary {finding.status}">{html.escape(finding.summary)}</div>',
    ]
    if finding.rule == "expectations" and data_docs:
        body.append(f'<p><a href="{html.escape(data_docs)}">Great Expectations Data Docs</a></p>')
    if finding.examples is not None and len(finding.examples):
        body.append(
            examples_html(finding.examples, dataset_root=dataset_root, max_rows=max_examples)
        )
    for caption, content in finding.figures.items():
        body.append(
            f"<figure>{html.image_tag(content, alt=caption)}"
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )
    if finding.details:
        body.append(details_html(finding.details))
    return "<article>" + "".join(body) + "</article>"


def _rule_key(rule: str, seen: list[str]) -> tuple[int, int]:
    if rule in RULE_ORDER:
        return (0, RULE_ORDER.index(rule))
    return (1, seen.index(rule) if rule in seen else len(seen))


def summary_rows(findings: Sequence, outcomes: Sequence[dict]) -> pd.DataFrame:
    """One row per test: rule, test, status, count, summary (first line)."""
    rows = [
        {
            "rule": f.rule,
            "test": f.test,
            "status": f.status,
            "count": f.count,
            "summary": f.summary,
        }
        for f in findings
    ]
    rows += [
        {
            "rule": o.get("rule", ""),
            "test": o["test"],
            "status": o["status"],
            "count": 0,
            "summary": o.get("reason", ""),
        }
        for o in outcomes
    ]
    return pd.DataFrame(rows, columns=["rule", "test", "status", "count", "summary"])


def render_audit_html(
    findings: Sequence,
    *,
    config: dict,
    dataset: dict,
    dataset_root: Path | None = None,
    outcomes: Sequence[dict] = (),
    data_docs: str | None = None,
    max_examples: int = 12,
) -> str:
    """The audit report as one HTML document (see module docstring)."""
    rows = summary_rows(findings, outcomes)
    counts = rows["status"].value_counts().to_dict()
    verdict = "FAILED" if counts.get("failed") or counts.get("error") else "PASSED"
    totals = ", ".join(f"{counts[s]} {s}" for s in STATUS_ORDER if counts.get(s))

    def summary_cell(column, value, row):
        if column == "status":
            return html.status_badge(value)
        if column == "rule" and value:
            return f'<a href="#{html.escape(value)}">{html.escape(value)}</a>'
        if column == "summary":
            first = str(value).split("\n", 1)[0]
            short = first if len(first) <= 160 else first[:157] + "..."
            return html.escape(short)
        return None

    seen_rules: list[str] = []
    for item in [f.rule for f in findings] + [o.get("rule", "") for o in outcomes]:
        if item and item not in seen_rules:
            seen_rules.append(item)
    body = [
        f"<h1>splitsafe audit: {html.escape(verdict)}</h1>",
        f'<p class="muted">dataset: <code>{html.escape(dataset.get("dataset", ""))}</code> · '
        f"{html.escape(totals or 'no audits ran')}</p>",
    ]
    if data_docs:
        body.append(f'<p><a href="{html.escape(data_docs)}">Great Expectations Data Docs</a></p>')
    body.append(html.section("summary", "Summary", html.table(rows, cell=summary_cell)))
    for rule in sorted(seen_rules, key=lambda r: _rule_key(r, seen_rules)):
        articles = [
            _finding_html(
                f, dataset_root=dataset_root, max_examples=max_examples, data_docs=data_docs
            )
            for f in findings
            if f.rule == rule
        ]
        for outcome in outcomes:
            if outcome.get("rule") == rule:
                articles.append(
                    f"<article><h3>{html.status_badge(outcome['status'])} "
                    f"<code>{html.escape(outcome['test'])}</code></h3>"
                    f'<div class="summary">{html.escape(outcome.get("reason", ""))}</div></article>'
                )
        body.append(html.section(rule, rule, "".join(articles)))
    unruled = [o for o in outcomes if not o.get("rule")]
    if unruled:
        items = "".join(
            f"<article><h3>{html.status_badge(o['status'])} <code>{html.escape(o['test'])}</code>"
            f'</h3><div class="summary">{html.escape(o.get("reason", ""))}</div></article>'
            for o in unruled
        )
        body.append(html.section("other-tests", "Skipped or errored tests", items))
    body.append(html.section("dataset", "Dataset", html.key_value_table(_flat(dataset))))
    body.append(
        html.section(
            "configuration", "Effective configuration", html.key_value_table(_flat(config))
        )
    )
    return html.page(f"splitsafe audit: {verdict}", "".join(body))


def _flat(mapping: dict):
    for key, value in mapping.items():
        if isinstance(value, dict):
            yield key, json.dumps(value, default=str)
        else:
            yield key, value


def _records(examples: pd.DataFrame | None) -> list[dict]:
    if examples is None or not len(examples):
        return []
    return json.loads(examples.to_json(orient="records", default_handler=str))


def audit_json(
    findings: Sequence,
    *,
    config: dict,
    dataset: dict,
    outcomes: Sequence[dict] = (),
    data_docs: str | None = None,
) -> dict:
    """Machine-readable report: every finding with its examples as records.

    Returns
    -------
    dict
        ``passed`` (bool), ``counts`` (status -> n), ``dataset``, ``config``, ``data_docs``,
        ``findings``: list of ``{rule, title, test, status, summary, count, examples, details,
        figures}`` (figure captions only); skipped/errored tests appear with ``status``
        ``"skipped"``/``"error"`` and the reason as ``summary``.
    """
    entries = [
        {
            "rule": f.rule,
            "title": f.title,
            "test": f.test,
            "status": f.status,
            "summary": f.summary,
            "count": int(f.count),
            "examples": _records(f.examples),
            "details": json.loads(json.dumps(f.details, default=str)),
            "figures": list(f.figures),
        }
        for f in findings
    ]
    entries += [
        {
            "rule": o.get("rule", ""),
            "title": "",
            "test": o["test"],
            "status": o["status"],
            "summary": o.get("reason", ""),
            "count": 0,
            "examples": [],
            "details": {},
            "figures": [],
        }
        for o in outcomes
    ]
    counts: dict[str, int] = {}
    for entry in entries:
        counts[entry["status"]] = counts.get(entry["status"], 0) + 1
    return {
        "passed": not (counts.get("failed") or counts.get("error")),
        "counts": counts,
        "dataset": json.loads(json.dumps(dataset, default=str)),
        "config": json.loads(json.dumps(config, default=str)),
        "data_docs": data_docs,
        "findings": entries,
    }


def write_audit_report(
    findings: Sequence,
    *,
    report_dir: str | os.PathLike,
    config: dict,
    dataset: dict,
    dataset_root: str | os.PathLike | None = None,
    outcomes: Sequence[dict] = (),
    max_examples: int = 12,
) -> tuple[Path, Path]:
    """Write ``audit.html`` and ``audit.json`` into ``report_dir`` (created); return both paths.

    Parameters
    ----------
    findings : sequence of data.findings.Finding
        With ``test`` filled in.
    report_dir : path
        Output folder. A Great Expectations site at ``report_dir/data_docs/index.html`` is
        linked when present.
    config : dict
        The effective configuration (``data.settings.config_as_dict``).
    dataset : dict
        What to show about the dataset (path, layout, counts).
    dataset_root : path, optional
        Folder that example paths are relative to (thumbnails); None shows no thumbnails for
        relative paths that do not exist from the working directory.
    outcomes : sequence of dict
        Tests without a finding: ``{"test", "status": "skipped"|"error", "reason", "rule"}``.
    max_examples : int
        Example rows (with thumbnails) shown per finding; all go to the JSON.
    """
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    docs = report_dir / "data_docs" / "index.html"
    data_docs = "data_docs/index.html" if docs.is_file() else None
    root = Path(dataset_root) if dataset_root is not None else None
    html_path, json_path = report_dir / "audit.html", report_dir / "audit.json"
    html_path.write_text(
        render_audit_html(
            findings,
            config=config,
            dataset=dataset,
            dataset_root=root,
            outcomes=outcomes,
            data_docs=data_docs,
            max_examples=max_examples,
        ),
        encoding="utf-8",
    )
    report = audit_json(
        findings, config=config, dataset=dataset, outcomes=outcomes, data_docs=data_docs
    )
    json_path.write_text(json_text(report), encoding="utf-8")
    return html_path, json_path


def json_text(value, *, indent: int = 2) -> str:
    """JSON indented like ``json.dumps(value, indent=indent)``, except that a flat record (a
    dict or list holding no dict or list) is written on one line.

    Same data, still readable line by line, and written by the C encoder: indenting every
    field of 50,000 example records (an image-quality flag on every image) took most of the
    report's time.
    """
    compact = json.JSONEncoder(ensure_ascii=True, separators=(", ", ": ")).encode

    def render(item, depth: int) -> str:
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            return compact(item)
        if not any(isinstance(child, (dict, list, tuple)) for child in children):
            return compact(item)
        inner = " " * (indent * (depth + 1))
        outer = " " * (indent * depth)
        if isinstance(item, dict):
            parts = [
                f"{compact(str(key))}: {render(child, depth + 1)}" for key, child in item.items()
            ]
            return "{\n" + ",\n".join(inner + part for part in parts) + "\n" + outer + "}"
        parts = [render(child, depth + 1) for child in item]
        return "[\n" + ",\n".join(inner + part for part in parts) + "\n" + outer + "]"

    return render(value, 0)
