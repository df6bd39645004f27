"""Find copies and near-copies of images between two sets (valid vs train) or within one.

Three kinds of match, exclusive per pair (the first that applies wins):

``exact``   same file bytes (``sha256``), found by a hash join;
``pixels``  same decoded pixels (``pixel_digest``: the same picture saved differently), a hash join;
``near``    descriptors (data/hashing.py: rank-transformed 16x16 gray grid, unit norm) with
            ``|cosine| >= similarity``; the absolute value matches inverted copies, whose
            descriptor is the negated vector. With ``flip=True`` each query is also compared
            in its mirrored form (the grid's columns reversed).

How it scales
-------------
Exact and pixel matches are pandas merges: linear in the number of rows. Near matches are a
blocked matrix product: the query descriptors are cut into chunks of rows so that one chunk's
similarity block (rows x reference size, float32) stays near ``block_bytes`` (64 MB by default),
each block is one BLAS ``sgemm`` followed by a threshold, and only the matching (row, column)
positions are kept. The work is ``n_query * n_reference * 256`` multiply-adds, memory is
bounded; 10,000 x 50,000 takes about a second on two cores (benchmarks/neardup_speed.py).

For millions of images the quadratic product is the limit (10^6 x 10^6 is 2.6e14 flops).
The way there, without changing the result's definition:

- an approximate nearest-neighbour index over the descriptors (FAISS ``IndexHNSWFlat`` or
  ``IndexIVFFlat`` with inner product, or hnswlib), queried with both ``q`` and ``-q`` (and the
  mirrored ``q`` with ``flip``), then the exact ``|cosine|`` re-checked on the candidates;
  a range search at ``similarity`` is what the matrix product does here exactly;
- or, as a candidate generator, multi-index hashing on the 64-bit pHash (and its inverted
  pHash): split each hash into 4 or 8 substrings and index them in dictionaries, so that all
  pairs within Hamming distance r < (number of substrings) share at least one substring
  exactly (pigeonhole); candidates are then verified with the descriptor;
- the exact and pixel joins stay hash joins (or a database join) at any size.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from data.hashing import hamming, mirror_descriptors

# Calibrated on planted copies among distractors (benchmarks/neardup_quality.py, results in
# benchmarks/results/neardup.md); AuditConfig.near_duplicate_similarity repeats it for audits.
DEFAULT_SIMILARITY = 0.96  # |cosine| alone
DEFAULT_CONFIRMED_SIMILARITY = 0.82  # |cosine| enough when the pHash agrees ...
DEFAULT_CONFIRMING_PHASH_DISTANCE = 18  # ... within this many bits (plain or inverted)
REQUIRED_COLUMNS = ("sha256", "pixel_digest", "phash", "phash_inverted", "descriptor")
PAIR_COLUMNS = (
    "query_index",
    "reference_index",
    "kind",
    "similarity",
    "phash_distance",
    "inverted",
    "flipped",
)
KINDS = ("exact", "pixels", "near")
DEFAULT_BLOCK_BYTES = 64 * 2**20  # one similarity block in float32: fits in memory, big BLAS calls


def _validate(frame: pd.DataFrame, name: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(
            f"{name} must be a pandas DataFrame of features, got {type(frame).__name__}"
        )
    missing = [column for column in REQUIRED_COLUMNS if column not in frame.columns]
    if missing:
        raise ValueError(
            f"{name} lacks the feature column(s) {missing}; "
            "pass the output of data.features(manifest, root)"
        )
    if not frame.index.is_unique:
        duplicated = frame.index[frame.index.duplicated()][:3].tolist()
        raise ValueError(
            f"{name} has a duplicated index (e.g. {duplicated}); "
            "pairs are reported by index label, so reset_index() first"
        )


def _usable(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows without an error, with only the columns the search needs."""
    if "error" in frame.columns:
        frame = frame[frame["error"].fillna("").astype(str) == ""]
    return frame[list(REQUIRED_COLUMNS)]


def _descriptor_matrix(frame: pd.DataFrame, name: str) -> np.ndarray:
    """Stack the ``descriptor`` column into a C-contiguous float32 (rows, dimension) matrix."""
    if len(frame) == 0:
        return np.zeros((0, 0), dtype=np.float32)
    vectors = [np.asarray(vector).reshape(-1) for vector in frame["descriptor"].to_numpy()]
    sizes = {vector.size for vector in vectors}
    if len(sizes) != 1:
        raise ValueError(
            f"{name} column 'descriptor' has vectors of sizes {sorted(sizes)}; expected one size "
            "(recompute the features with one FEATURE_VERSION)"
        )
    return np.ascontiguousarray(np.stack(vectors), dtype=np.float32)


def _join_pairs(query: pd.DataFrame, reference: pd.DataFrame, column: str, *, within: bool):
    """Positions (query, reference) of rows whose ``column`` values are equal and non-empty."""
    left = pd.DataFrame({"key": query[column].to_numpy(), "query_position": np.arange(len(query))})
    right = pd.DataFrame(
        {"key": reference[column].to_numpy(), "reference_position": np.arange(len(reference))}
    )
    left = left[left["key"].notna() & (left["key"].astype(str) != "")]
    right = right[right["key"].notna() & (right["key"].astype(str) != "")]
    merged = left.merge(right, on="key", how="inner")
    if within:
        merged = merged[merged["query_position"] < merged["reference_position"]]
    return (
        merged["query_position"].to_numpy(dtype=np.int64),
        merged["reference_position"].to_numpy(dtype=np.int64),
    )


def _similar_pairs(
    query_vectors: np.ndarray,
    reference_vectors: np.ndarray,
    *,
    threshold: float,
    within: bool,
    block_bytes: int,
):
    """Positions (query, reference) with ``|query . reference| >= threshold``, blockwise."""
    n_query, n_reference = len(query_vectors), len(reference_vectors)
    if n_query == 0 or n_reference == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    rows_per_block = max(1, block_bytes // (4 * n_reference))
    reference_transposed = np.ascontiguousarray(reference_vectors.T)
    query_parts, reference_parts = [], []
    for start in range(0, n_query, rows_per_block):
        stop = min(start + rows_per_block, n_query)
        # Within one set only columns >= start can pair with a later row: skip the rest.
        first_column = start if within else 0
        block = query_vectors[start:stop] @ reference_transposed[:, first_column:]
        np.abs(block, out=block)
        matches = block >= threshold
        # Most rows match nothing: take nonzero only over the rows that do (much less work).
        matching_rows = np.flatnonzero(matches.any(axis=1))
        rows, columns = np.nonzero(matches[matching_rows])
        rows = matching_rows[rows].astype(np.int64) + start
        columns = columns.astype(np.int64) + first_column
        if within:  # each unordered pair once, no self pairs
            keep = columns > rows
            rows, columns = rows[keep], columns[keep]
        query_parts.append(rows)
        reference_parts.append(columns)
    return np.concatenate(query_parts), np.concatenate(reference_parts)


def _rowwise_similarity(query_vectors, reference_vectors, query_positions, reference_positions):
    """Signed cosine of the given pairs, float32 (zero when a descriptor is flat)."""
    if len(query_positions) == 0:
        return np.zeros(0, dtype=np.float32)
    return np.einsum(
        "ij,ij->i", query_vectors[query_positions], reference_vectors[reference_positions]
    )


def find_duplicates(
    query: pd.DataFrame,
    reference: pd.DataFrame | None = None,
    *,
    similarity: float = DEFAULT_SIMILARITY,
    flip: bool = False,
    confirmed_similarity: float | None = DEFAULT_CONFIRMED_SIMILARITY,
    confirming_phash_distance: int = DEFAULT_CONFIRMING_PHASH_DISTANCE,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> pd.DataFrame:
    """Find exact copies, pixel-identical copies and near-duplicates between or within sets.

    Parameters
    ----------
    query : pandas.DataFrame
        Feature rows (``data.features``) with columns ``sha256``, ``pixel_digest`` (str),
        ``phash``, ``phash_inverted`` (int64) and ``descriptor`` (1-D arrays of one size).
        Rows whose ``error`` is non-empty are ignored. The index must be unique.
    reference : pandas.DataFrame, optional
        The set searched (e.g. train when ``query`` is valid). ``None``: search within
        ``query``, reporting each unordered pair once (``query_index`` is the earlier row)
        and no row paired with itself.
    similarity : float in (0, 1]
        A pair is near when the ``|cosine|`` of its descriptors reaches this. Default 0.96.
    flip : bool
        Also match horizontally mirrored copies (default False: a mirror is often a
        legitimate augmentation, not a leak).
    confirmed_similarity : float in (0, 1] or None
        A pair is also near when its ``|cosine|`` reaches this lower value and its pHash
        distance (plain or inverted) is at most ``confirming_phash_distance``: crops and
        shifts lower the cosine, while unrelated look-alikes have distant pHashes. ``None``
        turns this rule off. Defaults 0.82 and 18 bits. Mirrored matches use ``similarity``
        alone (the stored pHash is not mirrored). All defaults calibrated on planted
        transformed copies among distractors (benchmarks/results/neardup.md).
    block_bytes : int
        Memory for one block of the similarity matrix (float32); bounds peak memory.

    Returns
    -------
    pandas.DataFrame
        One row per matched pair, RangeIndex, sorted by query then reference position:
        ``query_index``, ``reference_index`` (index labels of the inputs), ``kind``
        (``"exact"`` same file bytes, ``"pixels"`` same decoded pixels, ``"near"``; the first
        that applies), ``similarity`` (float, descriptor ``|cosine|`` in [0, 1], the mirrored
        one when ``flipped``), ``phash_distance`` (int, 0-64, min of the pHash distance to
        the reference's pHash and to its inverted pHash), ``inverted`` (bool, the match is
        with the inverted image: negative cosine), ``flipped`` (bool, the match is with the
        mirrored image; only with ``flip=True``). The inputs are not modified.

    Raises
    ------
    ValueError
        A missing feature column, a duplicated index, descriptors of different sizes, or a
        ``similarity`` outside (0, 1].
    """
    within = reference is None
    _validate(query, "query")
    if not within:
        _validate(reference, "reference")
    if not 0.0 < float(similarity) <= 1.0:
        raise ValueError(f"similarity={similarity!r}; expected a |cosine| in (0, 1], e.g. 0.90")
    if confirmed_similarity is not None and not 0.0 < float(confirmed_similarity) <= 1.0:
        raise ValueError(
            f"confirmed_similarity={confirmed_similarity!r}; expected a |cosine| in (0, 1] or None"
        )
    if block_bytes <= 0:
        raise ValueError(f"block_bytes={block_bytes!r}; expected a positive number of bytes")

    query_rows = _usable(query)
    reference_rows = query_rows if within else _usable(reference)
    query_vectors = _descriptor_matrix(query_rows, "query")
    reference_vectors = query_vectors if within else _descriptor_matrix(reference_rows, "reference")
    if query_vectors.size and reference_vectors.size:
        if query_vectors.shape[1] != reference_vectors.shape[1]:
            raise ValueError(
                f"descriptor sizes differ: query {query_vectors.shape[1]}, reference "
                f"{reference_vectors.shape[1]}; compute both with the same feature version"
            )

    exact = _join_pairs(query_rows, reference_rows, "sha256", within=within)
    pixels = _join_pairs(query_rows, reference_rows, "pixel_digest", within=within)
    threshold = float(similarity)
    if confirmed_similarity is not None:
        threshold = min(threshold, float(confirmed_similarity))
    near = _similar_pairs(
        query_vectors,
        reference_vectors,
        threshold=threshold,
        within=within,
        block_bytes=block_bytes,
    )
    mirrored_vectors = None
    if flip and query_vectors.size:
        mirrored_vectors = mirror_descriptors(query_vectors)
        # The mirror is a symmetric permutation P: (P q_i) . q_j == q_i . (P q_j), so within one
        # set the mirrored similarity matrix is symmetric too and its upper triangle suffices.
        mirrored = _similar_pairs(
            mirrored_vectors,
            reference_vectors,
            threshold=float(similarity),  # no mirrored pHash to confirm a looser match
            within=within,
            block_bytes=block_bytes,
        )
        near = (np.concatenate([near[0], mirrored[0]]), np.concatenate([near[1], mirrored[1]]))

    kinds, query_positions, reference_positions = [], [], []
    for kind, (positions_q, positions_r) in zip(KINDS, (exact, pixels, near), strict=True):
        kinds.append(np.full(len(positions_q), KINDS.index(kind), dtype=np.int8))
        query_positions.append(positions_q)
        reference_positions.append(positions_r)
    kind_codes = np.concatenate(kinds)
    query_positions = np.concatenate(query_positions)
    reference_positions = np.concatenate(reference_positions)

    # Exclusive kinds: keep each pair's lowest code (exact < pixels < near).
    order = np.lexsort((kind_codes, reference_positions, query_positions))
    query_positions, reference_positions = query_positions[order], reference_positions[order]
    kind_codes = kind_codes[order]
    is_first = np.ones(len(order), dtype=bool)
    is_first[1:] = (query_positions[1:] != query_positions[:-1]) | (
        reference_positions[1:] != reference_positions[:-1]
    )
    query_positions, reference_positions = query_positions[is_first], reference_positions[is_first]
    kind_codes = kind_codes[is_first]

    pairs = _describe_pairs(
        query_rows,
        reference_rows,
        query_vectors,
        reference_vectors,
        mirrored_vectors,
        query_positions,
        reference_positions,
        kind_codes,
    )
    is_near = pairs["kind"].to_numpy() == "near"
    keep = ~is_near | (pairs["similarity"].to_numpy() >= float(similarity))
    if confirmed_similarity is not None:
        keep |= (
            is_near
            & ~pairs["flipped"].to_numpy()
            & (pairs["similarity"].to_numpy() >= float(confirmed_similarity))
            & (pairs["phash_distance"].to_numpy() <= confirming_phash_distance)
        )
    return pairs[keep].reset_index(drop=True)


def _describe_pairs(
    query_rows,
    reference_rows,
    query_vectors,
    reference_vectors,
    mirrored_vectors,
    query_positions,
    reference_positions,
    kind_codes,
) -> pd.DataFrame:
    """The result frame: distances and flags for each kept pair."""
    signed = _rowwise_similarity(
        query_vectors, reference_vectors, query_positions, reference_positions
    )
    best = np.abs(signed)
    flipped = np.zeros(len(best), dtype=bool)
    if mirrored_vectors is not None and len(best):
        signed_mirror = _rowwise_similarity(
            mirrored_vectors, reference_vectors, query_positions, reference_positions
        )
        flipped = (np.abs(signed_mirror) > best) & (kind_codes == KINDS.index("near"))
        signed = np.where(flipped, signed_mirror, signed)
        best = np.abs(signed)
    is_near = kind_codes == KINDS.index("near")
    query_hash = query_rows["phash"].to_numpy(dtype=np.int64)[query_positions]
    reference_hash = reference_rows["phash"].to_numpy(dtype=np.int64)[reference_positions]
    reference_inverted = reference_rows["phash_inverted"].to_numpy(dtype=np.int64)[
        reference_positions
    ]
    phash_distance = np.minimum(
        hamming(query_hash, reference_hash), hamming(query_hash, reference_inverted)
    )
    return pd.DataFrame(
        {
            "query_index": query_rows.index.to_numpy()[query_positions],
            "reference_index": reference_rows.index.to_numpy()[reference_positions],
            "kind": np.asarray(KINDS, dtype=object)[kind_codes],
            "similarity": np.minimum(best, 1.0).astype(np.float64),
            "phash_distance": phash_distance.astype(np.int64),
            "inverted": (signed < 0) & is_near,
            "flipped": flipped,
        },
        columns=list(PAIR_COLUMNS),
    )
