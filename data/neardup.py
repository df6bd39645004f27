"""Find copies and near-copies of images between two sets (valid vs train) or within one.

Three kinds of match, exclusive per pair (the first that applies wins):

``exact``   same file bytes (``sha256``), found by a hash join;
``pixels``  same decoded pixels (``pixel_digest``: the same picture saved differently), a hash join;
``near``    descriptors (data/hashing.py: rank-transformed 16x16 gray grid, unit norm) that
            match in two stages:

            1. *candidates*: ``|cosine| >= candidate_similarity`` (default 0.75), all such pairs,
               found exactly by a blocked matrix product (below);
            2. *decision*: the plain ``|cosine|`` reaches ``similarity`` (default 0.94); or
               the pair's best ``|cosine|`` over small alignments
               (:func:`data.hashing.aligned_similarity`: shifts up to 6 %, crops of 6-12 %, in
               both directions) does and the pHash distance (plain or inverted) is at most
               ``aligned_phash_distance`` (default 26): a second, independent signal before
               the looser geometric match is believed; or the plain ``|cosine|`` reaches
               ``confirmed_similarity`` (0.82) with a pHash distance of at most
               ``confirming_phash_distance`` (10), for strong photometric edits.

            The absolute value matches inverted copies, whose descriptor is the negated vector.
            With ``flip=True`` each query is also compared in its mirrored form (the grid's
            columns reversed) by plain ``|cosine|`` (the stored pHash is not mirrored).

The plain cosine of a copy shifted by 6 % or cropped by 10 % falls to 0.6-0.9, where unrelated
look-alikes also lie; aligning the two grids brings true copies back above 0.94 while unrelated
pairs mostly stay below (calibration: benchmarks/results/neardup.md).

How it scales
-------------
Exact and pixel matches are pandas merges: linear in the number of rows.

Candidates are a blocked matrix product with an exact low-dimensional prefilter. Each
256-value descriptor ``v`` is split into its projection ``v_P`` on the 64 lowest 2-D DCT
frequencies of the 16x16 grid (an orthonormal basis) and the residual ``v_R``; by
Cauchy-Schwarz ``|a . b| <= |a_P . b_P| + |a_R| |b_R|``. The descriptors are smooth (blurred
before ranking), so residual norms are small (median ~0.19) and the 64-value product, 4x less
work, rejects almost every pair; the survivors are checked on all 256 values. No pair above
the threshold is lost. Reference columns are sorted by residual norm and cut into bins, each
with its own bound, and the query rows are cut into chunks so that one chunk's block
(rows x reference size, float32) stays near ``block_bytes``. If the bound stops pruning
(descriptors that are not smooth) the search falls back to the plain 256-value product.
10,000 x 50,000 takes ~1.4 s on two cores (benchmarks/results/neardup.md). Only candidates
below ``similarity`` whose pHash agrees go through the alignment, at ~0.1 ms of CPU each: on
look-alike-rich data (simpsons-mnist: 0.12 % of pairs are candidates, half of them aligned) the
alignment dominates and grows with the number of pairs; ``candidate_similarity`` and
``aligned_phash_distance`` trade recall for that work.

For millions of images the quadratic product is the limit (10^6 x 10^6 x 64 is 6e13 flops).
The way there, without changing the result's definition:

- an approximate nearest-neighbour index over the descriptors (FAISS ``IndexHNSWFlat`` or
  ``IndexIVFFlat`` with inner product, or hnswlib), queried with both ``q`` and ``-q`` (and the
  mirrored ``q`` with ``flip``) in range-search mode at ``candidate_similarity``, then the
  same exact check and alignment on the candidates;
- or, as a candidate generator, multi-index hashing on the 64-bit pHash (and its inverted
  pHash): split each hash into 4 or 8 substrings and index them in dictionaries, so that all
  pairs within Hamming distance r < (number of substrings) share at least one substring
  exactly (pigeonhole); candidates are then verified with the descriptor;
- the exact and pixel joins stay hash joins (or a database join) at any size.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from data.hashing import DESCRIPTOR_SIDE, aligned_similarity, hamming, mirror_descriptors

# Calibrated on planted copies among distractors (benchmarks/neardup_quality.py, results in
# benchmarks/results/neardup.md); AuditConfig.near_duplicate_similarity repeats it for audits.
DEFAULT_SIMILARITY = 0.94  # plain |cosine|, or best |cosine| over small alignments ...
DEFAULT_CANDIDATE_SIMILARITY = 0.75  # ... of pairs whose plain |cosine| reaches this
DEFAULT_ALIGNED_PHASH_DISTANCE = 26  # ... and whose pHash distance is at most this
DEFAULT_CONFIRMED_SIMILARITY = 0.82  # plain |cosine| enough when the pHash agrees ...
DEFAULT_CONFIRMING_PHASH_DISTANCE = 10  # ... within this many bits (plain or inverted)
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
DEFAULT_BLOCK_BYTES = 32 * 2**20  # one similarity block in float32: fits in cache-friendly sizes
PREFILTER_SIDE = 8  # low-frequency DCT coefficients per axis kept by the prefilter (64 values)
PREFILTER_BINS = 8  # reference bins by residual norm, each with its own bound
# When more than this share of a block passes the bound, the bound is not pruning (descriptors
# that are not smooth): the remaining blocks use the plain full product.
PREFILTER_MAX_SHARE = 0.01
_BOUND_MARGIN = 1e-4  # float32 rounding of the 64-value products, with room to spare


def describe_rule(
    similarity: float = DEFAULT_SIMILARITY,
    candidate_similarity: float = DEFAULT_CANDIDATE_SIMILARITY,
    aligned_phash_distance: int = DEFAULT_ALIGNED_PHASH_DISTANCE,
    confirmed_similarity: float = DEFAULT_CONFIRMED_SIMILARITY,
    confirming_phash_distance: int = DEFAULT_CONFIRMING_PHASH_DISTANCE,
) -> str:
    """The near-duplicate rule of :func:`find_duplicates` in words, for messages and reports."""
    return (
        f"descriptor |cosine| >= {similarity:.2f}; or >= {candidate_similarity:.2f} and "
        f">= {similarity:.2f} at the best of small shifts (up to 6 %) and crops (6-12 %) with "
        f"pHash distance <= {aligned_phash_distance}; or >= {confirmed_similarity:.2f} with "
        f"pHash distance <= {confirming_phash_distance}"
    )


def _dct_basis(size: int, keep: int) -> np.ndarray:
    """(keep, size) orthonormal DCT-II rows (the lowest ``keep`` frequencies)."""
    positions = np.arange(size)
    frequencies = np.arange(keep)[:, None]
    basis = np.cos(np.pi * frequencies * (2 * positions + 1) / (2 * size))
    basis[0] *= np.sqrt(1.0 / size)
    basis[1:] *= np.sqrt(2.0 / size)
    return basis


# (64, 256): 2-D low frequencies of a row-major 16x16 grid, orthonormal rows.
_PREFILTER_BASIS = np.kron(
    _dct_basis(DESCRIPTOR_SIDE, PREFILTER_SIDE), _dct_basis(DESCRIPTOR_SIDE, PREFILTER_SIDE)
)


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


def descriptor_matrix(frame: pd.DataFrame, name: str) -> np.ndarray:
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


def _project(vectors: np.ndarray):
    """(low-frequency part float32 (n, 64), residual norm float64 (n,)) of 256-value rows.

    In float64, ``|v_R|^2 = |v|^2 - |v_P|^2`` (orthonormal basis) loses nothing that matters:
    its rounding (~1e-15) is far below the bound's margin.
    """
    exact = vectors.astype(np.float64)
    low = exact @ _PREFILTER_BASIS.T
    squares = np.einsum("ij,ij->i", exact, exact) - np.einsum("ij,ij->i", low, low)
    return np.ascontiguousarray(low, dtype=np.float32), np.sqrt(np.maximum(squares, 0.0))


def _rowwise_similarity(query_vectors, reference_vectors, query_positions, reference_positions):
    """Signed cosine of the given pairs, float32 (zero when a descriptor is flat)."""
    if len(query_positions) == 0:
        return np.zeros(0, dtype=np.float32)
    return np.einsum(
        "ij,ij->i", query_vectors[query_positions], reference_vectors[reference_positions]
    )


def _nonzero_2d(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.nonzero`` of a 2-D boolean array, same order (row-major), int64.

    Through the flat indices: on sparse masks about 10x faster than 2-D ``np.nonzero``.
    """
    rows, columns = np.divmod(np.flatnonzero(mask), max(mask.shape[1], 1))
    return rows, columns


def similar_pairs(
    query_vectors: np.ndarray,
    reference_vectors: np.ndarray,
    *,
    threshold: float,
    within: bool,
    block_bytes: int,
    with_similarity: bool = False,
    with_signed: bool = False,
):
    """Positions (query, reference) with ``|query . reference| >= threshold``, exactly.

    Parameters
    ----------
    query_vectors, reference_vectors : numpy.ndarray, float32, shape (n, d) and (m, d)
        Descriptors. With ``within`` both index the same images (the reference may be a
        transform of the query, e.g. mirrored, as long as ``q_i . r_j == q_j . r_i``).
    threshold : float
        On the absolute dot product.
    within : bool
        Search one set: each unordered pair once (query position < reference position).
    block_bytes : int
        Memory of one float32 block of the product.
    with_similarity : bool, keyword-only
        Also return each pair's ``|query . reference|`` (float32), the value the threshold was
        applied to.
    with_signed : bool, keyword-only
        Also return each pair's signed ``query . reference`` (float32), computed exactly as
        :func:`_rowwise_similarity` computes it (rowwise ``einsum``), so that callers can reuse
        it bit for bit. Needs ``with_similarity``.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray), int64 positions, unordered; with ``with_similarity`` a
    third array, float32, the absolute dot product of each pair; with ``with_signed`` a fourth,
    float32, the signed dot product
    """
    if with_signed and not with_similarity:
        raise ValueError("similar_pairs: with_signed=True needs with_similarity=True")
    n_query, n_reference = len(query_vectors), len(reference_vectors)
    empty = np.zeros(0, dtype=np.int64)
    if n_query == 0 or n_reference == 0:
        if with_signed:
            return empty, empty, np.zeros(0, np.float32), np.zeros(0, np.float32)
        return (empty, empty, np.zeros(0, np.float32)) if with_similarity else (empty, empty)
    prefilter = query_vectors.shape[1] == _PREFILTER_BASIS.shape[1]
    if prefilter:
        query_low, query_residual = _project(query_vectors)
        same = reference_vectors is query_vectors
        reference_low, reference_residual = (
            (query_low, query_residual) if same else _project(reference_vectors)
        )
        # Sort the reference by residual norm: contiguous bins of similar bounds.
        order = np.argsort(reference_residual, kind="stable")
    else:
        order = np.arange(n_reference)
    if within:  # the same permutation on both sides keeps "column > row" meaning each pair once
        query_vectors = query_vectors[order]
    reference_transposed = None  # the plain product's operand, made only if it is needed
    if prefilter:
        if within:
            query_low, query_residual = query_low[order], query_residual[order]
        reference_low_transposed = np.ascontiguousarray(reference_low[order].T)
        residual_sorted = reference_residual[order]
        edges = np.unique(np.linspace(0, n_reference, PREFILTER_BINS + 1).astype(np.int64))
    rows_per_block = max(1, block_bytes // (4 * n_reference))
    query_parts, reference_parts = [empty], [empty]
    value_parts = [np.zeros(0, np.float32)]
    signed_parts = [np.zeros(0, np.float32)]
    for start in range(0, n_query, rows_per_block):
        stop = min(start + rows_per_block, n_query)
        first_column = start if within else 0  # within: only columns >= start can pair later
        if first_column >= n_reference:
            break
        if prefilter:
            block = query_low[start:stop] @ reference_low_transposed[:, first_column:]
            np.abs(block, out=block)
            rows_found, columns_found = [empty], [empty]
            for low_edge, high_edge in zip(edges[:-1], edges[1:], strict=True):
                low_edge, high_edge = max(low_edge, first_column), max(high_edge, first_column)
                if high_edge <= low_edge:
                    continue
                bound = residual_sorted[high_edge - 1]  # largest residual of the bin
                limit = threshold - query_residual[start:stop] * bound - _BOUND_MARGIN
                part = block[:, low_edge - first_column : high_edge - first_column]
                # One read-only pass finds the rows with any survivor (usually very few).
                hopeful = np.flatnonzero(part.max(axis=1) >= limit)
                if not len(hopeful):
                    continue
                rows, columns = _nonzero_2d(
                    part[hopeful] >= limit[hopeful].astype(np.float32)[:, None]
                )
                rows_found.append(hopeful[rows] + start)
                columns_found.append(columns + low_edge)
            rows = np.concatenate(rows_found).astype(np.int64)
            columns = np.concatenate(columns_found).astype(np.int64)
            if len(rows) > PREFILTER_MAX_SHARE * block.size:
                prefilter = False  # the bound is not pruning: plain product from now on
            # Exact check of the survivors on all values.
            exact = np.einsum("ij,ij->i", query_vectors[rows], reference_vectors[order[columns]])
            values = np.abs(exact)
            keep = values >= threshold
            rows, columns, values = rows[keep], columns[keep], values[keep]
            signed = exact[keep]
        else:
            if reference_transposed is None:
                reference_transposed = np.ascontiguousarray(reference_vectors[order].T)
            block = query_vectors[start:stop] @ reference_transposed[:, first_column:]
            np.abs(block, out=block)
            matches = block >= threshold
            # Most rows match nothing: take nonzero only over the rows that do (much less work).
            matching_rows = np.flatnonzero(matches.any(axis=1))
            rows, columns = _nonzero_2d(matches[matching_rows])
            rows = matching_rows[rows].astype(np.int64)
            values = block[rows, columns] if with_similarity else None
            rows += start
            columns = columns.astype(np.int64) + first_column
            signed = None
        if within:  # each unordered pair once, no self pairs
            keep = columns > rows
            rows, columns = rows[keep], columns[keep]
            values = values[keep] if with_similarity else None
            signed = signed[keep] if signed is not None else None
        if with_signed:
            if signed is None:  # the plain product's values: recompute as _rowwise_similarity
                signed = np.einsum(
                    "ij,ij->i", query_vectors[rows], reference_vectors[order[columns]]
                )
            signed_parts.append(signed.astype(np.float32, copy=False))
        query_parts.append(rows)
        reference_parts.append(columns)
        if with_similarity:
            value_parts.append(values.astype(np.float32, copy=False))
    rows, columns = np.concatenate(query_parts), np.concatenate(reference_parts)
    columns = order[columns]
    if within:
        rows = order[rows]
        rows, columns = np.minimum(rows, columns), np.maximum(rows, columns)
    if with_signed:
        return rows, columns, np.concatenate(value_parts), np.concatenate(signed_parts)
    if with_similarity:
        return rows, columns, np.concatenate(value_parts)
    return rows, columns


def find_duplicates(
    query: pd.DataFrame,
    reference: pd.DataFrame | None = None,
    *,
    similarity: float = DEFAULT_SIMILARITY,
    flip: bool = False,
    candidate_similarity: float = DEFAULT_CANDIDATE_SIMILARITY,
    aligned_phash_distance: int | None = DEFAULT_ALIGNED_PHASH_DISTANCE,
    confirmed_similarity: float | None = DEFAULT_CONFIRMED_SIMILARITY,
    confirming_phash_distance: int = DEFAULT_CONFIRMING_PHASH_DISTANCE,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    return_candidates: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
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
        A candidate pair is near when its plain ``|cosine|`` reaches this, or its best
        ``|cosine|`` over small alignments (shifts up to 6 %, crops of 6-12 %) does and its
        pHash agrees (``aligned_phash_distance``). Default 0.94.
    flip : bool
        Also match horizontally mirrored copies (default False: a mirror is often a
        legitimate augmentation, not a leak).
    candidate_similarity : float in (0, 1]
        Plain descriptor ``|cosine|`` a pair needs before it is aligned (default 0.75). Lower
        finds copies shifted or cropped further, at more alignment work (about 0.1 ms of CPU
        per candidate). Values above ``similarity`` act as ``similarity``.
    aligned_phash_distance : int (0-64) or None
        A candidate whose plain ``|cosine|`` is below ``similarity`` is aligned only when its
        pHash distance (plain or inverted) is at most this (default 26; unrelated images are
        at 32 +- 4): a second, independent signal that halves the false matches and the
        alignment work. ``None`` aligns every candidate. Mirrored matches (``flip``) are
        decided by the plain mirrored ``|cosine|`` alone (the stored pHash is not mirrored).
    confirmed_similarity : float in (0, 1] or None
        A candidate is also near when its plain ``|cosine|`` reaches this and its pHash
        distance (plain or inverted) is at most ``confirming_phash_distance`` (defaults 0.82
        and 10 bits): strong photometric edits (a saturating sigmoid, heavy noise) lower the
        cosine but keep the pHash. ``None`` turns this rule off; not applied to mirrored
        matches. All defaults calibrated on planted transformed copies among distractors
        (benchmarks/results/neardup.md).
    block_bytes : int
        Memory for one block of the similarity matrix (float32); bounds peak memory.
    return_candidates : bool
        Also return the candidates the search found anyway: every pair of usable rows whose
        plain descriptor ``|cosine|`` reaches the candidate threshold (the smallest of
        ``candidate_similarity``, ``similarity`` and ``confirmed_similarity``). A later pass
        over the same images at a threshold at least that high (the scene inference of
        data/groups.py) filters them instead of searching again.

    Returns
    -------
    pandas.DataFrame
        One row per matched pair, RangeIndex, sorted by query then reference position:
        ``query_index``, ``reference_index`` (index labels of the inputs), ``kind``
        (``"exact"`` same file bytes, ``"pixels"`` same decoded pixels, ``"near"``; the first
        that applies), ``similarity`` (float in [0, 1]: for ``near`` the best descriptor
        ``|cosine|`` over the alignments, of the mirrored image when ``flipped``; for the other
        kinds the plain ``|cosine|``), ``phash_distance`` (int, 0-64, min of the pHash distance
        to the reference's pHash and to its inverted pHash), ``inverted`` (bool, the match is
        with the inverted image: negative cosine), ``flipped`` (bool, the match is with the
        mirrored image; only with ``flip=True``). The inputs are not modified.
    candidates : pandas.DataFrame, only with ``return_candidates=True``
        One row per candidate pair, mirrored matches not included, in no particular order:
        ``query_index``, ``reference_index`` (index labels; within one set each unordered
        pair once, the earlier row first) and ``similarity`` (float64, the plain descriptor
        ``|cosine|`` the threshold was applied to). ``attrs["threshold"]``: that threshold.

    Raises
    ------
    ValueError
        A missing feature column, a duplicated index, descriptors of different sizes, or a
        threshold outside (0, 1].
    """
    within = reference is None
    _validate(query, "query")
    if not within:
        _validate(reference, "reference")
    for name, value in (("similarity", similarity), ("candidate_similarity", candidate_similarity)):
        if not 0.0 < float(value) <= 1.0:
            raise ValueError(f"{name}={value!r}; expected a |cosine| in (0, 1], e.g. 0.9")
    if block_bytes <= 0:
        raise ValueError(f"block_bytes={block_bytes!r}; expected a positive number of bytes")
    if confirmed_similarity is not None and not 0.0 < float(confirmed_similarity) <= 1.0:
        raise ValueError(
            f"confirmed_similarity={confirmed_similarity!r}; expected a |cosine| in (0, 1] or None"
        )
    if aligned_phash_distance is not None and not 0 <= int(aligned_phash_distance) <= 64:
        raise ValueError(
            f"aligned_phash_distance={aligned_phash_distance!r}; expected bits in 0-64 or None"
        )
    similarity = float(similarity)
    candidate_threshold = min(float(candidate_similarity), similarity)
    if confirmed_similarity is not None:
        candidate_threshold = min(candidate_threshold, float(confirmed_similarity))

    query_rows = _usable(query)
    reference_rows = query_rows if within else _usable(reference)
    query_vectors = descriptor_matrix(query_rows, "query")
    reference_vectors = query_vectors if within else descriptor_matrix(reference_rows, "reference")
    if query_vectors.size and reference_vectors.size:
        if query_vectors.shape[1] != reference_vectors.shape[1]:
            raise ValueError(
                f"descriptor sizes differ: query {query_vectors.shape[1]}, reference "
                f"{reference_vectors.shape[1]}; compute both with the same feature version"
            )

    exact = _join_pairs(query_rows, reference_rows, "sha256", within=within)
    pixels = _join_pairs(query_rows, reference_rows, "pixel_digest", within=within)
    near_rows, near_columns, near_similarity, near_signed = similar_pairs(
        query_vectors,
        reference_vectors,
        threshold=candidate_threshold,
        within=within,
        block_bytes=block_bytes,
        with_similarity=True,
        with_signed=True,
    )
    near = (near_rows, near_columns)
    if return_candidates:
        candidates = pd.DataFrame(
            {
                "query_index": query_rows.index.to_numpy()[near[0]],
                "reference_index": reference_rows.index.to_numpy()[near[1]],
                "similarity": near_similarity.astype(np.float64),
            }
        )
        candidates.attrs["threshold"] = candidate_threshold
    mirrored_vectors = None
    if flip and query_vectors.size:
        mirrored_vectors = mirror_descriptors(query_vectors)
        # The mirror is a symmetric permutation P: (P q_i) . q_j == q_i . (P q_j), so within one
        # set the mirrored similarity matrix is symmetric too and its upper triangle suffices.
        mirrored = similar_pairs(
            mirrored_vectors,
            reference_vectors,
            threshold=candidate_threshold,
            within=within,
            block_bytes=block_bytes,
        )
        near = (np.concatenate([near[0], mirrored[0]]), np.concatenate([near[1], mirrored[1]]))
        # A pair found only by the mirrored search has no plain cosine yet: NaN, computed later.
        near_signed = np.concatenate([near_signed, np.full(len(mirrored[0]), np.nan, np.float32)])

    kind_codes = np.concatenate(
        [
            np.full(len(positions[0]), code, dtype=np.int8)
            for code, positions in enumerate((exact, pixels, near))
        ]
    )
    query_positions = np.concatenate([exact[0], pixels[0], near[0]])
    reference_positions = np.concatenate([exact[1], pixels[1], near[1]])
    # The signed plain cosine the search computed, NaN where it is still to be computed.
    known_signed = np.concatenate(
        [np.full(len(exact[0]) + len(pixels[0]), np.nan, np.float32), near_signed]
    )

    # Exclusive kinds: keep each pair's lowest code (exact < pixels < near).
    order = np.lexsort((kind_codes, reference_positions, query_positions))
    query_positions, reference_positions = query_positions[order], reference_positions[order]
    kind_codes, known_signed = kind_codes[order], known_signed[order]
    is_first = np.ones(len(order), dtype=bool)
    is_first[1:] = (query_positions[1:] != query_positions[:-1]) | (
        reference_positions[1:] != reference_positions[:-1]
    )
    query_positions, reference_positions = query_positions[is_first], reference_positions[is_first]
    kind_codes, known_signed = kind_codes[is_first], known_signed[is_first]

    pairs, plain = _describe_pairs(
        query_rows,
        reference_rows,
        query_vectors,
        reference_vectors,
        mirrored_vectors,
        query_positions,
        reference_positions,
        kind_codes,
        known_signed,
        similarity=similarity,
        candidate_similarity=min(float(candidate_similarity), similarity),
        aligned_phash_distance=64 if aligned_phash_distance is None else aligned_phash_distance,
    )
    is_near = pairs["kind"].to_numpy() == "near"
    keep = ~is_near | (pairs["similarity"].to_numpy() >= similarity)
    if confirmed_similarity is not None:
        keep |= (
            is_near
            & ~pairs["flipped"].to_numpy()
            & (plain >= float(confirmed_similarity))
            & (pairs["phash_distance"].to_numpy() <= confirming_phash_distance)
        )
    pairs = pairs[keep].reset_index(drop=True)
    return (pairs, candidates) if return_candidates else pairs


def _describe_pairs(
    query_rows,
    reference_rows,
    query_vectors,
    reference_vectors,
    mirrored_vectors,
    query_positions,
    reference_positions,
    kind_codes,
    known_signed,
    *,
    similarity,
    candidate_similarity,
    aligned_phash_distance,
):
    """(result frame, plain |cosine| per pair): near pairs not yet thresholded.

    ``similarity`` of a near pair: its plain ``|cosine|``, raised to the best aligned
    ``|cosine|`` when that plain value is below ``similarity`` and the pHash distance is at
    most ``aligned_phash_distance`` (the alignment is computed only for those pairs).
    ``known_signed`` (float32 per pair) holds the signed plain cosine the search already
    computed, bit for bit as :func:`_rowwise_similarity` would, NaN where it is still needed.
    """
    is_near = kind_codes == KINDS.index("near")
    query_hash = query_rows["phash"].to_numpy(dtype=np.int64)[query_positions]
    reference_hash = reference_rows["phash"].to_numpy(dtype=np.int64)[reference_positions]
    reference_inverted = reference_rows["phash_inverted"].to_numpy(dtype=np.int64)[
        reference_positions
    ]
    phash_distance = np.minimum(
        hamming(query_hash, reference_hash), hamming(query_hash, reference_inverted)
    ).astype(np.int64)
    signed = np.asarray(known_signed, dtype=np.float32).copy()
    missing = np.flatnonzero(np.isnan(signed))
    signed[missing] = _rowwise_similarity(
        query_vectors, reference_vectors, query_positions[missing], reference_positions[missing]
    )
    best = np.abs(signed)
    plain = best.copy()
    unsure = np.flatnonzero(
        is_near
        & (best < similarity)
        & (plain >= candidate_similarity)
        & (phash_distance <= aligned_phash_distance)
    )
    if len(unsure):
        best[unsure] = aligned_similarity(
            query_vectors,
            reference_vectors,
            first_rows=query_positions[unsure],
            second_rows=reference_positions[unsure],
        )
    flipped = np.zeros(len(best), dtype=bool)
    if mirrored_vectors is not None and len(best):
        signed_mirror = _rowwise_similarity(
            mirrored_vectors, reference_vectors, query_positions, reference_positions
        )
        flipped = (np.abs(signed_mirror) > best) & is_near
        signed = np.where(flipped, signed_mirror, signed)
        best = np.where(flipped, np.abs(signed_mirror), best)
        plain = np.maximum(plain, np.abs(signed_mirror))
    return pd.DataFrame(
        {
            "query_index": query_rows.index.to_numpy()[query_positions],
            "reference_index": reference_rows.index.to_numpy()[reference_positions],
            "kind": np.asarray(KINDS, dtype=object)[kind_codes],
            "similarity": np.minimum(best, 1.0).astype(np.float64),
            "phash_distance": phash_distance,
            "inverted": (signed < 0) & is_near,
            "flipped": flipped,
        },
        columns=list(PAIR_COLUMNS),
    ), plain
