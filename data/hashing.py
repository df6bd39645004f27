"""Perceptual hashes and the similarity descriptor of one decoded image.

Everything here is a pure function of pixels: the feature extractor (data/image_features.py)
calls :func:`image_hashes` once per decoded image and caches the result; the near-duplicate
search (data/neardup.py) compares the stored values.

Hashes
------
``phash``           imagehash.phash's algorithm: gray, 32x32 Lanczos (after a box
                    pre-reduction), 2-D DCT-II, the top-left 8x8 low frequencies compared
                    with their median; bit 0 of the 8x8 grid (row-major) is the most
                    significant bit, as in ``str(imagehash.phash(im))``.
``dhash``           imagehash.dhash: gray, 9x8 Lanczos, "pixel brighter than its left neighbour".
``phash_inverted``  the pHash of the inverted gray image (255 - gray), so that an ``invert``
                    augmentation of an image has a ``phash`` close to the original's
                    ``phash_inverted``.
All three are 64-bit patterns stored as signed ``int64`` (two's complement) so they fit SQLite
and pandas integer columns; :func:`hamming` counts differing bits.

Descriptor
----------
``descriptor`` is a float16 vector of ``DESCRIPTOR_SIDE ** 2`` (256) values: the gray image
area-averaged to a 32x32 grid, blurred with a Gaussian (sigma 1.5 cells, edges repeated) and
averaged in 2x2 blocks to a 16x16 grid (row-major), each cell replaced by its rank among the
cells (ties get their average rank), centred and scaled to unit L2 norm.
Why each step:

- area averaging and the blur wash out JPEG noise, Poisson noise and resampling differences,
  and make a shift or crop of a few percent move each cell's content a fraction of a blur
  width (the blur doubled the recall on 3-6 % shifts and crops at equal precision);
- the rank transform makes the vector invariant to any increasing intensity map applied to
  the whole image: brightness, contrast, gamma, ``adjust_log``, ``adjust_sigmoid``,
  ``rescale_intensity`` (up to the ties its clipping creates), and nearly so to grayscale;
- centring makes an inverted image (a decreasing map) give exactly the negated vector, so the
  search compares ``|cosine|``;
- the grid is a picture, so a horizontally mirrored image's descriptor is the same grid with
  its columns reversed (:func:`mirror_descriptors`), computed at query time.
A constant image has no order: its descriptor is all zeros and matches nothing by similarity
(identical copies are still found by file or pixel digest).

Alignment
---------
The blur tolerates misalignments of ~3 %; beyond, a copy's cosine falls among unrelated
look-alikes (0.6-0.9 for 6 % shifts and 10 % crops). :func:`aligned_similarity` compares two
stored grids under small geometric edits instead: one grid is resampled (bilinear, edges
repeated) on the windows of :data:`ALIGNMENT_WINDOWS` (shifts up to 6 %, crops of 6 % and 12 %
at several positions) and correlated with the other, both ways, keeping the best. It needs no
extra stored data; the search applies it only to candidate pairs (data/neardup.py).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

HASH_SIZE = 8  # bits per side of pHash/dHash: 64-bit hashes, as imagehash's default
PHASH_IMAGE_SIDE = 32  # imagehash.phash: hash_size * highfreq_factor(4)
DESCRIPTOR_SIDE = 16  # descriptor grid side; 256 cells (calibrated: benchmarks/neardup_quality.py)
DESCRIPTOR_DTYPE = np.float16

_LANCZOS = Image.Resampling.LANCZOS
# PIL first box-reduces by an integer factor while the image stays this many times larger than
# the target, then applies Lanczos: 5x faster than imagehash's plain Lanczos. Measured on
# scikit-image samples at 100-400 px: pHash identical to imagehash.phash, dHash within 0-2 bits.
_PHASH_REDUCING_GAP = 2.0
_DHASH_REDUCING_GAP = 3.0
_BOX = Image.Resampling.BOX


def _dct_matrix(size: int, keep: int) -> np.ndarray:
    """Rows 0..keep-1 of the unnormalised DCT-II matrix (scipy.fftpack.dct's, type 2, norm=None)."""
    positions = np.arange(size)
    frequencies = np.arange(keep)[:, None]
    return 2.0 * np.cos(np.pi * frequencies * (2 * positions + 1) / (2 * size))


_DCT = _dct_matrix(PHASH_IMAGE_SIDE, HASH_SIZE)  # (8, 32) float64


def bits_to_int64(bits: np.ndarray) -> int:
    """Pack 64 booleans (first = most significant bit) into a signed int64 Python int."""
    flat = np.asarray(bits, dtype=bool).reshape(-1)
    if flat.size != 64:
        raise ValueError(f"expected 64 hash bits, got {flat.size}")
    return int.from_bytes(np.packbits(flat).tobytes(), "big", signed=True)


def int64_to_hex(value: int) -> str:
    """The 16-digit hex string imagehash prints for the same 64 bits."""
    return f"{value & 0xFFFFFFFFFFFFFFFF:016x}"


def _phash_bits(gray32: np.ndarray) -> np.ndarray:
    low = _DCT @ gray32 @ _DCT.T  # (8, 8): dct(dct(x, axis=0), axis=1)[:8, :8]
    ordered = np.sort(low, axis=None)  # the median of 64 values, without np.median's overhead
    return low > (ordered[31] + ordered[32]) / 2.0


def phash_pair(gray: Image.Image) -> tuple[int, int]:
    """(pHash, pHash of the inverted image) of a mode ``L`` image, as int64 Python ints."""
    small = gray.resize(
        (PHASH_IMAGE_SIDE, PHASH_IMAGE_SIDE), _LANCZOS, reducing_gap=_PHASH_REDUCING_GAP
    )
    pixels = np.asarray(small, dtype=np.float64)
    return bits_to_int64(_phash_bits(pixels)), bits_to_int64(_phash_bits(255.0 - pixels))


def dhash(gray: Image.Image) -> int:
    """imagehash.dhash of a mode ``L`` image, as an int64 Python int."""
    small = gray.resize((HASH_SIZE + 1, HASH_SIZE), _LANCZOS, reducing_gap=_DHASH_REDUCING_GAP)
    pixels = np.asarray(small, dtype=np.int16)
    return bits_to_int64(pixels[:, 1:] > pixels[:, :-1])


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n along the last axis, ties averaged (as scipy.stats.rankdata's 'average').

    Parameters
    ----------
    values : numpy.ndarray, shape (..., n)

    Returns
    -------
    numpy.ndarray, float64, same shape
    """
    values = np.asarray(values)
    if values.ndim == 1:  # the per-image path: run lengths instead of accumulations (~3x faster)
        order = np.argsort(values, kind="stable")
        ordered = values[order]
        starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
        lengths = np.diff(np.append(starts, len(values)))
        ranks = np.empty(len(values), dtype=np.float64)
        ranks[order] = np.repeat(starts + (lengths - 1) / 2.0 + 1.0, lengths)
        return ranks
    order = np.argsort(values, axis=-1, kind="stable")
    ordered = np.take_along_axis(values, order, axis=-1)
    n = values.shape[-1]
    # Start of each run of equal values, per row.
    is_start = np.ones(ordered.shape, dtype=bool)
    is_start[..., 1:] = ordered[..., 1:] != ordered[..., :-1]
    positions = np.broadcast_to(np.arange(n), ordered.shape)
    run_start = np.maximum.accumulate(np.where(is_start, positions, 0), axis=-1)
    is_end = np.ones(ordered.shape, dtype=bool)
    is_end[..., :-1] = is_start[..., 1:]
    run_end = np.minimum.accumulate(np.where(is_end, positions, n - 1)[..., ::-1], axis=-1)[
        ..., ::-1
    ]
    mean_rank = (run_start + run_end) / 2.0 + 1.0
    ranks = np.empty(values.shape, dtype=np.float64)
    np.put_along_axis(ranks, order, mean_rank, axis=-1)
    return ranks


def _smoothing_matrix(size: int, sigma: float, pool: int) -> np.ndarray:
    """(size // pool, size) matrix: Gaussian blur (edges repeated) then mean over ``pool`` cells.

    Equals scipy.ndimage.gaussian_filter1d(mode="nearest", truncate=4) followed by block means,
    applied as one matrix so that the 2-D version is ``M @ grid @ M.T``.
    """
    radius = int(4.0 * sigma + 0.5)
    offsets = np.arange(-radius, radius + 1)
    weights = np.exp(-0.5 * (offsets / sigma) ** 2)
    weights /= weights.sum()
    blur = np.zeros((size, size))
    for row in range(size):
        np.add.at(blur[row], np.clip(row + offsets, 0, size - 1), weights)
    pooling = np.kron(np.eye(size // pool), np.full((1, pool), 1.0 / pool))
    return pooling @ blur


DESCRIPTOR_BASE_SIDE = 32  # area-averaged gray grid the descriptor starts from
DESCRIPTOR_BLUR_SIGMA = 1.5  # in base-grid cells; calibrated (benchmarks/results/neardup.md)
_SMOOTHING = _smoothing_matrix(
    DESCRIPTOR_BASE_SIDE, DESCRIPTOR_BLUR_SIGMA, DESCRIPTOR_BASE_SIDE // DESCRIPTOR_SIDE
)


def descriptor_from_gray(gray: Image.Image) -> np.ndarray:
    """The rank descriptor of a mode ``L`` image (see the module docstring).

    Returns
    -------
    numpy.ndarray, shape (DESCRIPTOR_SIDE ** 2,), float16, unit L2 norm (zeros for a flat image)
    """
    side = DESCRIPTOR_BASE_SIDE
    base = np.asarray(gray.convert("F").resize((side, side), _BOX), dtype=np.float64)
    grid = _SMOOTHING @ base @ _SMOOTHING.T  # (DESCRIPTOR_SIDE, DESCRIPTOR_SIDE)
    ranks = average_ranks(grid.reshape(-1))
    centred = ranks - ranks.mean()
    norm = np.sqrt(centred @ centred)
    if norm < 1e-9:
        return np.zeros(DESCRIPTOR_SIDE**2, dtype=DESCRIPTOR_DTYPE)
    return (centred / norm).astype(DESCRIPTOR_DTYPE)


def image_hashes(image: Image.Image) -> dict:
    """Perceptual hashes and the similarity descriptor of one decoded image.

    Parameters
    ----------
    image : PIL.Image.Image
        Decoded image, any size >= 1x1 (typically RGB, possibly JPEG-draft reduced). Other
        modes are converted to gray by PIL's ``convert("L")`` (ITU-R 601-2 luma).

    Returns
    -------
    dict
        ``phash``, ``dhash``, ``phash_inverted``: int, 64-bit patterns in signed int64 range;
        ``descriptor``: numpy.ndarray, shape (256,), float16 (see the module docstring).
    """
    gray = image if image.mode == "L" else image.convert("L")
    phash, phash_inverted = phash_pair(gray)
    return {
        "phash": phash,
        "dhash": dhash(gray),
        "phash_inverted": phash_inverted,
        "descriptor": descriptor_from_gray(gray),
    }


def mirror_descriptors(descriptors: np.ndarray, *, side: int = DESCRIPTOR_SIDE) -> np.ndarray:
    """Descriptors of the horizontally mirrored images: each grid's columns reversed.

    Parameters
    ----------
    descriptors : numpy.ndarray, shape (n, side * side) or (side * side,)

    Returns
    -------
    numpy.ndarray, same shape and dtype (a new array)
    """
    descriptors = np.asarray(descriptors)
    grids = descriptors.reshape(*descriptors.shape[:-1], side, side)
    return np.ascontiguousarray(grids[..., ::-1]).reshape(descriptors.shape)


def hamming(first, second) -> np.ndarray:
    """Number of differing bits between 64-bit hashes, elementwise with numpy broadcasting.

    Parameters
    ----------
    first, second : array_like of int64 (or Python ints in int64 range)
        Hash values; shapes must broadcast, e.g. (n, 1) and (1, m) for all pairs.

    Returns
    -------
    numpy.ndarray of uint8, values 0..64, the broadcast shape
    """
    # np.bitwise_count counts bits of the absolute value of signed ints: view as unsigned first.
    a = np.asarray(first, dtype=np.int64).view(np.uint64)
    b = np.asarray(second, dtype=np.int64).view(np.uint64)
    return np.bitwise_count(np.bitwise_xor(a, b))


# ---------------------------------------------------------------- alignment of two descriptors

# Small geometric edits a copy may have undergone, as windows of the other image's grid, per
# axis: (window side, offsets of its start), in units of the image side. Side 1 with offsets
# +-3 % and +-6 % are shifts (the grid is sampled past its edge by repeating the edge cells, as
# an edge-replicating shift does); sides 0.94 and 0.88 are crops of 6 % and 12 % at several
# positions. Both axes take every offset of their window side: 25 + 9 + 16 = 50 windows.
ALIGNMENT_WINDOWS = (
    (1.0, (-0.06, -0.03, 0.0, 0.03, 0.06)),
    (0.94, (0.0, 0.03, 0.06)),
    (0.88, (0.0, 0.04, 0.08, 0.12)),
)


def window_sampling_matrix(side: float, offset: float, *, size: int = DESCRIPTOR_SIDE):
    """(size, size) bilinear resampling of one grid axis onto the window [offset, offset + side].

    Row ``i`` samples the grid at ``offset + side * (i + 0.5) / size`` (units of the image side),
    clamped to the grid (edge cells repeated). ``window_sampling_matrix(1.0, 0.0)`` is the
    identity.
    """
    positions = offset + side * (np.arange(size) + 0.5) / size
    cells = np.clip(positions * size - 0.5, 0.0, size - 1.0)
    low = np.floor(cells).astype(np.int64)
    high = np.minimum(low + 1, size - 1)
    weight = cells - low
    matrix = np.zeros((size, size))
    np.add.at(matrix, (np.arange(size), low), 1.0 - weight)
    np.add.at(matrix, (np.arange(size), high), weight)
    return matrix


def _alignment_operators(groups) -> dict:
    """Stacked operators of all windows (N = sum of the groups' sizes), float32.

    ``left`` (2N*s, s): the maps M_y then S_y = M_y^T M_y, applied as ``left @ grid``;
    ``right`` (s, 2N*s): M_x then S_x side by side, applied as ``grid @ right``;
    ``column_sums`` (N, s): 1^T M per window; ``same_side`` (N, N) bool: windows (y, x) of
    one group (one window side), the only combinations compared.
    """
    maps = np.concatenate([np.asarray(group, dtype=np.float64) for group in groups])
    grams = np.matmul(maps.transpose(0, 2, 1), maps)
    both = np.concatenate([maps, grams])  # (2N, s, s)
    count, side, _ = both.shape
    same_side = np.zeros((len(maps), len(maps)), dtype=bool)
    start = 0
    for group in groups:
        same_side[start : start + len(group), start : start + len(group)] = True
        start += len(group)
    return {
        "left": both.reshape(count * side, side).astype(np.float32),
        "right": np.ascontiguousarray(both.transpose(1, 0, 2).reshape(side, count * side)).astype(
            np.float32
        ),
        "column_sums": maps.sum(axis=1).astype(np.float32),
        "same_side": same_side,
    }


def _alignment_workspace(count: int, operators: dict) -> dict:
    """Reusable float32 buffers for :func:`_aligned_both_ways` on up to ``count`` pairs.

    Reusing them across chunks matters: fresh megabyte-sized temporaries are returned to the
    system and faulted in again on every chunk, which cost more than the arithmetic.
    """
    side = DESCRIPTOR_SIDE
    stacked = 2 * len(operators["column_sums"])  # 2N: the maps, then their Gram matrices
    return {
        "grids": np.empty((2 * count, side, side), dtype=np.float32),
        "moved": np.empty((2 * count, stacked * side, side), dtype=np.float32),
        "products": np.empty((2 * count * side, stacked * side), dtype=np.float32),
        "partners": np.empty((2 * count, stacked, side, side), dtype=np.float32),
    }


def _aligned_both_ways(
    first: np.ndarray, second: np.ndarray, operators: dict, workspace: dict
) -> np.ndarray:
    """Best |Pearson correlation| over all windows, both directions, of (k, s, s) grids.

    ``first`` and ``second`` are centred with unit norm, float32. For the direction "fixed F,
    moving G" and windows (y, x) of one group, with S = M^T M (the resampled grid is never
    formed): <F, M_y G M_x^T> = <M_y G, F M_x>; ||M_y G M_x^T||^2 = <S_y G, G S_x>;
    sum(M_y G M_x^T) = c_y^T G c_x with c = M^T 1. All products with the window operators
    are computed once for both grids of every pair ([M_y X; S_y X] and [X M_x | X S_x]); the
    per-pair contractions are batched (N, s*s) by (s*s, N) products.
    """
    count, side, _ = first.shape
    cells = side * side
    windows = len(operators["column_sums"])
    grids = workspace["grids"][: 2 * count]
    grids[:count], grids[count:] = first, second
    # [M_y X ; S_y X] for every grid X: (2k, 2N, s*s)
    moved = np.matmul(operators["left"], grids, out=workspace["moved"][: 2 * count])
    moved = moved.reshape(2 * count, 2 * windows, cells)
    # [X M_x | X S_x] for every grid X: (2k, s, 2N, s), then (2k, 2N, s*s)
    flat = grids.reshape(2 * count * side, side)
    products = np.matmul(flat, operators["right"], out=workspace["products"][: 2 * count * side])
    partners = workspace["partners"][: 2 * count]
    np.copyto(partners, products.reshape(2 * count, side, 2 * windows, side).transpose(0, 2, 1, 3))
    partners = partners.reshape(2 * count, 2 * windows, cells)
    column_sums = operators["column_sums"]
    half = (flat @ column_sums.T).reshape(2 * count, side, windows)
    all_sums = np.matmul(column_sums, half)  # (2k, y, x): sum of each resampled grid
    best = np.zeros(count, dtype=np.float32)
    fixed_part, moving_part = slice(0, count), slice(count, 2 * count)
    for fixed, moving in ((fixed_part, moving_part), (moving_part, fixed_part)):
        dots = np.matmul(moved[moving, :windows], partners[fixed, :windows].transpose(0, 2, 1))
        squares = np.matmul(moved[moving, windows:], partners[moving, windows:].transpose(0, 2, 1))
        sums = all_sums[moving]
        variance = squares - sums * sums / cells
        correlation = np.abs(dots) / np.sqrt(np.maximum(variance, 1e-12))
        # Only windows of one side pair up (the group's diagonal blocks); flat windows count 0.
        correlation[(variance <= 1e-9) | ~operators["same_side"]] = 0.0
        best = np.maximum(best, correlation.reshape(count, -1).max(axis=1))
    return best


def _centred_unit(grids: np.ndarray) -> np.ndarray:
    flat = grids.reshape(len(grids), -1)
    flat = flat - flat.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(flat, axis=1, keepdims=True)
    return (flat / np.where(norms > 1e-9, norms, 1.0)).reshape(grids.shape)


_ALIGNMENT_OPERATORS = _alignment_operators(
    [
        np.stack([window_sampling_matrix(side, offset) for offset in offsets])
        for side, offsets in ALIGNMENT_WINDOWS
    ]
)


def aligned_similarity(
    first, second, *, chunk: int = 64, first_rows=None, second_rows=None
) -> np.ndarray:
    """Best ``|cosine|`` of paired descriptors over small shifts and crops (rowwise).

    For each pair, one grid is resampled on each window of :data:`ALIGNMENT_WINDOWS` (the same
    side on both axes, every combination of offsets) and correlated (Pearson) with the other,
    in both directions; the maximum absolute correlation is returned. It finds a copy shifted
    by up to ~6 % or cropped by up to ~12 % that the plain cosine misses, and it is symmetric.

    Parameters
    ----------
    first, second : numpy.ndarray, shape (k, DESCRIPTOR_SIDE ** 2)
        Descriptors (any float dtype), row ``i`` of ``first`` paired with row ``i`` of
        ``second``.
    chunk : int
        Pairs per vectorised step (bounds memory: about 150 KiB per pair, reused by every
        step; small steps keep the buffers in cache).
    first_rows, second_rows : numpy.ndarray of int, shape (k,), optional (both or neither)
        Pair ``i`` is then ``first[first_rows[i]]`` with ``second[second_rows[i]]``; the rows
        are gathered one step at a time, which avoids materialising (k, 256) copies.

    Returns
    -------
    numpy.ndarray, shape (k,), float32, in [0, 1]; at least the plain ``|cosine|``; 0 for a
    flat (all-zero) descriptor.
    """
    first, second = np.asarray(first), np.asarray(second)
    cells = DESCRIPTOR_SIDE**2
    if (first_rows is None) != (second_rows is None):
        raise ValueError("aligned_similarity: pass both first_rows and second_rows, or neither")
    if first_rows is None:
        if first.shape != second.shape or first.ndim != 2 or first.shape[1] != cells:
            raise ValueError(
                f"aligned_similarity needs two (k, {cells}) arrays of one shape, got "
                f"{first.shape} and {second.shape}"
            )
        count = len(first)
    else:
        first_rows, second_rows = np.asarray(first_rows), np.asarray(second_rows)
        if (
            first.ndim != 2
            or second.ndim != 2
            or first.shape[1] != cells
            or second.shape[1] != cells
            or first_rows.shape != second_rows.shape
            or first_rows.ndim != 1
        ):
            raise ValueError(
                f"aligned_similarity needs two (n, {cells}) arrays and two (k,) row arrays, got "
                f"{first.shape}, {second.shape}, {first_rows.shape} and {second_rows.shape}"
            )
        count = len(first_rows)
    side = DESCRIPTOR_SIDE
    result = np.zeros(count, dtype=np.float32)
    workspace = _alignment_workspace(max(1, min(chunk, count)), _ALIGNMENT_OPERATORS)
    for start in range(0, count, chunk):
        if first_rows is None:
            first_part, second_part = first[start : start + chunk], second[start : start + chunk]
        else:
            first_part = first[first_rows[start : start + chunk]]
            second_part = second[second_rows[start : start + chunk]]
        a = _centred_unit(first_part.astype(np.float32, copy=False).reshape(-1, side, side))
        b = _centred_unit(second_part.astype(np.float32, copy=False).reshape(-1, side, side))
        best = np.abs(np.einsum("kij,kij->k", a, b))
        best = np.maximum(best, _aligned_both_ways(a, b, _ALIGNMENT_OPERATORS, workspace))
        flat = ~(a.reshape(len(a), -1).any(axis=1) & b.reshape(len(b), -1).any(axis=1))
        best[flat] = 0.0
        result[start : start + chunk] = np.minimum(best, 1.0)
    return result
