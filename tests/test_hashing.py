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
    average_ranks,
    hamming,
    image_hashes,
    int64_to_hex,
    mirror_descriptors,
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
