"""data/hashing.py: imagehash compatibility, stability under edits, descriptor invariances."""

from __future__ import annotations

import io

import imagehash
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageEnhance, ImageOps
from skimage import data as sample_data

from data.hashing import (
    aligned_similarity,
    average_ranks,
    hamming,
    image_hashes,
    int64_to_hex,
    mirror_descriptors,
    window_sampling_matrix,
)

SAMPLES = ("astronaut", "coffee", "chelsea", "rocket", "camera", "coins")


def sample(name: str, width: int = 256) -> Image.Image:
    image = Image.fromarray(getattr(sample_data, name)()).convert("RGB")
    return image.resize((width, max(1, round(width * image.height / image.width))))


def reencode(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def cosine(first: dict, second: dict) -> float:
    return float(first["descriptor"].astype(np.float32) @ second["descriptor"].astype(np.float32))


@pytest.mark.parametrize("name", SAMPLES)
def test_phash_matches_imagehash(name):
    image = sample(name)
    hashes = image_hashes(image)
    expected = int(str(imagehash.phash(image)), 16)
    assert bin(int(int64_to_hex(hashes["phash"]), 16) ^ expected).count("1") <= 2
    inverted = ImageOps.invert(image.convert("L"))
    expected_inverted = int(str(imagehash.phash(inverted)), 16)
    assert bin(int(int64_to_hex(hashes["phash_inverted"]), 16) ^ expected_inverted).count("1") <= 2
    expected_dhash = int(str(imagehash.dhash(image)), 16)
    assert bin(int(int64_to_hex(hashes["dhash"]), 16) ^ expected_dhash).count("1") <= 6


def test_hash_types_and_descriptor_shape():
    hashes = image_hashes(sample("astronaut"))
    for key in ("phash", "dhash", "phash_inverted"):
        assert isinstance(hashes[key], int)
        assert -(2**63) <= hashes[key] < 2**63
    assert hashes["descriptor"].shape == (256,)
    assert hashes["descriptor"].dtype == np.float16
    assert np.isclose(np.linalg.norm(hashes["descriptor"].astype(np.float32)), 1.0, atol=1e-2)


@pytest.mark.parametrize("size", [(1, 1), (3, 7), (28, 28), (500, 20)])
def test_tiny_and_odd_sizes_work(size):
    image = sample("chelsea").resize(size)
    hashes = image_hashes(image)
    assert hashes["descriptor"].shape == (256,)
    assert np.all(np.isfinite(hashes["descriptor"].astype(np.float32)))


def test_flat_image_has_zero_descriptor():
    hashes = image_hashes(Image.new("RGB", (40, 30), (90, 120, 200)))
    assert not hashes["descriptor"].any()


def test_hamming_counts_bits_of_signed_values_and_broadcasts():
    values = np.array([0, -1, 1, -(2**63)], dtype=np.int64)
    distances = hamming(values[:, None], values[None, :])
    assert distances.shape == (4, 4)
    assert distances[0, 1] == 64 and distances[0, 2] == 1 and distances[0, 3] == 1
    assert np.all(np.diag(distances) == 0)
    assert hamming(5, 3) == 2


def test_average_ranks_average_ties():
    assert average_ranks(np.array([10.0, 20.0, 10.0, 5.0])).tolist() == [2.5, 4.0, 2.5, 1.0]


def test_invert_negates_descriptor_and_swaps_phash():
    image = sample("coffee")
    plain, inverted = image_hashes(image), image_hashes(ImageOps.invert(image))
    assert cosine(plain, inverted) < -0.99
    assert hamming(plain["phash_inverted"], inverted["phash"]) <= 4


def test_monotone_intensity_changes_keep_descriptor():
    image = sample("astronaut")
    plain = image_hashes(image)
    for edited in (
        ImageEnhance.Brightness(image).enhance(1.3),
        ImageEnhance.Contrast(image).enhance(0.6),
        image.point(lambda value: int(255 * (value / 255) ** 0.5)),
        ImageOps.grayscale(image).convert("RGB"),
    ):
        assert cosine(plain, image_hashes(edited)) > 0.97


def test_mirror_descriptor_matches_mirrored_image():
    image = sample("rocket")
    mirrored = image_hashes(ImageOps.mirror(image))["descriptor"].astype(np.float32)
    predicted = mirror_descriptors(image_hashes(image)["descriptor"]).astype(np.float32)
    assert predicted @ mirrored > 0.99


@settings(max_examples=25, deadline=None)
@given(
    name=st.sampled_from(SAMPLES),
    quality=st.integers(min_value=40, max_value=95),
    width=st.integers(min_value=96, max_value=400),
)
def test_phash_stable_under_reencoding_and_resizing(name, quality, width):
    original = image_hashes(sample(name, 320))
    edited = image_hashes(reencode(sample(name, 320).resize((width, width)), quality))
    assert hamming(original["phash"], edited["phash"]) <= 8
    assert abs(cosine(original, edited)) > 0.95


@settings(max_examples=15, deadline=None)
@given(pair=st.sampled_from([(a, b) for a in SAMPLES for b in SAMPLES if a < b]))
def test_distinct_images_are_far_apart(pair):
    first, second = (image_hashes(sample(name)) for name in pair)
    assert hamming(first["phash"], second["phash"]) > 12
    assert abs(cosine(first, second)) < 0.8


def shifted(image: Image.Image, fraction: float) -> Image.Image:
    """Translate right and down by ``fraction`` of the size, edge pixels repeated."""
    array = np.asarray(image)
    dx, dy = round(image.width * fraction), round(image.height * fraction)
    padded = np.pad(array, ((dy, 0), (dx, 0), (0, 0)), mode="edge")
    return Image.fromarray(padded[: array.shape[0], : array.shape[1]])


def descriptors(*images: Image.Image) -> np.ndarray:
    return np.stack([image_hashes(image)["descriptor"] for image in images]).astype(np.float32)


@pytest.mark.parametrize("name", ["astronaut", "coffee", "rocket", "camera"])
def test_alignment_recovers_shifts_and_crops(name):
    image = sample(name)
    width, height = image.size
    edits = [
        shifted(image, 0.06),
        image.crop((0, 0, round(width * 0.9), round(height * 0.9))),  # 10 % crop in a corner
    ]
    original = descriptors(image)
    for edited in edits:
        copy = descriptors(edited)
        plain = abs(float(original[0] @ copy[0]))
        aligned = float(aligned_similarity(original, copy)[0])
        assert aligned >= plain
        assert aligned > 0.93, (name, plain, aligned)


def test_alignment_is_symmetric_and_bounded_and_keeps_distinct_apart():
    names = ("astronaut", "coffee", "chelsea", "rocket", "camera", "coins")
    vectors = descriptors(*(sample(name) for name in names))
    first, second = np.repeat(vectors, len(names), axis=0), np.tile(vectors, (len(names), 1))
    forward, backward = aligned_similarity(first, second), aligned_similarity(second, first)
    np.testing.assert_allclose(forward, backward, atol=1e-5)
    plain = np.abs(np.einsum("ij,ij->i", first, second))
    assert np.all(forward >= plain - 1e-5) and np.all(forward <= 1.0)
    same = np.repeat(np.arange(len(names)), len(names)) == np.tile(
        np.arange(len(names)), len(names)
    )
    np.testing.assert_allclose(forward[same], 1.0, atol=1e-3)
    assert forward[~same].max() < 0.9


def test_alignment_of_flat_descriptor_is_zero_and_shapes_are_checked():
    vector = descriptors(sample("coffee"))
    assert aligned_similarity(np.zeros_like(vector), vector).tolist() == [0.0]
    with pytest.raises(ValueError, match="aligned_similarity"):
        aligned_similarity(vector, vector[:, :64])


def test_window_sampling_identity_and_edge_repeat():
    np.testing.assert_allclose(window_sampling_matrix(1.0, 0.0), np.eye(16), atol=1e-12)
    shifted_left = window_sampling_matrix(1.0, -1 / 16)  # samples one cell before the grid
    assert shifted_left[0].tolist() == [1.0] + [0.0] * 15  # edge repeated
    assert shifted_left[5, 4] == 1.0


def _reference_aligned_similarity(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Straightforward alignment: form every resampled grid, Pearson in float64, keep the best."""
    from data.hashing import ALIGNMENT_WINDOWS

    side = 16
    first = first.astype(np.float64).reshape(-1, side, side)
    second = second.astype(np.float64).reshape(-1, side, side)

    def centred_unit(grids):
        flat = grids.reshape(len(grids), -1)
        flat = flat - flat.mean(axis=1, keepdims=True)
        norms = np.linalg.norm(flat, axis=1, keepdims=True)
        return flat / np.where(norms > 1e-9, norms, 1.0)

    a, b = centred_unit(first), centred_unit(second)
    best = np.abs(np.einsum("ki,ki->k", a, b))
    for fixed, moving in ((a, b), (b, a)):
        moving_grids = moving.reshape(-1, side, side)
        for window_side, offsets in ALIGNMENT_WINDOWS:
            maps = [window_sampling_matrix(window_side, offset) for offset in offsets]
            for rows_map in maps:
                for columns_map in maps:
                    resampled = (rows_map @ moving_grids @ columns_map.T).reshape(len(a), -1)
                    centred = resampled - resampled.mean(axis=1, keepdims=True)
                    norms = np.linalg.norm(centred, axis=1)
                    dots = np.abs(np.einsum("ki,ki->k", fixed, centred))
                    correlation = np.where(norms**2 > 1e-9, dots / np.maximum(norms, 1e-12), 0.0)
                    best = np.maximum(best, correlation)
    flat = ~(a.any(axis=1) & b.any(axis=1))
    best[flat] = 0.0
    return np.minimum(best, 1.0)


def test_alignment_equals_the_straightforward_reference_on_random_pairs():
    rng = np.random.default_rng(7)
    count = 3000
    base = rng.standard_normal((count, 16, 16))
    # Half the pairs are shifted noisy copies (alignment matters), half unrelated grids.
    copies = np.roll(base, shift=(1, -1), axis=(1, 2)) + 0.3 * rng.standard_normal(base.shape)
    unrelated = rng.standard_normal(base.shape)
    second = np.where((np.arange(count) % 2 == 0)[:, None, None], copies, unrelated)
    first = base.reshape(count, -1)
    first /= np.linalg.norm(first, axis=1, keepdims=True)
    second = second.reshape(count, -1)
    second /= np.linalg.norm(second, axis=1, keepdims=True)
    first, second = first.astype(np.float16), second.astype(np.float16)
    first[5] = 0.0  # a flat descriptor
    expected = _reference_aligned_similarity(first, second)
    found = aligned_similarity(first, second)
    assert found.dtype == np.float32 and found.shape == (count,)
    np.testing.assert_allclose(found, expected, atol=1e-5)
    assert found[5] == 0.0
    assert (expected[::2] > expected[1::2].max()).mean() > 0.5  # the copies are aligned higher
    # Rows given by index give the same answer as gathered rows (and any chunk size).
    rows = rng.permutation(count)[:500]
    others = rng.permutation(count)[:500]
    np.testing.assert_array_equal(
        aligned_similarity(first, second, first_rows=rows, second_rows=others, chunk=37),
        aligned_similarity(first[rows], second[others]),
    )
    with pytest.raises(ValueError, match="first_rows"):
        aligned_similarity(first, second, first_rows=rows)
