"""Decode one image file safely: bytes in, an RGB image at a reduced scale out, or a clear reason.

One read of the file gives its SHA-256 and the bytes PIL decodes; one decode gives every
feature (data/image_features.py). The decoder never trusts the file:

- **Decompression bombs**: the size declared in the header is checked before any pixel is
  decoded; above ``max_pixels`` the file is an error ("decompression bomb: declared WxH
  exceeds limit of N pixels"), never a hang or a ``MemoryError``.
- **Truncated files** are errors even when the caller's process set PIL's
  ``ImageFile.LOAD_TRUNCATED_IMAGES`` (it is forced off while loading, then restored).
- **JPEG draft mode** (reduced-DCT decoding, libjpeg's 1/2, 1/4, 1/8 scaled IDCT): the largest
  reduction that keeps the short side >= ``min_side`` pixels. Other formats decode at scale 1.
- **EXIF orientation** is applied; ``width`` and ``height`` are the original pixel size after it.
- **Modes** become RGB without clipping: 16-bit and 32-bit gray are scaled to 0-255, images
  with an alpha channel (RGBA, LA, PA, P with a transparent colour) are composited over
  :data:`BACKGROUND`, 1-bit and palette images are expanded, CMYK and YCbCr are converted.
- **Animated** images (GIF, APNG, WebP, multi-page TIFF): the first frame; ``frames`` counts all.

Errors are raised as :class:`DecodeError` with a short reason and a ``transient`` flag (an
error that may go away without the file changing, such as a permission problem, is not cached).
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

# PIL's own default bomb limit (Image.MAX_IMAGE_PIXELS, 89.5 megapixels: a 9459x9459 RGB image,
# 256 MiB). Above it, a file is reported as a bomb instead of decoded.
MAX_PIXELS = 89_478_485
# Smallest short side kept by JPEG draft decoding: pHash works at 32 px and the descriptor at
# 16 px, the sharpness statistic at 128 px, and border lines need a few pixels per px of line.
MIN_DECODE_SIDE = 128
DRAFT_SCALES = (8, 4, 2, 1)  # the reductions libjpeg's scaled IDCT offers
# Alpha is composited over white: what browsers and most image viewers show, and fixed so that
# the same image always gives the same pixels.
BACKGROUND = (255, 255, 255)
_ORIENTATION_TAG = 0x0112
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


class DecodeError(Exception):
    """A file that cannot be analysed. ``reason`` is the text of the ``error`` column.

    ``transient`` is True for errors that can go away while the file's size and mtime stay the
    same (permission denied, vanished file, timeout): those are not cached.
    """

    def __init__(self, reason: str, *, transient: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.transient = transient


@dataclass(frozen=True)
class DecodedImage:
    """One decoded file.

    Attributes
    ----------
    image : PIL.Image.Image
        Mode ``RGB``, EXIF orientation applied, size about (width, height) / decode_scale.
    file_size : int
        Bytes.
    sha256 : str
        Hex SHA-256 of the file bytes.
    format, mode : str
        PIL format (``JPEG``, ``PNG``, ...) and the mode as stored (``RGB``, ``CMYK``, ``I;16``...).
    width, height : int
        Original pixel size after EXIF orientation.
    frames : int
        Number of frames (1 for a still image).
    decode_scale : int
        JPEG draft reduction used: 1, 2, 4 or 8.
    """

    image: Image.Image
    file_size: int
    sha256: str
    format: str
    mode: str
    width: int
    height: int
    frames: int
    decode_scale: int


def choose_decode_scale(width: int, height: int, *, min_side: int = MIN_DECODE_SIDE) -> int:
    """The largest of 8, 4, 2, 1 that keeps ``min(width, height) // scale >= min_side``."""
    short = min(width, height)
    for scale in DRAFT_SCALES:
        if short // scale >= min_side:
            return scale
    return 1


def read_file(path: str | bytes | os.PathLike) -> bytes:
    """All bytes of ``path``; OS errors become :class:`DecodeError` with a plain reason."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as error:
        raise DecodeError(os_error_reason(error), transient=True) from None


def os_error_reason(error: OSError) -> str:
    """A short, stable reason for an OS error on a file (no path: the row names the file)."""
    if error.errno == errno.ELOOP:
        return "symlink loop"
    if isinstance(error, PermissionError):
        return "permission denied (file not readable)"
    if isinstance(error, FileNotFoundError):
        return "file not found (or a broken symlink)"
    if isinstance(error, IsADirectoryError):
        return "is a folder, not a file"
    return f"cannot read file: {error.strerror or error}"


def decode_bytes(
    data: bytes, *, min_side: int = MIN_DECODE_SIDE, max_pixels: int = MAX_PIXELS
) -> DecodedImage:
    """Decode file bytes into a :class:`DecodedImage` (see the module docstring).

    Raises
    ------
    DecodeError
        Empty file, unrecognised format, decompression bomb, truncated or corrupt data.
    """
    if not data:
        raise DecodeError("empty file (0 bytes)")
    sha256 = hashlib.sha256(data).hexdigest()
    with warnings.catch_warnings():
        # The bomb check below reports oversized files with their declared size; PIL's own
        # check (a warning, or an error at twice its limit) is off while the header is read.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        previous_limit = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            image = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            raise DecodeError(
                "not a recognised image format (cannot identify image file)"
            ) from None
        except (OSError, SyntaxError, ValueError) as error:
            raise DecodeError(f"corrupt image header: {error}") from None
        finally:
            Image.MAX_IMAGE_PIXELS = previous_limit
        width, height = image.size
        if width * height > max_pixels:
            raise DecodeError(
                f"decompression bomb: declared {width}x{height} exceeds limit of "
                f"{max_pixels} pixels"
            )
        if width < 1 or height < 1:
            raise DecodeError(f"invalid declared size {width}x{height}")
        format_name, stored_mode = image.format or "", image.mode
        frames = int(getattr(image, "n_frames", 1) or 1)
        decode_scale = 1
        if format_name in ("JPEG", "MPO"):
            scale = choose_decode_scale(width, height, min_side=min_side)
            if scale > 1:
                result = image.draft(image.mode, (width // scale, height // scale))
                if result is not None:
                    decode_scale = max(1, round(width / result[1][2]))
        _load_strictly(image)
    orientation = _orientation(image)
    if orientation in _TRANSPOSE:
        image = image.transpose(_TRANSPOSE[orientation])
        if orientation >= 5:
            width, height = height, width
    return DecodedImage(
        image=to_rgb(image),
        file_size=len(data),
        sha256=sha256,
        format=format_name,
        mode=stored_mode,
        width=width,
        height=height,
        frames=frames,
        decode_scale=decode_scale,
    )


def decode_file(
    path: str | bytes | os.PathLike,
    *,
    min_side: int = MIN_DECODE_SIDE,
    max_pixels: int = MAX_PIXELS,
) -> DecodedImage:
    """Read and decode one file: :func:`read_file` then :func:`decode_bytes`."""
    return decode_bytes(read_file(path), min_side=min_side, max_pixels=max_pixels)


def _load_strictly(image: Image.Image) -> None:
    previous = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file is an error, whatever the caller set
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as error:
        message = str(error) or type(error).__name__
        if "truncated" in message.lower() or isinstance(error, EOFError):
            raise DecodeError(f"truncated image: {message}") from None
        raise DecodeError(f"corrupt image data: {message}") from None
    except MemoryError:
        raise DecodeError("out of memory while decoding") from None
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous


def _orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(_ORIENTATION_TAG, 1) or 1)
    except Exception:  # a corrupt EXIF block must not lose the image  # noqa: BLE001
        return 1


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL mode to RGB without clipping or dropping information silently.

    - ``I;16*``: 0-65535 scaled to 0-255 (divide by 257), not clipped.
    - ``I`` (32-bit int): kept if within 0-255, divided by 257 if within 0-65535 (a 16-bit PNG
      can open as ``I``), else min-max stretched. ``F``: 0-1 times 255, 0-255 kept, else stretched.
    - With alpha (``RGBA``, ``LA``, ``PA``, ``RGBa``, ``La``, ``P`` or ``L``/``RGB`` with a
      ``transparency`` colour): composited over :data:`BACKGROUND`.
    - Everything else (``1``, ``L``, ``P``, ``CMYK``, ``YCbCr``, ``LAB``, ``HSV``): PIL's
      ``convert("RGB")``.
    """
    mode = image.mode
    if mode == "RGB":
        return image
    if mode.startswith("I;16") or mode in ("I", "F"):
        return Image.fromarray(_scale_to_uint8(np.asarray(image), mode), mode="L").convert("RGB")
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*BACKGROUND, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _scale_to_uint8(values: np.ndarray, mode: str) -> np.ndarray:
    values = values.astype(np.float64)
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if mode.startswith("I;16") or (mode == "I" and low >= 0 and 255 < high <= 65535):
        scaled = values / 257.0  # the full 16-bit range onto 0-255
    elif mode == "F" and low >= 0 and high <= 1:
        scaled = values * 255.0  # a 0-1 float image
    elif low >= 0 and high <= 255:
        scaled = values
    else:
        scaled = (values - low) * (255.0 / max(high - low, 1e-12))  # unknown range: stretch
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
