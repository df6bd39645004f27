"""Bad and unusual inputs: each is a row with a clear error or is decoded correctly; none
raises, hangs or stops the run."""

import io
import os
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

import data.decode as decode
import data.image_features as image_features
from data.decode import DecodeError, decode_bytes, decode_file
from data.features_command import summarize_features
from data.image_features import features
from data.scan import scan


def jpeg_bytes(size=(64, 48), colour=(200, 40, 40), **options):
    buffer = io.BytesIO()
    picture = Image.new("RGB", size, colour)
    picture.paste((20, 20, 200), (0, 0, size[0] // 2, size[1] // 2))
    picture.save(buffer, "JPEG", **options)
    return buffer.getvalue()


def png_chunk(kind, payload):
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload))
    )


def png_declaring(width, height):
    """A PNG whose header declares width x height, with a few bytes of image data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + png_chunk(b"IEND", b"")
    )


def decoded_error(data):
    with pytest.raises(DecodeError) as error:
        decode_bytes(data)
    return error.value


def test_zero_byte_file():
    assert decoded_error(b"").reason == "empty file (0 bytes)"


def test_random_bytes_named_jpg():
    reason = decoded_error(np.random.default_rng(0).bytes(5000)).reason
    assert reason == "not a recognised image format (cannot identify image file)"


@pytest.mark.parametrize("accept_truncated", [False, True])
def test_truncated_jpeg_is_an_error_even_if_pil_is_told_to_accept_it(monkeypatch, accept_truncated):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", accept_truncated)
    data = jpeg_bytes((300, 200))
    reason = decoded_error(data[: len(data) // 2]).reason
    assert reason.startswith("truncated image:")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is accept_truncated  # the caller's setting is restored


def test_decompression_bomb_is_reported_without_decoding():
    started = time.monotonic()
    error = decoded_error(png_declaring(100_000, 100_000))
    assert error.reason == (
        f"decompression bomb: declared 100000x100000 exceeds limit of {decode.MAX_PIXELS} pixels"
    )
    assert time.monotonic() - started < 5
    assert Image.MAX_IMAGE_PIXELS == decode.MAX_PIXELS  # PIL's own limit restored


def test_cmyk_jpeg():
    buffer = io.BytesIO()
    Image.new("CMYK", (40, 30), (0, 255, 255, 0)).save(buffer, "JPEG")
    decoded = decode_bytes(buffer.getvalue())
    assert decoded.mode == "CMYK" and decoded.image.mode == "RGB"
    red, green, blue = np.asarray(decoded.image)[15, 20]
    assert red > 200 and green < 60 and blue < 60


def test_16_bit_gray_is_scaled_not_clipped():
    values = np.full((20, 30), 32896, dtype=np.uint16)  # half of 65535
    values[:, :10] = 65535
    buffer = io.BytesIO()
    Image.fromarray(values).save(buffer, "PNG")
    decoded = decode_bytes(buffer.getvalue())
    assert decoded.mode.startswith("I;16") or decoded.mode == "I"
    pixels = np.asarray(decoded.image)
    assert tuple(pixels[0, 0]) == (255, 255, 255)
    assert tuple(pixels[0, 20]) == (128, 128, 128)  # a clip to 255 would make this white


def test_palette_with_transparency_and_alpha_modes_composite_on_white():
    palette = Image.new("P", (20, 20), 0)
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    palette.paste(1, (0, 0, 10, 20))
    buffer = io.BytesIO()
    palette.save(buffer, "PNG", transparency=0)
    pixels = np.asarray(decode_bytes(buffer.getvalue()).image)
    assert tuple(pixels[5, 5]) == (255, 0, 0) and tuple(pixels[5, 15]) == (255, 255, 255)

    for mode, colour in (("RGBA", (0, 0, 255, 0)), ("LA", (0, 0))):
        picture = Image.new(mode, (20, 20), colour)
        picture.paste((0, 0, 0, 255) if mode == "RGBA" else (0, 255), (0, 0, 10, 20))
        buffer = io.BytesIO()
        picture.save(buffer, "PNG")
        decoded = decode_bytes(buffer.getvalue())
        pixels = np.asarray(decoded.image)
        assert decoded.mode == mode
        assert tuple(pixels[5, 5]) == (0, 0, 0) and tuple(pixels[5, 15]) == (255, 255, 255)


def test_one_bit_image():
    buffer = io.BytesIO()
    picture = Image.new("1", (16, 16), 0)
    picture.paste(1, (8, 0, 16, 16))
    picture.save(buffer, "PNG")
    pixels = np.asarray(decode_bytes(buffer.getvalue()).image)
    assert tuple(pixels[0, 0]) == (0, 0, 0) and tuple(pixels[0, 12]) == (255, 255, 255)


def test_animated_gif_first_frame_and_frame_count():
    frames = [
        Image.new("RGB", (20, 20), colour) for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))
    ]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=50)
    decoded = decode_bytes(buffer.getvalue())
    assert decoded.frames == 3 and decoded.format == "GIF"
    assert tuple(np.asarray(decoded.image)[10, 10]) == (255, 0, 0)


def test_exif_rotation_is_applied_and_size_swapped():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    data = jpeg_bytes((64, 48), exif=exif.tobytes(), quality=95)
    decoded = decode_bytes(data)
    assert (decoded.width, decoded.height) == (48, 64)
    assert decoded.image.size == (48, 64)
    # The blue quarter (top-left as stored) is top-right once displayed.
    pixels = np.asarray(decoded.image)
    assert pixels[5, 40, 2] > 150 and pixels[5, 5, 2] < 100


def test_permission_denied_is_a_transient_error(monkeypatch, tmp_path):
    path = tmp_path / "locked.jpg"
    path.write_bytes(jpeg_bytes())

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(decode, "open", refuse, raising=False)  # works when tests run as root
    with pytest.raises(DecodeError) as error:
        decode_file(path)
    assert error.value.reason == "permission denied (file not readable)"
    assert error.value.transient


def test_decoder_that_hangs_hits_the_time_limit(monkeypatch, tmp_path):
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "slow.jpg").write_bytes(jpeg_bytes())

    def hang(path):
        time.sleep(30)

    monkeypatch.setattr(image_features, "decode_file", hang)
    started = time.monotonic()
    table = features(
        scan(tmp_path), tmp_path, workers=1, progress=False, use_cache=False, time_limit=0.5
    )
    assert time.monotonic() - started < 10
    assert table["error"].tolist() == ["decode timed out after 0.5 s"]


@pytest.fixture
def broken_dataset(tmp_path):
    root = tmp_path / "data"
    folder = root / "cat"
    folder.mkdir(parents=True)
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "random.jpg").write_bytes(np.random.default_rng(1).bytes(3000))
    full = jpeg_bytes((300, 200))
    (folder / "truncated.jpg").write_bytes(full[: len(full) // 2])
    (folder / "bomb.png").write_bytes(png_declaring(100_000, 100_000))
    os.symlink(folder / "loop-b.jpg", folder / "loop-a.jpg")
    os.symlink(folder / "loop-a.jpg", folder / "loop-b.jpg")
    locked = folder / "locked.jpg"
    locked.write_bytes(jpeg_bytes())
    locked.chmod(0)
    yield root
    locked.chmod(0o644)


def test_dataset_of_only_broken_files_gives_error_rows(broken_dataset, tmp_path):
    manifest = scan(broken_dataset)
    table = features(
        manifest, broken_dataset, cache_dir=tmp_path / "cache", workers=1, progress=False
    )
    errors = dict(zip(table["path"], table["error"], strict=True))
    assert errors["cat/empty.jpg"] == "empty file (0 bytes)"
    assert errors["cat/random.jpg"].startswith("not a recognised image format")
    assert errors["cat/truncated.jpg"].startswith("truncated image")
    assert errors["cat/bomb.png"].startswith("decompression bomb: declared 100000x100000")
    assert errors["cat/loop-a.jpg"] == errors["cat/loop-b.jpg"] == "symlink loop"
    if os.geteuid() != 0:  # root reads anything
        assert errors["cat/locked.jpg"] == "permission denied (file not readable)"
    broken = table[table["path"] != "cat/locked.jpg"]
    assert (broken["width"] == 0).all() and (broken["phash"] == 0).all()
    assert (broken["format"] == "").all()
    summary = summarize_features(table)
    assert "errors:" in summary and "symlink loop" in summary


def test_deterministic_errors_are_cached_and_transient_ones_retried(
    broken_dataset, tmp_path, monkeypatch
):
    calls = []
    original = image_features.analyse_file

    def spy(path, **options):
        calls.append(os.path.basename(path))
        return original(path, **options)

    monkeypatch.setattr(image_features, "analyse_file", spy)
    for _ in range(2):
        features(
            scan(broken_dataset),
            broken_dataset,
            cache_dir=tmp_path / "c",
            workers=1,
            progress=False,
        )
    assert calls.count("empty.jpg") == 1 and calls.count("truncated.jpg") == 1
    assert "loop-a.jpg" not in calls  # failed at scan/stat: never decoded


def test_names_with_spaces_and_non_utf8_bytes(tmp_path):
    folder = tmp_path / "my cat"
    folder.mkdir()
    odd = os.fsdecode(b"caf\xe9 \xff photo.jpg")
    (folder / odd).write_bytes(jpeg_bytes())
    (folder / "plain name.jpg").write_bytes(jpeg_bytes())
    cache_dir = tmp_path / "cache"
    first = features(scan(tmp_path), tmp_path, cache_dir=cache_dir, workers=1, progress=False)
    assert (first["error"] == "").all() and set(first["width"]) == {64}
    second = features(scan(tmp_path), tmp_path, cache_dir=cache_dir, workers=1, progress=False)
    assert second.attrs["feature_counts"]["cached"] == 2
    assert f"my cat/{odd}" in second["path"].tolist()


def test_tables_with_non_utf8_names_are_written(tmp_path):
    from data.scan_command import write_table

    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / os.fsdecode(b"\xff.jpg")).write_bytes(jpeg_bytes())
    table = features(scan(tmp_path), tmp_path, workers=1, progress=False, use_cache=False)
    csv_path = write_table(table, tmp_path / "out.csv")
    assert b"cat/\xff.jpg" in csv_path.read_bytes()  # the exact bytes of the name
    import pandas as pd

    parquet = pd.read_parquet(write_table(table, tmp_path / "out.parquet"))
    assert parquet["path"].tolist() == ["cat/\\xff.jpg"]
