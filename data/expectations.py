"""Great Expectations audit: the dataset's contract as an expectation suite over the feature table.

The suite states what every well-formed dataset satisfies: paths unique, split values known,
labels non-empty and (in valid/test) seen in train, every file decodes, sizes in range, each
content hash in one split (and, optionally, unique). It is validated with Great Expectations
1.x over a pandas DataFrame in an ephemeral context, and its Data Docs (GX's HTML report) are
written to a folder the caller names (the audit writes ``<report-dir>/data_docs``).

great_expectations takes seconds to import: it is imported inside :func:`validate_features`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from data.findings import Finding

RULE = "expectations"
KNOWN_SPLITS = ("train", "valid", "test", "")
MAX_SIDE = 50_000  # px; PIL's decompression-bomb limit (~89 Mpx) allows about this square side


def known_labels(features: pd.DataFrame) -> list[str]:
    """Labels a valid/test image may carry: the train split's labels, else every label seen."""
    train = features.loc[features["split"] == "train", "label"]
    source = train if len(train) else features["label"]
    return sorted(label for label in source.unique() if label)


def validation_table(features: pd.DataFrame) -> pd.DataFrame:
    """The columns the suite checks; measurements of undecodable rows set to missing.

    Returns
    -------
    DataFrame
        ``path``, ``split``, ``label``, ``error`` (str); ``width``, ``height``, ``file_size``
        (float, NaN where ``error`` is set, so size expectations judge decodable images only);
        ``sha256`` (str or None); ``sha256_splits`` (float: how many splits hold that file
        content, NaN where undecodable).
    """
    broken = features["error"] != ""
    table = features.loc[:, ["path", "split", "label", "error"]].astype(str).reset_index(drop=True)
    for column in ("width", "height", "file_size"):
        values = features[column].astype(float).to_numpy().copy()
        values[broken.to_numpy()] = np.nan
        table[column] = values
    digests = features["sha256"].astype(object).where(~broken, None).reset_index(drop=True)
    table["sha256"] = digests
    splits_per_digest = features[~broken].groupby("sha256")["split"].nunique()
    table["sha256_splits"] = digests.map(splits_per_digest).astype(float)
    return table


def build_suite(features: pd.DataFrame, *, unique_content: bool = False, max_side: int = MAX_SIDE):
    """The expectation suite (a ``great_expectations.ExpectationSuite``) for ``features``."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    suite = gx.ExpectationSuite(name="splitsafe_dataset")
    suite.add_expectation(gxe.ExpectColumnValuesToBeUnique(column="path"))
    suite.add_expectation(
        gxe.ExpectColumnValuesToBeInSet(column="split", value_set=list(KNOWN_SPLITS))
    )
    suite.add_expectation(gxe.ExpectColumnValueLengthsToBeBetween(column="label", min_value=1))
    suite.add_expectation(
        gxe.ExpectColumnValuesToBeInSet(column="label", value_set=known_labels(features))
    )
    suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column="error", value_set=[""]))
    for column in ("width", "height"):
        suite.add_expectation(
            gxe.ExpectColumnValuesToBeBetween(column=column, min_value=1, max_value=max_side)
        )
    suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(column="file_size", min_value=1))
    suite.add_expectation(
        gxe.ExpectColumnValuesToBeBetween(column="sha256_splits", min_value=1, max_value=1)
    )
    if unique_content:
        suite.add_expectation(gxe.ExpectColumnValuesToBeUnique(column="sha256"))
    return suite


def _quiet_gx() -> None:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    for name in ("great_expectations", "great_expectations.core", "posthog"):
        logging.getLogger(name).setLevel(logging.ERROR)


def validate_features(
    features: pd.DataFrame,
    *,
    data_docs_dir: str | os.PathLike | None = None,
    unique_content: bool = False,
    max_side: int = MAX_SIDE,
) -> tuple[list[dict], Path | None]:
    """Validate the suite over ``features``; optionally write Data Docs.

    Parameters
    ----------
    features : DataFrame
        The feature table (needs ``path``, ``split``, ``label``, ``error``, ``width``,
        ``height``, ``file_size``, ``sha256``).
    data_docs_dir : path, optional
        Folder for the Data Docs site (created); None writes none.
    unique_content : bool
        Also expect every file content (``sha256``) to be unique, i.e. no exact duplicates
        even within a split (``AuditConfig.fail_on_duplicates_within_split``).
    max_side : int
        Largest accepted width or height in pixels (:data:`MAX_SIDE`).

    Returns
    -------
    results : list of dict
        One per expectation: ``expectation`` (type), ``column``, ``success`` (bool),
        ``unexpected_count`` (int), ``unexpected`` (list of ``{"path", "value"}``, first 20).
    index : Path or None
        The Data Docs ``index.html``.
    """
    _quiet_gx()
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    table = validation_table(features)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    source = context.data_sources.add_pandas(name="splitsafe")
    batch = source.add_dataframe_asset(name="images").add_batch_definition_whole_dataframe("all")
    suite = context.suites.add(
        build_suite(features, unique_content=unique_content, max_side=max_side)
    )
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name="splitsafe_validation", data=batch, suite=suite)
    )
    run = definition.run(
        batch_parameters={"dataframe": table},
        result_format={"result_format": "SUMMARY", "unexpected_index_column_names": ["path"]},
    )
    results = []
    for item in run.results:
        outcome = item.result or {}
        column = item.expectation_config.kwargs.get("column", "")
        values = outcome.get("partial_unexpected_list") or []
        indexed = outcome.get("partial_unexpected_index_list") or []
        unexpected = []
        for position, value in enumerate(values[:20]):
            entry = indexed[position] if position < len(indexed) else {}
            path = entry.get("path", "") if isinstance(entry, dict) else ""
            unexpected.append({"path": path, "value": value})
        results.append(
            {
                "expectation": item.expectation_config.type,
                "column": column,
                "success": bool(item.success),
                "unexpected_count": int(outcome.get("unexpected_count") or 0),
                "unexpected": unexpected,
            }
        )
    index = None
    if data_docs_dir is not None:
        folder = Path(data_docs_dir).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        context.add_data_docs_site(
            site_name="splitsafe",
            site_config={
                "class_name": "SiteBuilder",
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(folder),
                },
            },
        )
        context.build_data_docs(site_names=["splitsafe"])
        index = folder / "index.html"
    return results, index


def audit_expectations(
    features: pd.DataFrame,
    *,
    data_docs_dir: str | os.PathLike | None = None,
    unique_content: bool = False,
    max_examples: int = 12,
) -> Finding:
    """Fail when any expectation of the suite fails; name each with its first offenders.

    ``details`` holds every expectation's outcome and ``data_docs`` (the index path).
    """
    results, index = validate_features(
        features, data_docs_dir=data_docs_dir, unique_content=unique_content
    )
    failed = [r for r in results if not r["success"]]
    rows = [
        {
            "expectation": r["expectation"],
            "column": r["column"],
            "path": u["path"],
            "value": str(u["value"]),
        }
        for r in failed
        for u in r["unexpected"]
    ]
    examples = pd.DataFrame(rows, columns=["expectation", "column", "path", "value"])
    if failed:
        described = "; ".join(
            f"{r['expectation']}({r['column']}): {r['unexpected_count']} unexpected"
            + (
                ", e.g. "
                + ", ".join(
                    f"{u['path']} ({u['value']!r})" if u["path"] else repr(u["value"])
                    for u in r["unexpected"][:3]
                )
                if r["unexpected"]
                else ""
            )
            for r in failed
        )
        summary = f"{len(failed)} of {len(results)} expectations failed: {described}"
    else:
        summary = f"all {len(results)} expectations hold over {len(features)} images"
    if index is not None:
        summary += f"; Data Docs: {index}"
    return Finding(
        rule=RULE,
        title="The dataset meets its expectation suite (Great Expectations)",
        passed=not failed,
        summary=summary,
        count=int(sum(r["unexpected_count"] for r in failed)),
        examples=examples.head(max_examples * 4),
        details={
            "expectations": [{k: v for k, v in r.items() if k != "unexpected"} for r in results],
            "data_docs": str(index) if index is not None else "",
        },
    )
