"""A label-stratified train/valid split in which no group crosses splits.

A group is what must stay on one side: a video scene, a source image with its augmented
copies (``scan`` gives copies their parent's group), or, with ``by="scene"``, a chain of
near-duplicate images inferred from the image descriptors (:func:`data.groups.infer_scenes`).
Images without a group are their own group.

The assignment is a greedy equivalent of scikit-learn's ``StratifiedGroupKFold`` for one
held-out share: groups are shuffled (seeded), taken largest first, and each goes to valid
when that brings every label's valid share closer to ``valid_pct``; then any label with
at least two groups that ended up on one side only gets its smallest group moved across,
so each such label is in both splits.

Augmented copies never go to valid: the audit rule ``augmentation-lineage`` allows copies
in train only (the original project upsampled its training images). A group that lands in
valid keeps its originals there and its copies are dropped from the split (listed in
``attrs["dropped_augmented"]``; the files stay where they are). Stratification counts
originals only, so the valid share is a share of original images.

Writes nothing but new files: a CSV (default ``<dataset folder>-split.csv`` beside the
dataset folder, never inside it) or, with ``--materialize OUT``, a
``OUT/train|valid/<label>/`` tree of hard links (or copies) with its own lineage record.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from data.lineage import append_lineage
from data.settings import AuditConfig, copy_dataset_config

SPLIT_CSV_COLUMNS = ("path", "label", "split", "group", "parent", "origin")
# Leading folder names stripped when materialising (AuditConfig().split_aliases' keys).
SPLIT_FOLDER_NAMES = frozenset(
    {"train", "training", "valid", "val", "validation", "test", "testing"}
)


def group_keys(manifest: pd.DataFrame, scenes: pd.Series | None = None) -> pd.Series:
    """One key per row: rows sharing a given group or an inferred scene share a key.

    Parameters
    ----------
    manifest : pandas.DataFrame
        Columns ``path``, ``group`` (str, "" = none).
    scenes : pandas.Series, optional
        Inferred scene id per row (same index), e.g. from :func:`data.groups.infer_scenes`.

    Returns
    -------
    pandas.Series of int64, the manifest's index
        Connected components of "same given group" and "same scene".
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    count = len(manifest)
    given = manifest["group"].where(manifest["group"] != "", manifest["path"]).to_numpy()
    codes = [pd.factorize(given)[0]]
    if scenes is not None:
        codes.append(pd.factorize(scenes.reindex(manifest.index).to_numpy())[0])
    first, second = [], []
    for code in codes:
        order = np.argsort(code, kind="stable")
        same = code[order][1:] == code[order][:-1]
        first.append(order[:-1][same])
        second.append(order[1:][same])
    first, second = np.concatenate(first), np.concatenate(second)
    graph = coo_matrix((np.ones(len(first), np.int8), (first, second)), (count, count))
    return pd.Series(connected_components(graph, directed=False)[1], index=manifest.index)


def assign_split(
    manifest: pd.DataFrame,
    *,
    valid_pct: float = 0.2,
    by: str = "group",
    seed: int = 0,
    scenes: pd.Series | None = None,
    augmented: str = "drop",
) -> pd.DataFrame:
    """Return a copy of the manifest with ``split`` set to train/valid, no group crossing.

    Parameters
    ----------
    manifest : pandas.DataFrame
        Columns ``path``, ``label``, ``group``, ``parent``, ``split`` (str). Rows already in
        ``test`` stay there, and so does every group that has a member in test.
    valid_pct : float
        Target share of each label's original images in valid, in (0, 1).
    by : {"group", "scene"}
        ``scene`` also joins rows of one inferred scene (``scenes`` is then required).
    seed : int
        Shuffles groups of equal size.
    scenes : pandas.Series, optional
        Scene id per row (the manifest's index), from :func:`data.groups.infer_scenes`.
    augmented : {"drop", "keep"}
        What happens to augmented copies (non-empty ``parent``) of a group placed in valid:
        dropped from the returned frame (default; the audit allows copies in train only) or
        kept in valid with their group.

    Returns
    -------
    pandas.DataFrame
        The manifest's columns and index (less dropped copies), ``split`` in
        {"train", "valid", "test"}; ``attrs`` as the input plus ``dropped_augmented``
        (list of paths) and ``split_by``.
    """
    if not 0 < valid_pct < 1:
        raise ValueError(f"valid_pct={valid_pct!r}; expected a share in (0, 1), e.g. 0.2")
    if by not in ("group", "scene"):
        raise ValueError(f"by={by!r}; expected 'group' or 'scene'")
    if by == "scene" and scenes is None:
        raise ValueError("by='scene' needs scenes (data.groups.infer_scenes on the features)")
    if augmented not in ("drop", "keep"):
        raise ValueError(f"augmented={augmented!r}; expected 'drop' or 'keep'")
    missing = sorted({"path", "label", "group", "parent", "split"} - set(manifest.columns))
    if missing:
        raise ValueError(f"manifest lacks column(s) {missing}; expected a data.scan manifest")
    result = manifest.copy()
    keys = group_keys(result, scenes if by == "scene" else None)
    in_test = set(keys[result["split"] == "test"])
    is_test = keys.isin(in_test)
    is_copy = result["parent"] != ""
    weight = (~is_copy).astype(int) if augmented == "drop" else pd.Series(1, index=result.index)
    strata = result["label"] + "\x1f" + result.get("origin", pd.Series("", index=result.index))
    counted = ~is_test
    table = pd.crosstab(keys[counted], strata[counted], values=weight[counted], aggfunc="sum")
    table = table.fillna(0)
    label_of = [column.split("\x1f")[0] for column in table.columns]
    by_label = table.T.groupby(label_of).sum().T
    in_valid = _assign_groups(table, by_label, valid_pct=valid_pct, seed=seed)
    result["split"] = np.where(is_test, "test", np.where(keys.isin(in_valid), "valid", "train"))
    dropped = result.index[(result["split"] == "valid") & is_copy] if augmented == "drop" else []
    result.attrs = {
        **manifest.attrs,
        "split_by": by,
        "dropped_augmented": result.loc[dropped, "path"].tolist(),
    }
    return result.drop(index=dropped)


def _assign_groups(
    table: pd.DataFrame, by_label: pd.DataFrame, *, valid_pct: float, seed: int
) -> set:
    """Greedy stratified assignment of groups to valid.

    ``table`` counts images per group (rows) and label x origin (columns); ``by_label`` the
    same per label. Each stratum of a label with >= 2 groups ends up on both sides, when a
    move does not take another stratum's last member from a side.
    """
    if table.empty:
        return set()
    counts = table.to_numpy(dtype=float)
    totals = np.maximum(counts.sum(axis=0), 1.0)
    target = valid_pct * counts.sum(axis=0)
    order = np.random.default_rng(seed).permutation(len(counts))
    order = order[np.argsort(-counts[order].sum(axis=1), kind="stable")]
    valid = np.zeros(len(counts), dtype=bool)
    current = np.zeros(counts.shape[1])
    for row in order:
        before = ((current - target) / totals) ** 2
        after = ((current + counts[row] - target) / totals) ** 2
        if (after - before).sum() < 0:
            valid[row] = True
            current += counts[row]
    _repair_presence(counts, valid, order)
    _repair_presence(by_label.to_numpy(dtype=float), valid, order)
    return set(table.index[valid])


def _repair_presence(counts: np.ndarray, valid: np.ndarray, order: np.ndarray) -> None:
    """Move a label's smallest group across when the label (with >= 2 groups) is on one side."""
    present = counts > 0
    size = counts.sum(axis=1)
    for _ in range(2):
        for label in range(counts.shape[1]):
            holders = np.flatnonzero(present[:, label])
            if len(holders) < 2:
                continue
            for side in (True, False):  # valid lacks the label, then train lacks it
                if (valid[holders] == side).any():
                    continue
                candidates = [g for g in holders if _can_move(present, valid, g)]
                if candidates:
                    group = min(
                        candidates, key=lambda g: (size[g], int(np.flatnonzero(order == g)[0]))
                    )
                    valid[group] = side


def _can_move(present: np.ndarray, valid: np.ndarray, group: int) -> bool:
    """Moving ``group`` must not take away the last member of another label on its side."""
    same_side = valid == valid[group]
    same_side[group] = False
    return bool(present[same_side][:, present[group]].any(axis=0).all())


def split_ratios(split_manifest: pd.DataFrame) -> pd.DataFrame:
    """Images per label and split, and the valid share: columns train, valid, valid_share."""
    counts = pd.crosstab(split_manifest["label"], split_manifest["split"])
    for split in ("train", "valid"):
        if split not in counts:
            counts[split] = 0
    counts["valid_share"] = counts["valid"] / counts[["train", "valid"]].sum(axis=1).clip(lower=1)
    return counts


def default_csv_path(dataset: Path) -> Path:
    """``<parent>/<name>-split.csv`` beside a dataset folder; ``<stem>-split.csv`` beside a CSV."""
    dataset = Path(dataset).resolve()
    if dataset.suffix.lower() == ".csv":
        return dataset.with_name(f"{dataset.stem}-split.csv")
    return dataset.parent / f"{dataset.name}-split.csv"


def _relocate(table: pd.DataFrame, mapping: dict[str, str]) -> pd.DataFrame:
    """Rewrite ``path``, ``parent`` and path-valued ``group`` through ``mapping``."""
    table = table.copy()
    for column in ("path", "parent", "group"):
        table[column] = [mapping.get(value, value) for value in table[column]]
    return table


def write_split_csv(split_manifest: pd.DataFrame, root: Path, csv_path: Path) -> Path:
    """Write ``path,label,split,group,parent,origin`` with paths relative to the CSV's folder."""
    csv_path = Path(csv_path).resolve()
    folder = csv_path.parent
    mapping = {
        path: Path(os.path.relpath(Path(root) / path, folder)).as_posix()
        for path in split_manifest["path"]
    }
    table = _relocate(split_manifest, mapping).loc[:, list(SPLIT_CSV_COLUMNS)]
    folder.mkdir(parents=True, exist_ok=True)
    table.to_csv(csv_path, index=False)
    return csv_path


def materialized_path(path: str, split: str, label: str) -> str:
    """``<split>/<label>/<rest>``: ``rest`` is the path after its split and label folders."""
    parts = list(PurePosixPath(path).parts)
    if len(parts) > 2 and parts[0].lower() in SPLIT_FOLDER_NAMES and parts[1] == label:
        parts = parts[2:]
    elif len(parts) > 1 and parts[0] == label:
        parts = parts[1:]
    return PurePosixPath(split, label, *parts).as_posix()


def materialize(split_manifest: pd.DataFrame, root: Path, out: Path, *, copy: bool = False) -> int:
    """Link (hard link, else copy) or copy each image into ``out/<split>/<label>/``.

    Returns the number of files written. A target that exists with the same bytes is kept;
    one with other bytes is an error. Hard links share the original's bytes: edit a copy
    made with ``copy=True`` instead.
    """
    root, out = Path(root), Path(out)
    mapping = {
        path: materialized_path(path, split, label)
        for path, split, label in split_manifest[["path", "split", "label"]].itertuples(index=False)
    }
    if len(set(mapping.values())) < len(mapping):
        mapping = {
            path: PurePosixPath(row_split, label, path).as_posix()
            for path, row_split, label in split_manifest[["path", "split", "label"]].itertuples(
                index=False
            )
        }
    written = 0
    for old, new in mapping.items():
        source, target = root / old, out / new
        if target.exists():
            if target.read_bytes() != source.read_bytes():
                raise ValueError(f"{target} exists with other content; choose an empty OUT")
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if copy:
            shutil.copy2(source, target)
        else:
            try:
                os.link(source, target)
            except OSError:
                shutil.copy2(source, target)
        written += 1
    lineage = _relocate(split_manifest, mapping)
    lineage = lineage.assign(
        operation="split", source=[str((root / p).resolve()) for p in split_manifest["path"]]
    )
    append_lineage(
        out, lineage.loc[:, ["path", "parent", "group", "origin", "operation", "source"]]
    )
    copy_dataset_config(root, out)
    return written


def run(args) -> int:
    from data.scan import dataset_root, scan

    dataset = Path(args.dataset)
    manifest = scan(dataset)
    root = dataset_root(dataset)
    scenes = None
    if args.by == "scene":
        import data
        from data.groups import infer_scenes

        features = data.features(manifest, root)
        scenes = infer_scenes(features, similarity=args.scene_similarity)
    keep = "keep" if args.keep_augmented_in_valid else "drop"
    result = assign_split(
        manifest,
        valid_pct=args.valid_pct,
        by=args.by,
        seed=args.seed,
        scenes=scenes,
        augmented=keep,
    )
    ratios = split_ratios(result)
    print(ratios.to_string(float_format=lambda v: f"{v:.2f}"))
    dropped = result.attrs["dropped_augmented"]
    if dropped:
        print(
            f"{len(dropped)} augmented copies of groups placed in valid left out of the split "
            "(copies belong in train only; the files are untouched)"
        )
    csv_path = Path(args.out) if args.out else default_csv_path(dataset)
    if csv_path.resolve().is_relative_to(Path(root).resolve()) and dataset.is_dir():
        raise ValueError(f"--out {csv_path} is inside the dataset {root}; write it elsewhere")
    written = write_split_csv(result, root, csv_path)
    print(f"split written to {written} (read it with: python -m data scan {written})")
    if args.materialize:
        count = materialize(result, root, Path(args.materialize), copy=args.copy)
        how = "copied" if args.copy else "linked"
        print(f"{count} files {how} into {args.materialize}/train|valid/<label>/")
    return 0


def register_command(subparsers) -> None:
    parser = subparsers.add_parser(
        "split",
        help="label-stratified train/valid split that keeps each group on one side",
        description="Assign train/valid so that no group (scene, source image with its "
        "copies, inferred near-duplicate chain) crosses splits, stratified by label. Writes "
        "a CSV (path,label,split,group,parent,origin) beside the dataset folder; "
        "--materialize OUT also builds OUT/train|valid/<label>/. Augmented copies of groups "
        "placed in valid are left out (copies belong in train). Prints the ratio per class.",
    )
    parser.add_argument("dataset", help="dataset folder or CSV")
    parser.add_argument(
        "--valid-pct",
        type=float,
        default=0.2,
        help="share of each class's original images in valid (default 0.2)",
    )
    parser.add_argument(
        "--by",
        choices=("group", "scene"),
        default="group",
        help="group: the manifest's groups; scene: also chains of "
        "near-duplicates inferred from image descriptors (default group)",
    )
    parser.add_argument(
        "--scene-similarity",
        type=float,
        default=AuditConfig().scene_similarity,
        help="|cos| link threshold for --by scene (default %(default)s: scene_similarity)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--out",
        default=None,
        help="CSV to write (default: <dataset>-split.csv beside the dataset folder)",
    )
    parser.add_argument(
        "--materialize",
        metavar="OUT",
        default=None,
        help="also hard-link (or copy) the images into OUT/train|valid/<label>/",
    )
    parser.add_argument(
        "--copy", action="store_true", help="with --materialize: copy files instead of hard-linking"
    )
    parser.add_argument(
        "--keep-augmented-in-valid",
        action="store_true",
        help="keep augmented copies with their group in valid (default: leave out)",
    )
    parser.set_defaults(run=run)
