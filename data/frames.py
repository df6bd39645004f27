"""Frames from a video: one every N seconds, resized, as JPEG, with scene cuts in the lineage.

The original project took a frame every 2 s at 700x400 with VLC. Frames of one shot are
near-duplicates, so each frame's scene is recorded as its ``group``
(``<video stem>/scene-NNN``) and a later ``split --by group`` keeps a scene on one side.

Scene cuts are found with a content-difference detector, the idea of PySceneDetect's
``ContentDetector``: every decoded frame is shrunk to a small HSV thumbnail and a cut is
declared where the mean absolute difference to the previous frame (0-255, averaged over
hue, saturation and value) exceeds ``scene_threshold``. Decoding uses PyAV (FFmpeg's
libraries in the wheel), so no system ffmpeg is needed.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from data.lineage import append_lineage

# PySceneDetect's ContentDetector default threshold (27 on its HSV delta scale).
SCENE_THRESHOLD = 27.0
THUMBNAIL_SIZE = (32, 18)  # px; enough for a content difference, cheap to compare
JPEG_QUALITY = 90


def frame_difference(previous: np.ndarray, current: np.ndarray) -> float:
    """Mean absolute difference of two HSV thumbnails, 0-255 (hue difference taken circularly).

    Parameters
    ----------
    previous, current : numpy.ndarray
        ``uint8`` HSV, shape ``(h, w, 3)``, the same shape.
    """
    delta = np.abs(previous.astype(np.int16) - current.astype(np.int16))
    delta[..., 0] = np.minimum(delta[..., 0], 256 - delta[..., 0])  # hue is an angle
    return float(delta.mean())


def hsv_thumbnail(image: Image.Image) -> np.ndarray:
    return np.asarray(image.resize(THUMBNAIL_SIZE, Image.BILINEAR).convert("HSV"))


def output_size(source: tuple[int, int], width: int | None, height: int | None) -> tuple[int, int]:
    """Target size: both given: exactly that; one: keep the aspect ratio; none: the source."""
    source_width, source_height = source
    if width and height:
        return width, height
    if width:
        return width, max(1, round(source_height * width / source_width))
    if height:
        return max(1, round(source_width * height / source_height)), height
    return source_width, source_height


def extract_frames(
    video: str | os.PathLike,
    out: str | os.PathLike,
    *,
    label: str,
    every: float = 2.0,
    width: int | None = None,
    height: int | None = None,
    scene_threshold: float = SCENE_THRESHOLD,
    progress: bool = True,
) -> pd.DataFrame:
    """Save one frame every ``every`` seconds as ``out/<label>/<stem>-NNNNN.jpg``.

    Parameters
    ----------
    video : path
        Any container/codec FFmpeg reads.
    out : path
        Dataset folder (label-folder layout); its lineage record gets one row per frame.
    label : str, keyword-only
        Class folder name.
    every : float
        Seconds between saved frames (> 0); the first is the first decoded frame.
    width, height : int, optional
        Output size in px; one of them keeps the aspect ratio; neither keeps the source size.
    scene_threshold : float
        Cut when the HSV thumbnail difference to the previous decoded frame exceeds this (0-255).
    progress : bool
        Show a tqdm bar over decoded frames.

    Returns
    -------
    pandas.DataFrame
        The lineage rows written: ``path`` (relative to ``out``), ``parent`` (""), ``group``
        (``<stem>/scene-NNN``, NNN from 001), ``origin`` ("frame"), ``operation`` ("frame"),
        ``source`` (the video path), ``time`` (seconds, float). ``attrs["cuts"]``: cut times.

    Raises
    ------
    ValueError
        The video cannot be opened or decoded, or has no video stream; the message names it.
    FileNotFoundError
        The video does not exist.
    """
    import av
    from tqdm import tqdm

    video, out = Path(video), Path(out)
    if every <= 0:
        raise ValueError(f"--every {every!r}: expected a positive number of seconds")
    if not label or "/" in label or label in (".", ".."):
        raise ValueError(f"--label {label!r}: expected a folder name (no '/')")
    if not video.is_file():
        raise FileNotFoundError(f"video {video} does not exist")
    try:
        container = av.open(str(video))
    except (av.FFmpegError, OSError) as error:
        raise ValueError(f"video {video} cannot be opened: {error}") from None
    rows, cuts = [], []
    with container:
        if not container.streams.video:
            raise ValueError(f"video {video} has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        total = stream.frames or None
        folder = out / label
        folder.mkdir(parents=True, exist_ok=True)
        previous, scene, next_time, index = None, 1, 0.0, 0
        bar = tqdm(total=total, disable=not progress, desc=video.name, unit="frame")
        try:
            for frame in container.decode(stream):
                bar.update(1)
                seconds = _frame_seconds(frame, stream, index)
                index += 1
                image = frame.to_image()
                thumbnail = hsv_thumbnail(image)
                if previous is not None and frame_difference(previous, thumbnail) > scene_threshold:
                    scene += 1
                    cuts.append(seconds)
                previous = thumbnail
                if seconds + 1e-6 < next_time:
                    continue
                next_time += every * max(1, int((seconds + 1e-6 - next_time) // every) + 1)
                size = output_size(image.size, width, height)
                name = f"{video.stem}-{len(rows) + 1:05d}.jpg"
                image.convert("RGB").resize(size, Image.LANCZOS).save(
                    folder / name, format="JPEG", quality=JPEG_QUALITY
                )
                rows.append(
                    {
                        "path": f"{label}/{name}",
                        "parent": "",
                        "group": f"{video.stem}/scene-{scene:03d}",
                        "origin": "frame",
                        "operation": "frame",
                        "source": str(video),
                        "time": round(seconds, 3),
                    }
                )
        except av.FFmpegError as error:
            raise ValueError(
                f"video {video} could not be decoded after {index} frames: {error}"
            ) from None
        finally:
            bar.close()
    if index == 0:
        raise ValueError(f"video {video}: no frames could be decoded")
    table = pd.DataFrame(rows)
    if len(table):
        append_lineage(out, table)
    table.attrs["cuts"] = cuts
    return table


def _frame_seconds(frame, stream, index: int) -> float:
    if frame.time is not None:
        return float(frame.time)
    if frame.pts is not None and stream.time_base is not None:
        return float(frame.pts * stream.time_base)
    rate = float(stream.average_rate or 25)
    return index / rate


def run(args) -> int:
    table = extract_frames(
        args.video,
        args.out,
        label=args.label,
        every=args.every,
        width=args.width,
        height=args.height,
        scene_threshold=args.scene_threshold,
    )
    scenes = table["group"].nunique() if len(table) else 0
    print(
        f"wrote {len(table)} frames of {args.video} into {Path(args.out) / args.label} "
        f"({scenes} scenes, {len(table.attrs['cuts'])} cuts); lineage in "
        f"{Path(args.out) / 'splitsafe-lineage.csv'}"
    )
    return 0


def register_command(subparsers) -> None:
    parser = subparsers.add_parser(
        "frames",
        help="save a frame every N seconds of a video, with scene cuts recorded as groups",
        description="Save one frame every --every seconds as OUT/LABEL/<video>-NNNNN.jpg "
        "(PyAV, no system ffmpeg), detect scene cuts (HSV content difference) and record "
        "each frame's video, time and scene (its group) in OUT/splitsafe-lineage.csv.",
    )
    parser.add_argument("video", help="video file")
    parser.add_argument("out", help="dataset folder to write into (label folders)")
    parser.add_argument(
        "--every",
        type=float,
        default=2.0,
        help="seconds between frames (default 2, as the original project)",
    )
    parser.add_argument("--width", type=int, default=None, help="output width in px")
    parser.add_argument(
        "--height",
        type=int,
        default=None,
        help="output height in px (with --width: exact size, e.g. 700x400)",
    )
    parser.add_argument("--label", required=True, help="class folder name for the frames")
    parser.add_argument(
        "--scene-threshold",
        type=float,
        default=SCENE_THRESHOLD,
        help=f"cut when the HSV difference (0-255) exceeds this "
        f"(default {SCENE_THRESHOLD:g}, PySceneDetect's)",
    )
    parser.set_defaults(run=run)
