"""Group leakage: items that belong together (a scene, a video, a source image) split apart.

Two sources of groups:

- given: the manifest's ``group`` column (from a CSV or the lineage record; augmented copies
  inherit their parent's group), checked by :func:`find_groups_across_splits`;
- inferred: without given groups, consecutive frames of one scene still look alike. Within each
  label, images whose descriptors are similar (``|cos| >= similarity``) are linked, and the
  connected components of that graph are the inferred scenes (:func:`infer_scenes`): a chain of
  frames 1-2-3-...-40 is one scene even when frames 1 and 40 differ. A scene with members in a
  held-out split and in the reference split is the leak of the original project
  (:func:`find_scenes_across_splits`): frames of one shot in train and in valid.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from data.findings import Finding

SPLIT_ORDER = ("train", "valid", "test")  # display order of splits in messages
_BLOCK_BYTES = 64 * 2**20  # one float32 block of the similarity product (as data/neardup.py)


def _ordered_splits(splits) -> list[str]:
    known = [s for s in SPLIT_ORDER if s in set(splits)]
    return known + sorted(set(splits) - set(SPLIT_ORDER))


def find_groups_across_splits(manifest: pd.DataFrame) -> pd.DataFrame:
    """Groups with members in more than one split.

    Parameters
    ----------
    manifest : pandas.DataFrame
        Columns ``path``, ``split``, ``group`` (str; "" = no group, no split). Rows with an
        empty group or split are ignored.

    Returns
    -------
    pandas.DataFrame
        One row per leaking group, largest first, columns: ``group`` (str), ``splits`` (str,
        e.g. "train, valid"), ``counts`` (str, e.g. "train: 12, valid: 3"), ``images`` (int),
        ``path_a`` (str, a member in the first split), ``path_b`` (str, a member in the second).
    """
    columns = ["group", "splits", "counts", "images", "path_a", "path_b"]
    known = manifest.loc[(manifest["group"] != "") & (manifest["split"] != "")]
    split_count = known.groupby("group", sort=False)["split"].nunique()
    leaking = split_count.index[split_count > 1]
    if len(leaking) == 0:
        return pd.DataFrame({c: pd.Series(dtype=int if c == "images" else str) for c in columns})
    members = known.loc[known["group"].isin(leaking)]
    rows = []
    for group, table in members.groupby("group", sort=False):
        splits = _ordered_splits(table["split"].unique())
        counts = table["split"].value_counts()
        first_paths = table.drop_duplicates("split").set_index("split")["path"]
        rows.append(
            {
                "group": group,
                "splits": ", ".join(splits),
                "counts": ", ".join(f"{s}: {counts[s]}" for s in splits),
                "images": len(table),
                "path_a": first_paths[splits[0]],
                "path_b": first_paths[splits[1]],
            }
        )
    result = pd.DataFrame(rows, columns=columns)
    return result.sort_values(["images", "group"], ascending=[False, True], ignore_index=True)


def infer_scenes(
    features: pd.DataFrame,
    *,
    similarity: float,
    known_pairs: pd.DataFrame | None = None,
    known_pairs_similarity: float = 1.0,
) -> pd.Series:
    """Scene id of each image: chains of near-similar images within one label.

    Parameters
    ----------
    features : pandas.DataFrame
        Columns ``path``, ``label`` (str) and ``descriptor`` (1-D numpy arrays of one length,
        unit L2 norm or all zeros, see data/hashing.py); rows whose ``error`` is not "" are
        singletons.
    similarity : float, keyword-only
        Link threshold on ``|cos|`` of descriptors, in (0, 1] (``AuditConfig.scene_similarity``).
    known_pairs : pandas.DataFrame, optional, keyword-only
        Pairs already found over the same images at ``known_pairs_similarity`` (columns
        ``path_a``, ``path_b``, ``similarity`` = plain descriptor ``|cos|``: the candidate
        pairs of the duplicate search, ``find_duplicate_pairs(return_candidates=True)``). When
        ``similarity >= known_pairs_similarity`` every link is among them, so they are filtered
        instead of searching again (the search is the whole cost at 50,000 images).
    known_pairs_similarity : float, keyword-only
        The threshold ``known_pairs`` was found with.

    Returns
    -------
    pandas.Series of int64, name ``scene``, the index of ``features``
        Scene ids 0..k-1 (connected components), never shared across labels; an image linked
        to nothing is its own scene. ``attrs["links"]`` is the number of linked pairs.

    Notes
    -----
    Search cost per label of n images: ``n**2 / 2 * d`` multiply-adds (data.neardup's blocked
    search). Linking is transitive, so a loose threshold chains distinct scenes of one label
    into one (measured on the demo dataset: 0.80 merges all 8 scenes of a movie, 0.90 keeps
    them apart but two); the caller reports the largest scene so that a person can judge.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if not 0.0 < similarity <= 1.0:
        raise ValueError(f"scene_similarity={similarity!r}; expected a value in (0, 1]")
    threshold = similarity - 1e-6  # descriptors are stored as float16: 0.8 means 0.8
    ok = features["error"].to_numpy() == "" if "error" in features else np.ones(len(features), bool)
    labels = features["label"].to_numpy()
    if known_pairs is not None and similarity >= known_pairs_similarity:
        first, second = _links_from_pairs(features, known_pairs, threshold=threshold)
        keep = ok[first] & ok[second] & (labels[first] == labels[second])
        first, second = first[keep], second[keep]
    else:
        first, second = _search_links(features, ok, threshold=threshold)
    count = len(features)
    graph = coo_matrix((np.ones(len(first), dtype=np.int8), (first, second)), (count, count))
    _, component = connected_components(graph, directed=False)
    result = pd.Series(component.astype(np.int64), index=features.index, name="scene")
    result.attrs["links"] = int(len(first))
    return result


def _search_links(features: pd.DataFrame, ok: np.ndarray, *, threshold: float):
    """Positions (first, second) of same-label pairs with ``|cos| >= threshold``."""
    # The descriptor stacking and blocked |cos| search of the near-duplicate finder.
    from data.neardup import descriptor_matrix, similar_pairs

    labels = features["label"].to_numpy()
    firsts, seconds = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for label in pd.unique(labels):
        positions = np.flatnonzero((labels == label) & ok)
        if len(positions) < 2:
            continue
        matrix = descriptor_matrix(features.iloc[positions], "features")
        first, second = similar_pairs(
            matrix, matrix, threshold=threshold, within=True, block_bytes=_BLOCK_BYTES
        )
        firsts.append(positions[first])
        seconds.append(positions[second])
    return np.concatenate(firsts), np.concatenate(seconds)


def _links_from_pairs(features: pd.DataFrame, pairs: pd.DataFrame, *, threshold: float):
    """Positions (first, second) of the ``pairs`` rows with ``similarity >= threshold``."""
    strong = pairs.loc[pairs["similarity"].to_numpy(dtype=float) >= threshold]
    position = pd.Series(np.arange(len(features)), index=features["path"].to_numpy())
    first = position.reindex(strong["path_a"].to_numpy()).to_numpy()
    second = position.reindex(strong["path_b"].to_numpy()).to_numpy()
    known = ~(np.isnan(first) | np.isnan(second))
    return first[known].astype(np.int64), second[known].astype(np.int64)


def find_scenes_across_splits(
    manifest: pd.DataFrame, scenes: pd.Series, *, held_out: str, reference: str
) -> pd.DataFrame:
    """Inferred scenes with members in both ``held_out`` and ``reference``.

    Parameters
    ----------
    manifest : pandas.DataFrame
        Columns ``path``, ``split``, ``label`` (str).
    scenes : pandas.Series of int
        Scene id per row of ``manifest`` (same index), from :func:`infer_scenes`.
    held_out, reference : str, keyword-only
        The two splits compared, e.g. "valid" and "train".

    Returns
    -------
    pandas.DataFrame
        One row per leaking scene, most held-out images first, columns: ``scene`` (int),
        ``label`` (str), ``images`` (int, scene size over all splits), ``held_out_images`` and
        ``reference_images`` (int), ``path_a`` (str, a held-out member), ``path_b`` (str, a
        reference member). ``attrs["held_out_images"]``: held-out images in leaking scenes.
    """
    columns = ["scene", "label", "images", "held_out_images", "reference_images"]
    table = pd.DataFrame(
        {
            "scene": scenes.reindex(manifest.index).to_numpy(),
            "split": manifest["split"].to_numpy(),
            "label": manifest["label"].to_numpy(),
            "path": manifest["path"].to_numpy(),
        }
    )
    sizes = table["scene"].value_counts()
    held = table.loc[table["split"] == held_out]
    ref = table.loc[table["split"] == reference]
    shared = np.intersect1d(held["scene"].unique(), ref["scene"].unique())
    held = held.loc[held["scene"].isin(shared)]
    ref = ref.loc[ref["scene"].isin(shared)]
    summary = pd.DataFrame(
        {
            "label": held.groupby("scene")["label"].first(),
            "images": sizes.reindex(shared).to_numpy() if len(shared) else [],
            "held_out_images": held.groupby("scene").size(),
            "reference_images": ref.groupby("scene").size(),
            "path_a": held.groupby("scene")["path"].first(),
            "path_b": ref.groupby("scene")["path"].first(),
        },
        index=pd.Index(shared, name="scene"),
    )
    summary = summary.reset_index()
    summary = summary.loc[:, [*columns, "path_a", "path_b"]].astype(
        {c: "int64" for c in columns if c != "label"}
    )
    summary = summary.sort_values(
        ["held_out_images", "scene"], ascending=[False, True], ignore_index=True
    )
    summary.attrs["held_out_images"] = int(summary["held_out_images"].sum())
    return summary


# --- audits: Finding builders (called by audits/test_groups.py) ------------------------------

SPLIT_FIX = "python -m data split DATASET --by group"
SCENE_SPLIT_FIX = "python -m data split DATASET --by scene"
MESSAGE_EXAMPLES = 3  # offenders named in a message; the report shows them all


def group_skip_reason(manifest: pd.DataFrame) -> str:
    """Why the group-leakage audit cannot run ("" when it can)."""
    if not (manifest["group"] != "").any():
        return (
            "no groups given (no group column in the CSV, no splitsafe-lineage.csv): "
            "the scene-leakage audit infers scenes instead"
        )
    splits = sorted(s for s in manifest["split"].unique() if s)
    if len(splits) < 2:
        return f"the dataset has {len(splits)} split(s) ({', '.join(splits) or 'not split yet'})"
    return ""


def scene_skip_reason(features: pd.DataFrame, split_pair) -> str:
    """Why the scene-leakage audit cannot run for ``split_pair`` ("" when it can)."""
    if "descriptor" not in features:
        return "the features have no descriptor column to infer scenes from"
    if len(features) and (features["group"] != "").all():
        return "every image has a given group: the group-leakage audit covers them"
    present = set(features["split"])
    missing = [s for s in split_pair if s not in present]
    if missing:
        return f"the dataset has no {' or '.join(repr(s) for s in missing)} split"
    return ""


def audit_group_leakage(manifest: pd.DataFrame) -> Finding:
    """Fail when a given group (scene, video, source image) has images in two splits."""
    leaks = find_groups_across_splits(manifest)
    images = int(leaks["images"].sum())
    if leaks.empty:
        summary = "every group lies within one split"
    else:
        shown = "; ".join(
            f"group {row.group!r} ({row.counts}: {row.path_a}, {row.path_b})"
            for row in leaks.head(MESSAGE_EXAMPLES).itertuples()
        )
        more = len(leaks) - MESSAGE_EXAMPLES
        summary = (
            f"{len(leaks)} groups have images in more than one split ({images} images), "
            f"e.g. {shown}{f'; and {more} more' if more > 0 else ''}; "
            f"fix: keep each group on one side ({SPLIT_FIX})"
        )
    return Finding(
        rule="group-leakage",
        title="No group (scene, video, source image) crosses splits",
        passed=leaks.empty,
        summary=summary,
        count=len(leaks),
        examples=leaks,
        details={
            "groups": int(manifest.loc[manifest["group"] != "", "group"].nunique()),
            "leaking_groups": len(leaks),
            "images_in_leaking_groups": images,
        },
    )


def scene_statistics(features: pd.DataFrame, scenes: pd.Series) -> dict:
    """Counts that tell whether scene inference chained too much (JSON-serialisable)."""
    sizes = scenes.value_counts()
    largest = sizes.index[0] if len(sizes) else None
    label = features.loc[scenes == largest, "label"].iloc[0] if largest is not None else ""
    label_images = int((features["label"] == label).sum()) if label else 0
    return {
        "scenes": int(len(sizes)),
        "scenes_with_several_images": int((sizes > 1).sum()),
        "links": int(scenes.attrs.get("links", 0)),
        "largest_scene_images": int(sizes.iloc[0]) if len(sizes) else 0,
        "largest_scene_label": str(label),
        "largest_scene_label_images": label_images,
    }


def audit_scene_leakage(
    features: pd.DataFrame,
    scenes: pd.Series,
    *,
    held_out: str,
    reference: str,
    similarity: float,
) -> Finding:
    """Fail when an inferred scene has images in both ``held_out`` and ``reference``."""
    leaks = find_scenes_across_splits(features, scenes, held_out=held_out, reference=reference)
    images = int(leaks.attrs["held_out_images"])
    statistics = scene_statistics(features, scenes)
    largest = (
        f"largest scene: {statistics['largest_scene_images']} of "
        f"{statistics['largest_scene_label_images']} {statistics['largest_scene_label']} images"
    )
    if leaks.empty:
        summary = (
            f"no inferred scene has images in both {held_out} and {reference} "
            f"({statistics['scenes']} scenes, {largest}; scene_similarity={similarity:.2f})"
        )
    else:
        shown = "; ".join(
            f"{row.label} scene of {row.images} images ({held_out} {row.path_a}, "
            f"{reference} {row.path_b})"
            for row in leaks.head(MESSAGE_EXAMPLES).itertuples()
        )
        more = len(leaks) - MESSAGE_EXAMPLES
        summary = (
            f"{images} {held_out} images belong to {len(leaks)} inferred scenes that also have "
            f"{reference} images (chains of images of one label with descriptor "
            f"|cos| >= {similarity:.2f}), e.g. {shown}{f'; and {more} more' if more > 0 else ''}"
            f"; {largest}; threshold scene_similarity={similarity:.2f}; "
            f"fix: keep each scene on one side ({SCENE_SPLIT_FIX})"
        )
    return Finding(
        rule="scene-leakage",
        title=f"No inferred scene has images in both {held_out} and {reference}",
        passed=leaks.empty,
        summary=summary,
        count=images,
        examples=leaks,
        details={**statistics, "leaking_scenes": len(leaks), "held_out_images": images},
    )
