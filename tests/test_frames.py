"""Frames from a generated video with known scene cuts."""

import numpy as np
import pytest
from PIL import Image

from data.frames import extract_frames
from data.lineage import read_lineage
from data.scan import scan

FPS = 10
SCENE_SECONDS = 2
SIZE = (64, 48)


def scene_frame(scene: int, index: int) -> np.ndarray:
    """Three visibly different scenes, each with a small moving square (motion, not a cut)."""
    height, width = SIZE[1], SIZE[0]
    colors = [(200, 40, 40), (30, 160, 60), (40, 60, 200)]
    frame = np.zeros((height, width, 3), np.uint8) + np.array(colors[scene], np.uint8)
    if scene == 1:
        frame[::8] = 240  # stripes
    x = 4 + index
    frame[20:28, x : x + 8] = 255
    return frame


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    import av

    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        for scene in range(3):
            for index in range(SCENE_SECONDS * FPS):
                frame = av.VideoFrame.from_ndarray(scene_frame(scene, index), format="rgb24")
                for packet in stream.encode(frame):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_frames_every_second_with_scene_groups(video, tmp_path):
    table = extract_frames(
        video, tmp_path, label="clips", every=1.0, width=32, height=24, progress=False
    )
    assert table["time"].tolist() == pytest.approx([0, 1, 2, 3, 4, 5], abs=0.01)
    assert (
        table["group"].tolist()
        == ["clip/scene-001"] * 2 + ["clip/scene-002"] * 2 + ["clip/scene-003"] * 2
    )
    assert table.attrs["cuts"] == pytest.approx([2.0, 4.0], abs=0.01)
    manifest = scan(tmp_path)
    assert manifest["label"].unique().tolist() == ["clips"]
    assert manifest["group"].nunique() == 3
    assert (manifest["origin"] == "frame").all()
    lineage = read_lineage(tmp_path)
    assert set(lineage["source"]) == {str(video)}
    assert set(lineage["operation"]) == {"frame"}
    first = Image.open(tmp_path / table["path"][0])
    assert first.size == (32, 24) and first.format == "JPEG"
    red, green, blue = np.asarray(first, np.float32).reshape(-1, 3).mean(axis=0)
    assert red > green and red > blue  # the first scene is red


def test_one_dimension_keeps_aspect_ratio_and_sampling_every_two_seconds(video, tmp_path):
    table = extract_frames(video, tmp_path, label="clips", every=2.0, width=32, progress=False)
    assert table["time"].tolist() == pytest.approx([0, 2, 4], abs=0.01)
    assert Image.open(tmp_path / table["path"][0]).size == (32, 24)
    assert table["group"].nunique() == 3


def test_corrupt_video_names_the_file(tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"this is not a video" * 100)
    with pytest.raises(ValueError, match="broken.mp4"):
        extract_frames(broken, tmp_path / "out", label="x", progress=False)
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        extract_frames(tmp_path / "missing.mp4", tmp_path / "out", label="x", progress=False)


def test_command_line(video, tmp_path, capsys):
    from data.__main__ import main

    code = main(["frames", str(video), str(tmp_path), "--every", "2", "--label", "clips"])
    assert code == 0
    assert "3 frames" in capsys.readouterr().out
    assert main(["frames", str(tmp_path / "nope.mp4"), str(tmp_path), "--label", "x"]) == 2
