"""data/neardup.py: exact/pixel/near kinds, each planted edit found, distinct images not matched."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageEnhance, ImageOps
from skimage import data as sample_data
from skimage import exposure, util

from data.hashing import image_hashes
from data.neardup import (
    DEFAULT_SIMILARITY,
    PAIR_COLUMNS,
    describe_rule,
    find_duplicates,
    similar_pairs,
)

NAMES = ("astronaut", "coffee", "chelsea", "rocket", "camera", "coins", "moon", "page")


def sample(name: str) -> Image.Image:
    image = Image.fromarray(getattr(sample_data, name)()).convert("RGB")
    image.thumbnail((256, 256))
    return image


def features(image: Image.Image, *, format: str = "PNG", quality: int = 90) -> dict:
    buffer = io.BytesIO()
    image.save(buffer, format, **({"quality": quality} if format == "JPEG" else {}))
    raw = buffer.getvalue()
    decoded = Image.open(io.BytesIO(raw)).convert("RGB")
    return {
        "sha256": hashlib.sha256(raw).hexdigest(),
        "pixel_digest": hashlib.sha256(decoded.tobytes() + repr(decoded.size).encode()).hexdigest(),
        "error": "",
        **image_hashes(decoded),
    }


def skimage_edit(function):
    def apply(image):
        array = function(np.asarray(image, dtype=np.float64) / 255.0)
        return Image.fromarray(np.round(np.clip(array, 0, 1) * 255).astype(np.uint8)).convert("RGB")

    return apply


def crop(fraction):
    def apply(image):
        cut_x, cut_y = round(image.width * fraction / 2), round(image.height * fraction / 2)
        return image.crop((cut_x, cut_y, image.width - cut_x, image.height - cut_y))

    return apply


EDITS = {
    "jpeg_q50": (lambda image: image, "JPEG"),
    "resize_half": (lambda image: image.resize((image.width // 2, image.height // 2)), "PNG"),
    "resize_double": (lambda image: image.resize((image.width * 2, image.height * 2)), "PNG"),
    "crop_4%": (crop(0.04), "PNG"),
    "brightness": (lambda image: ImageEnhance.Brightness(image).enhance(1.3), "PNG"),
    "contrast": (lambda image: ImageEnhance.Contrast(image).enhance(0.6), "PNG"),
    "grayscale": (lambda image: ImageOps.grayscale(image).convert("RGB"), "PNG"),
    "invert": (skimage_edit(util.invert), "PNG"),
    "poisson": (skimage_edit(lambda a: util.random_noise(a, mode="poisson", rng=0)), "PNG"),
    "rescale_intensity": (
        skimage_edit(
            lambda a: exposure.rescale_intensity(a, in_range=tuple(np.percentile(a, (2, 98))))
        ),
        "PNG",
    ),
    "adjust_log": (skimage_edit(lambda a: exposure.adjust_log(a, 1)), "PNG"),
    "adjust_sigmoid": (skimage_edit(lambda a: exposure.adjust_sigmoid(a, 0.5, 10)), "PNG"),
}


@pytest.fixture(scope="module")
def reference():
    return pd.DataFrame(
        [features(sample(name)) for name in NAMES], index=[f"ref/{n}" for n in NAMES]
    )


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_each_transformation_is_found(reference, edit):
    function, format = EDITS[edit]
    query = pd.DataFrame(
        [features(function(sample(name)), format=format) for name in NAMES[:4]],
        index=[f"copy/{name}" for name in NAMES[:4]],
    )
    pairs = find_duplicates(query, reference)
    found = set(zip(pairs["query_index"], pairs["reference_index"], strict=True))
    for name in NAMES[:4]:
        assert (f"copy/{name}", f"ref/{name}") in found, f"{edit} copy of {name} not found"
    assert pairs["reference_index"].str[4:].eq(pairs["query_index"].str[5:]).all(), pairs
    if edit == "invert":
        assert pairs["inverted"].all()


def test_distinct_images_are_not_matched(reference):
    assert find_duplicates(reference).empty


def test_kinds_are_exact_then_pixels_then_near(reference):
    image = sample("coffee")
    query = pd.DataFrame(
        [
            features(image),  # same PNG bytes as the reference
            {**features(image), "sha256": "other-bytes"},  # same pixels, other file
            features(image, format="JPEG", quality=60),  # near
        ],
        index=["same", "resaved", "jpeg"],
    )
    pairs = find_duplicates(query, reference).set_index("query_index")
    assert pairs.loc["same", "kind"] == "exact"
    assert pairs.loc["resaved", "kind"] == "pixels"
    assert pairs.loc["jpeg", "kind"] == "near"
    assert (pairs["reference_index"] == "ref/coffee").all()
    assert len(pairs) == 3  # one row per pair, kinds exclusive
    assert list(find_duplicates(query, reference).columns) == list(PAIR_COLUMNS)


def test_within_query_each_pair_once_without_self_pairs():
    image = sample("astronaut")
    frame = pd.DataFrame(
        [
            features(image),
            features(image, format="JPEG"),
            features(ImageOps.invert(image)),
            features(sample("moon")),
        ],
        index=[10, 20, 30, 40],
    )
    pairs = find_duplicates(frame)
    assert sorted(zip(pairs["query_index"], pairs["reference_index"], strict=True)) == [
        (10, 20),
        (10, 30),
        (20, 30),
    ]


def test_flip_only_with_the_flag(reference):
    query = pd.DataFrame([features(ImageOps.mirror(sample("rocket")))], index=["mirrored"])
    assert find_duplicates(query, reference).empty
    pairs = find_duplicates(query, reference, flip=True)
    assert pairs[["reference_index", "flipped"]].values.tolist() == [["ref/rocket", True]]


def test_flip_within_query():
    image = sample("rocket")
    frame = pd.DataFrame([features(image), features(ImageOps.mirror(image))], index=["a", "b"])
    assert find_duplicates(frame).empty
    pairs = find_duplicates(frame, flip=True)
    assert pairs[["query_index", "reference_index", "flipped"]].values.tolist() == [
        ["a", "b", True]
    ]


def test_inputs_not_mutated_and_error_rows_ignored(reference):
    query = pd.DataFrame(
        [features(sample("chelsea")), features(sample("coins"))], index=["good", "broken"]
    )
    query.loc["broken", "error"] = "truncated JPEG"
    before_query, before_reference = query.copy(deep=True), reference.copy(deep=True)
    pairs = find_duplicates(query, reference)
    assert pairs["query_index"].tolist() == ["good"]
    pd.testing.assert_frame_equal(query, before_query)
    pd.testing.assert_frame_equal(reference, before_reference)


def test_missing_column_and_duplicate_index_are_clear_errors(reference):
    with pytest.raises(ValueError, match="descriptor"):
        find_duplicates(reference.drop(columns=["descriptor"]))
    with pytest.raises(ValueError, match="duplicated index"):
        find_duplicates(pd.concat([reference, reference]))
    with pytest.raises(ValueError, match="similarity"):
        find_duplicates(reference, similarity=1.5)


def test_blocks_give_the_same_answer(reference):
    image = sample("camera")
    query = pd.DataFrame(
        [features(image, format="JPEG", quality=q) for q in (40, 60, 80)], index=["a", "b", "c"]
    )
    whole = find_duplicates(query, reference)
    tiny_blocks = find_duplicates(query, reference, block_bytes=1)
    pd.testing.assert_frame_equal(whole, tiny_blocks)
    within_whole = find_duplicates(pd.concat([query, reference]))
    within_blocks = find_duplicates(pd.concat([query, reference]), block_bytes=1)
    pd.testing.assert_frame_equal(within_whole, within_blocks)


def shift(fraction):
    def apply(image):
        array = np.asarray(image)
        dx, dy = round(image.width * fraction), round(image.height * fraction)
        padded = np.pad(array, ((dy, 0), (dx, 0), (0, 0)), mode="edge")
        return Image.fromarray(padded[: array.shape[0], : array.shape[1]])

    return apply


def corner_crop(fraction):
    def apply(image):
        return image.crop(
            (0, 0, round(image.width * (1 - fraction)), round(image.height * (1 - fraction)))
        )

    return apply


@pytest.mark.parametrize("edit", [shift(0.06), corner_crop(0.10)], ids=["shift_6%", "crop_10%"])
def test_alignment_finds_shifted_and_cropped_copies(reference, edit):
    names = ("astronaut", "coffee", "camera")
    query = pd.DataFrame(
        [features(edit(sample(name)), format="JPEG") for name in names],
        index=[f"copy/{name}" for name in names],
    )
    plain = np.abs(
        np.stack(query["descriptor"].to_numpy()).astype(np.float32)
        @ np.stack(reference.loc[[f"ref/{n}" for n in names], "descriptor"].to_numpy())
        .astype(np.float32)
        .T
    ).diagonal()
    assert plain.min() < DEFAULT_SIMILARITY  # the plain cosine alone would miss at least one
    pairs = find_duplicates(query, reference)
    assert sorted(zip(pairs["query_index"], pairs["reference_index"], strict=True)) == [
        (f"copy/{name}", f"ref/{name}") for name in sorted(names)
    ]
    assert (pairs["similarity"] >= DEFAULT_SIMILARITY).all()
    # Without the alignment (candidates must reach the final threshold by plain cosine alone)
    # the weakest copy is lost: the alignment is what finds it.
    strict = find_duplicates(query, reference, candidate_similarity=1.0, similarity=1.0)
    assert len(strict) < len(pairs)


def _brute_force(first, second, threshold, *, within):
    block = np.abs(first @ second.T)
    rows, columns = np.nonzero(block >= threshold)
    if within:
        keep = columns > rows
        rows, columns = rows[keep], columns[keep]
    return set(zip(rows.tolist(), columns.tolist(), strict=True))


def _smooth_descriptors(count, seed):
    """Descriptors of random smooth images (what the prefilter's bound is tight on)."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(count):
        small = rng.integers(0, 256, size=(4, 4), dtype=np.uint8)
        image = Image.fromarray(small).resize((64, 64), Image.Resampling.BICUBIC).convert("RGB")
        rows.append(image_hashes(image)["descriptor"])
    return np.stack(rows).astype(np.float32)


@pytest.mark.parametrize("threshold", [0.6, 0.8, 0.95])
def test_prefiltered_search_is_exact(threshold):
    smooth = _smooth_descriptors(120, seed=1)
    noise = np.random.default_rng(2).standard_normal((60, 256)).astype(np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)  # no smoothness: bound useless
    for vectors in (smooth, noise):
        query, reference = vectors[:40], vectors[40:]
        found = similar_pairs(query, reference, threshold=threshold, within=False, block_bytes=4096)
        assert set(zip(found[0].tolist(), found[1].tolist(), strict=True)) == _brute_force(
            query, reference, threshold, within=False
        )
        found = similar_pairs(vectors, vectors, threshold=threshold, within=True, block_bytes=4096)
        assert set(zip(found[0].tolist(), found[1].tolist(), strict=True)) == _brute_force(
            vectors, vectors, threshold, within=True
        )
    assert len(_brute_force(smooth, smooth, 0.6, within=True)) > 10  # the test has matches


def test_candidate_similarity_is_validated(reference):
    with pytest.raises(ValueError, match="candidate_similarity"):
        find_duplicates(reference, candidate_similarity=0.0)
    text = describe_rule(0.93, 0.75, 26, 0.82, 10)
    assert "0.93" in text and "0.75" in text and "26" in text
    with pytest.raises(ValueError, match="aligned_phash_distance"):
        find_duplicates(reference, aligned_phash_distance=65)


@pytest.mark.parametrize("within", [True, False])
def test_similarity_returned_with_the_pairs_is_the_absolute_cosine(within):
    smooth = _smooth_descriptors(120, seed=3)
    noise = np.random.default_rng(4).standard_normal((60, 256)).astype(np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)  # the plain-product path
    for vectors, threshold in ((smooth, 0.3), (noise, 0.15)):
        query, reference = (vectors, vectors) if within else (vectors[:40], vectors[40:])
        options = {"threshold": threshold, "within": within, "block_bytes": 4096}
        rows, columns, values = similar_pairs(query, reference, **options, with_similarity=True)
        plain = similar_pairs(query, reference, **options)
        np.testing.assert_array_equal(rows, plain[0])
        np.testing.assert_array_equal(columns, plain[1])
        assert values.dtype == np.float32 and len(values) == len(rows) > 0
        expected = np.abs(np.einsum("ij,ij->i", query[rows], reference[columns]))
        np.testing.assert_allclose(values, expected, atol=1e-5)
        assert (values >= threshold).all()


def test_candidates_are_every_pair_above_the_candidate_threshold(reference):
    brighter = [ImageEnhance.Brightness(sample(name)).enhance(1.3) for name in NAMES[:3]]
    copies = pd.DataFrame(
        [features(image) for image in brighter], index=[f"copy/{n}" for n in NAMES[:3]]
    )
    frame = pd.concat([reference, copies])
    frame.loc[frame.index[2], "error"] = "cannot decode"
    pairs, candidates = find_duplicates(frame, return_candidates=True, candidate_similarity=0.3)
    pd.testing.assert_frame_equal(pairs, find_duplicates(frame, candidate_similarity=0.3))
    threshold = 0.3
    assert candidates.attrs["threshold"] == threshold
    usable = frame[frame["error"] == ""]
    vectors = np.stack(usable["descriptor"]).astype(np.float32)
    expected = {
        (usable.index[a], usable.index[b])
        for a, b in _brute_force(vectors, vectors, threshold, within=True)
    }
    found = set(zip(candidates["query_index"], candidates["reference_index"], strict=True))
    assert found == expected and len(found) > len(pairs) >= 2  # the copies, and look-alikes
    assert frame.index[2] not in set(candidates["query_index"]) | set(candidates["reference_index"])
    positions = usable.index.get_indexer(candidates["query_index"])
    others = usable.index.get_indexer(candidates["reference_index"])
    cosine = np.abs(np.einsum("ij,ij->i", vectors[positions], vectors[others]))
    np.testing.assert_allclose(candidates["similarity"], cosine, atol=1e-5)


@pytest.mark.parametrize("within", [True, False])
def test_signed_similarity_is_the_rowwise_cosine_bit_for_bit(within):
    from data.neardup import _rowwise_similarity

    smooth = _smooth_descriptors(120, seed=5)
    noise = np.random.default_rng(6).standard_normal((60, 256)).astype(np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)  # the plain-product path
    for vectors, threshold in ((smooth, 0.3), (noise, 0.15)):
        query, reference = (vectors, vectors) if within else (vectors[:40], vectors[40:])
        options = {"threshold": threshold, "within": within, "block_bytes": 4096}
        rows, columns, values, signed = similar_pairs(
            query, reference, **options, with_similarity=True, with_signed=True
        )
        plain = similar_pairs(query, reference, **options, with_similarity=True)
        np.testing.assert_array_equal(rows, plain[0])
        np.testing.assert_array_equal(values, plain[2])
        assert signed.dtype == np.float32 and len(signed) == len(rows) > 0
        np.testing.assert_array_equal(signed, _rowwise_similarity(query, reference, rows, columns))
    with pytest.raises(ValueError, match="with_signed"):
        similar_pairs(
            smooth, smooth, threshold=0.5, within=True, block_bytes=4096, with_signed=True
        )


def test_nonzero_2d_matches_numpy_in_order():
    from data.neardup import _nonzero_2d

    rng = np.random.default_rng(8)
    for shape, share in (((30, 70), 0.05), ((1, 5), 1.0), ((4, 0), 0.5), ((0, 9), 0.5)):
        mask = rng.random(shape) < share
        rows, columns = _nonzero_2d(mask)
        expected_rows, expected_columns = np.nonzero(mask)
        np.testing.assert_array_equal(rows, expected_rows)
        np.testing.assert_array_equal(columns, expected_columns)
