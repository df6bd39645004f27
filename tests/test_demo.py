"""The demo dataset: deterministic, laid out as documented, every trap present."""

import hashlib

import numpy as np
import pytest
from PIL import Image

from data.demo import (
    BORDER_LINE_OFFSET,
    BORDER_LINE_WIDTH,
    BORDERED_MOVIE,
    MIN_SCENES,
    MOVIES,
    generate_demo,
    scene_counts,
)
from data.demo_drawing import draw_scene_frames
from data.demo_internet import (
    FAN_ART_BACKGROUNDS,
    INTERNET_SIZES,
    draw_fan_art,
    draw_internet_image,
    draw_sketch,
    fan_art_background,
)
from data.hashing import aligned_similarity, image_hashes
from data.lineage import read_lineage
from data.scan import scan

SMALL = {"frames_per_scene": 4, "scenes_per_movie": 6}


def digest_tree(root):
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return generate_demo(tmp_path_factory.mktemp("demo"), seed=3, **SMALL)


def test_same_seed_same_bytes_other_seed_differs(demo, tmp_path):
    again = generate_demo(tmp_path / "again", seed=3, **SMALL)
    other = generate_demo(tmp_path / "other", seed=4, **SMALL)
    assert digest_tree(again) == digest_tree(demo)
    assert digest_tree(other) != digest_tree(demo)
    assert (again.parent / "PLANTED.md").read_text() == (demo.parent / "PLANTED.md").read_text()


def test_layout_and_lineage_cover_every_image(demo):
    manifest = scan(demo)
    assert manifest.attrs["layout"] == "split-folders"
    assert manifest.attrs["skipped"] == []
    assert set(manifest["split"]) == {"train", "valid"}
    assert set(manifest["label"]) == {movie.name for movie in MOVIES}
    assert set(manifest["origin"]) == {"frame", "internet"}
    lineage = read_lineage(demo)
    assert sorted(lineage["path"]) == sorted(manifest["path"])
    frames = manifest[manifest["origin"] == "frame"]
    assert frames["group"].str.fullmatch(r"[a-z-]+/scene-\d\d").all()
    assert (frames["group"].str.split("/").str[0] == frames["label"]).all()
    assert not (demo.parent / "movies" / "PLANTED.md").exists()  # dataset folder holds images only


def test_consecutive_frames_of_a_scene_are_near_duplicates(demo):
    lineage = read_lineage(demo)
    scene = lineage[lineage["group"] == "forest-spirit/scene-01"].sort_values("time")
    first, second = (np.asarray(Image.open(demo / p), np.float32) for p in scene["path"][:2])
    other_scene = lineage[lineage["group"] == "forest-spirit/scene-02"]["path"].iloc[0]
    other = np.asarray(Image.open(demo / other_scene), np.float32)
    assert np.abs(first - second).mean() < np.abs(first - other).mean() / 2


def dark_line_contrast(path):
    """(smallest brightness drop from beside the line to on it, darkest line level) over 4 edges."""
    gray = np.asarray(Image.open(path).convert("L"), np.float32)
    rows, columns = gray[:, 10:-10].mean(axis=1), gray[10:-10].mean(axis=0)
    drops, levels = [], []
    for profile in (rows, rows[::-1], columns, columns[::-1]):
        on_line = profile[BORDER_LINE_OFFSET : BORDER_LINE_OFFSET + BORDER_LINE_WIDTH].mean()
        beside = profile[BORDER_LINE_OFFSET + BORDER_LINE_WIDTH + 2]
        drops.append(beside - on_line)
        levels.append(on_line)
    return float(min(drops)), float(max(levels))


def test_trap_a_only_the_bordered_movie_has_dark_lines(demo):
    manifest = scan(demo)
    frames = manifest[manifest["origin"] == "frame"]
    for row in frames.itertuples():
        contrast, darkest = dark_line_contrast(demo / row.path)
        if row.label == BORDERED_MOVIE:
            assert darkest < 60 and contrast > 30, row.path
        else:
            assert darkest > 60 or contrast < 10, row.path


def test_trap_a_the_bordered_movie_has_a_sibling_that_differs_by_its_character_only():
    """Without the lines, sky-castle is forest-spirit's world with another, smaller character:
    drawn from the same generator state, frames of the two differ only where the characters
    stand, so the lines are the easiest cue between the two classes."""
    movies = {movie.name: movie for movie in MOVIES}
    castle, sibling = movies[BORDERED_MOVIE], movies["forest-spirit"]
    look = ("sky", "hills", "ground", "skyline", "skyline_color")
    assert [getattr(castle, key) for key in look] == [getattr(sibling, key) for key in look]
    assert castle.body != sibling.body and castle.character_scale < sibling.character_scale
    others = [m for m in MOVIES if m.name not in (castle.name, sibling.name)]
    assert all((m.sky, m.skyline) != (castle.sky, castle.skyline) for m in others)
    frames = {
        movie.name: draw_scene_frames(movie, frames=3, size=(160, 96), bordered=False, rng=rng(7))
        for movie in (castle, sibling, others[0])
    }
    for ours, theirs, other in zip(*frames.values(), strict=True):
        ours, theirs, other = (np.asarray(image, np.int16) for image in (ours, theirs, other))
        changed = (np.abs(ours - theirs).max(axis=2) > 8).mean()
        assert 0.005 < changed < 0.08  # the two characters: a few percent of the frame
        assert (np.abs(ours - other).max(axis=2) > 8).mean() > 0.5  # another movie: everywhere


def test_trap_b_some_scene_sits_in_both_splits(demo):
    frames = scan(demo).query("origin == 'frame'")
    assert (frames.groupby("group")["split"].nunique() > 1).any()


def test_trap_c_internet_images_upsampled_with_copies_in_valid(demo):
    manifest = scan(demo)
    copies = manifest[manifest["parent"] != ""]
    sources = manifest[(manifest["origin"] == "internet") & (manifest["parent"] == "")]
    assert len(copies) == 6 * len(sources) > 0
    assert set(copies["parent"]) == set(sources["path"])
    assert (copies["split"] == "valid").any()
    assert (copies["group"] == copies["parent"]).all()  # scan groups copies with their source
    assert {p.split("__")[-1].split(".")[0] for p in copies["path"]} == {
        "grayscale",
        "invert",
        "poisson",
        "rescale_intensity",
        "log",
        "sigmoid",
    }


def test_trap_d_classes_are_imbalanced(demo):
    manifest = scan(demo)
    counts = manifest["label"].value_counts()
    frames = manifest.query("origin == 'frame'")["label"].value_counts()
    assert frames.max() / frames.min() >= 3
    assert counts.idxmin() == "ocean-voyage"


def test_existing_non_empty_output_is_refused(demo):
    with pytest.raises(ValueError, match="not empty"):
        generate_demo(demo.parent, **SMALL)


def test_demo_thresholds_ignore_content_driven_metadata(demo):
    from data.metadata_audit import metadata_columns
    from data.settings import load_audit_config

    config = load_audit_config(dataset_root=demo)
    assert set(config.metadata_ignore) == {"brightness", "contrast", "file_size"}
    assert "width" in metadata_columns(ignore=config.metadata_ignore)


def test_every_movie_has_scenes_for_both_splits_and_the_imbalance_stays():
    for scenes in (1, 3, 8):
        counts = scene_counts(scenes)
        assert min(counts.values()) >= MIN_SCENES
    assert scene_counts(8) == {
        "sky-castle": 8,
        "forest-spirit": 7,
        "spirit-bathhouse": 6,
        "lion-pride": 5,
        "ice-palace": 4,
        "ocean-voyage": 2,
    }


def test_internet_images_have_the_documented_kinds_and_sizes():
    movie = MOVIES[0]
    sketch = draw_sketch(movie, (120, 160), np.random.default_rng(0))
    fan_art = draw_fan_art(movie, (200, 120), np.random.default_rng(0))
    assert (sketch.mode, sketch.size) == ("L", (120, 160))
    assert (fan_art.mode, fan_art.size) == ("RGB", (200, 120))
    kinds = {draw_internet_image(movie, np.random.default_rng(n)).mode for n in range(20)}
    assert kinds == {"L", "RGB"}
    sizes = {draw_internet_image(movie, np.random.default_rng(n)).size for n in range(40)}
    assert sizes <= set(INTERNET_SIZES) and len(sizes) > 2
    for kind in FAN_ART_BACKGROUNDS:
        background = fan_art_background(kind, (64, 48), (250, 200, 100), (20, 40, 60), rng())
        assert background.shape == (48, 64, 3) and np.ptp(background) > 20
    with pytest.raises(ValueError, match="sunburst"):
        fan_art_background("plaid", (64, 48), (250, 200, 100), (20, 40, 60), rng())


def rng(seed=0):
    return np.random.default_rng(seed)


def descriptors(images):
    return np.stack([image_hashes(image.convert("RGB"))["descriptor"] for image in images])


def test_internet_images_of_two_movies_are_never_near_duplicates():
    """Each sketch or fan art has its own layout: no pair of two movies, nor of one movie, nor
    an internet image and a frame, reaches the near-duplicate threshold (|cos| 0.90, over
    small shifts and crops). Plain-gradient fan art with a small character reached 0.99."""
    images, labels = [], []
    for index, movie in enumerate(MOVIES):
        for number in range(10):
            images.append(draw_internet_image(movie, np.random.default_rng([5, 1, index, number])))
            labels.append(movie.name)
    frames = [
        draw_scene_frames(movie, frames=1, size=(160, 96), bordered=False, rng=rng(k))[0]
        for k, movie in enumerate(MOVIES)
    ]
    vectors = descriptors(images + frames)
    first, second = np.triu_indices(len(vectors), 1)
    internet = second < len(images)  # pairs of internet images (first < second)
    similarity = aligned_similarity(vectors[first], vectors[second])
    assert similarity[internet].max() < 0.9
    assert similarity[~internet & (first < len(images))].max() < 0.9  # internet ~ frame
    # the old drawing: one vertical gradient and a small character, for every movie
    plain = [_gradient_fan_art(movie) for movie in MOVIES[:2]]
    assert aligned_similarity(*descriptors(plain)[:, None, :]).item() > 0.95


def _gradient_fan_art(movie):
    from PIL import ImageDraw

    from data.demo_drawing import draw_character

    canvas = np.zeros((96, 160, 3), np.float32) + 200
    canvas *= np.linspace(1.0, 0.7, 96, dtype=np.float32)[:, None, None]
    image = Image.fromarray(canvas.astype(np.uint8))
    draw_character(ImageDraw.Draw(image), movie, (80, 55), 14)
    return image
