"""``python -m serve --model models/export.pkl [--port 8000] [--host 127.0.0.1]``: the live demo.

Loads the exported fastai learner once, then serves the page at ``/``, the JSON API at
``POST /predict`` and ``GET /health`` (see :mod:`serve.app`) with uvicorn.
"""

from __future__ import annotations

import argparse
import sys

from serve.inference import DEFAULT_MAX_IMAGE_PIXELS, DEFAULT_MAX_UPLOAD_BYTES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m serve",
        description="Serve the demo page and JSON API for an exported fastai classifier: upload a "
        "picture, get the top-3 classes and a Grad-CAM overlay.",
        epilog="API: POST /predict (multipart file field 'file'; ?top_k=3&overlay=true), "
        "GET /health. Example: curl -F file=@frame.jpg http://127.0.0.1:8000/predict",
    )
    parser.add_argument(
        "--model",
        required=True,
        metavar="PATH",
        help="the learner exported by `python -m train` (learn.export), e.g. models/export.pkl; "
        "a pickle, so load only files you trust",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (%(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (%(default)s)")
    parser.add_argument(
        "--max-upload-bytes",
        type=int,
        default=DEFAULT_MAX_UPLOAD_BYTES,
        metavar="N",
        help="largest accepted upload in bytes; larger gets 413 (%(default)s = 10 MiB)",
    )
    parser.add_argument(
        "--max-image-pixels",
        type=int,
        default=DEFAULT_MAX_IMAGE_PIXELS,
        metavar="N",
        help="largest accepted width x height; larger gets 413, a decompression-bomb guard "
        "(%(default)s)",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn log level (%(default)s)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import uvicorn

    from serve.app import create_app

    try:
        app = create_app(
            args.model,
            max_upload_bytes=args.max_upload_bytes,
            max_image_pixels=args.max_image_pixels,
        )
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"serving {args.model} at http://{args.host}:{args.port}/", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
