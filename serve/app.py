"""The demo web app: one page, a JSON prediction API and a health check (Starlette).

Routes
------
``GET /``
    The page (serve/page.html): drop or choose a picture, see the top-3 classes with their
    probabilities and the Grad-CAM overlay. Self-contained: no external URLs, works offline.

``GET /health``
    ``200 {"status": "ok", "model": "export.pkl", "classes": ["blue", "red", ...],
    "max_upload_bytes": 10485760, "max_image_pixels": 40000000}``.

``POST /predict``
    Body: ``multipart/form-data`` with the image in the file field ``file``. Query options:
    ``top_k`` (integer ≥ 1, default 3, capped at the number of classes) and ``overlay``
    (``true``/``false``, default ``true``). Example::

        curl -F file=@frame.jpg 'http://127.0.0.1:8000/predict?top_k=3'

    ``200`` response::

        {"predictions": [{"label": "totoro", "probability": 0.91},
                         {"label": "spirited_away", "probability": 0.06},
                         {"label": "frozen", "probability": 0.01}],
         "overlay_png_base64": "iVBORw0KGgo...",
         "model": "export.pkl"}

    ``predictions`` is sorted by probability (softmax of the model's outputs, 0-1), most probable
    first. ``overlay_png_base64`` (absent when ``overlay=false``) is a PNG, base64-encoded, of the
    Grad-CAM heat map for the top class over the picture as the model saw it (after its own
    resize/crop); a page shows it as ``data:image/png;base64,...``.

    Errors are JSON ``{"error": CODE, "message": SENTENCE}`` with a 4xx status:

    ========================  ======  ====================================================
    code                      status  when
    ========================  ======  ====================================================
    ``not_multipart``         415     the body is not ``multipart/form-data``
    ``bad_form``              400     the multipart body cannot be parsed
    ``missing_file``          400     no file field named ``file``
    ``empty_file``            400     the file has 0 bytes
    ``too_large``             413     the upload is over ``max_upload_bytes`` (10 MiB)
    ``not_an_image``          415     no image format recognised
    ``corrupt_image``         400     a recognised image that is truncated or damaged
    ``too_many_pixels``       413     width × height over ``max_image_pixels`` (a
                                      decompression bomb guard, 40 MP)
    ``bad_parameter``         400     ``top_k`` or ``overlay`` malformed
    ========================  ======  ====================================================

    A refused upload never reaches the model; the server keeps serving.

Concurrency: the model is loaded once by :func:`create_app`. Decoding runs in worker threads in
parallel; the model runs in a worker thread under the predictor's lock, one picture at a time,
so the event loop stays free for other requests.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from serve.inference import (
    DEFAULT_MAX_IMAGE_PIXELS,
    DEFAULT_MAX_UPLOAD_BYTES,
    DEFAULT_TOP_K,
    Predictor,
    UploadError,
    decode_image,
)

LOGGER = logging.getLogger("serve")
PAGE_PATH = Path(__file__).with_name("page.html")
# Room for the multipart boundaries and part headers around the file itself.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
# The page may only talk to this server and show pictures it made itself (data:/blob: URLs).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; base-uri 'none'; form-action 'none'"
)


def error_response(error: UploadError) -> JSONResponse:
    """The JSON body and status for a refused request."""
    return JSONResponse({"error": error.code, "message": error.message}, error.status_code)


def parse_options(request: Request) -> tuple[int, bool]:
    """``top_k`` and ``overlay`` from the query string, or :class:`UploadError` 400."""
    raw_top_k = request.query_params.get("top_k", str(DEFAULT_TOP_K))
    try:
        top_k = int(raw_top_k)
    except ValueError:
        top_k = 0
    if top_k < 1:
        raise UploadError(
            400, "bad_parameter", f"top_k={raw_top_k!r}; expected a whole number ≥ 1, e.g. 3."
        )
    raw_overlay = request.query_params.get("overlay", "true").lower()
    choices = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
    if raw_overlay not in choices:
        raise UploadError(
            400, "bad_parameter", f"overlay={raw_overlay!r}; expected 'true' or 'false'."
        )
    return top_k, choices[raw_overlay]


async def limited_stream(
    stream: AsyncIterator[bytes], *, limit: int, max_upload_bytes: int
) -> AsyncIterator[bytes]:
    """Pass the request body through, refusing it (413) once more than ``limit`` bytes arrive.

    This holds for chunked uploads too, which carry no Content-Length to check up front.
    """
    total = 0
    async for chunk in stream:
        total += len(chunk)
        if total > limit:
            raise too_large(f"more than {total:,} bytes", max_upload_bytes)
        yield chunk


def too_large(size: str, max_upload_bytes: int) -> UploadError:
    return UploadError(
        413,
        "too_large",
        f"the upload is {size}; the limit is {max_upload_bytes:,} bytes "
        f"({max_upload_bytes / 2**20:.1f} MiB); upload a smaller image.",
    )


async def read_upload(request: Request, *, max_upload_bytes: int) -> tuple[str, bytes]:
    """The name and bytes of the multipart file field ``file``, within the byte limit."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise UploadError(
            415,
            "not_multipart",
            f"the request body is {content_type or 'untyped'!r}; send multipart/form-data with "
            "the image in the file field 'file' (curl -F file=@picture.jpg ...).",
        )
    limit = max_upload_bytes + MULTIPART_OVERHEAD_BYTES
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(f"{int(declared):,} bytes", max_upload_bytes)
    stream = limited_stream(request.stream(), limit=limit, max_upload_bytes=max_upload_bytes)
    parser = MultiPartParser(request.headers, stream, max_files=1, max_fields=16)
    try:
        form = await parser.parse()
    except MultiPartException as error:
        raise UploadError(400, "bad_form", f"the multipart body is malformed: {error}") from None
    try:
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise UploadError(
                400,
                "missing_file",
                f"no file field named 'file' (fields sent: {sorted(form.keys()) or 'none'}); "
                "send the image as multipart file field 'file'.",
            )
        data = await upload.read()
        name = upload.filename or "upload"
    finally:
        await form.close()
    if len(data) > max_upload_bytes:
        raise too_large(f"{len(data):,} bytes", max_upload_bytes)
    return name, data


def create_app(
    model_path: str | Path,
    *,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
    predictor: Predictor | None = None,
) -> Starlette:
    """Build the demo app around an exported fastai learner, loaded once, here.

    Parameters
    ----------
    model_path : str or Path
        The ``learn.export()`` file, e.g. ``models/export.pkl``.
    max_upload_bytes : int, keyword-only
        Largest accepted file, bytes (default 10 MiB); larger gets 413 ``too_large``.
    max_image_pixels : int, keyword-only
        Largest accepted width × height (default 40 MP); larger gets 413 ``too_many_pixels``.
    predictor : Predictor, optional, keyword-only
        An already loaded model for ``model_path`` (tests share one between apps).

    Returns
    -------
    starlette.applications.Starlette
        Routes ``/``, ``/health``, ``/predict``, documented in this module's docstring.

    Raises
    ------
    FileNotFoundError
        ``model_path`` does not exist.
    ValueError
        A limit is not positive.
    """
    if max_upload_bytes < 1 or max_image_pixels < 1:
        raise ValueError(
            f"max_upload_bytes={max_upload_bytes} and max_image_pixels={max_image_pixels} "
            "must both be positive."
        )
    predictor = predictor or Predictor(model_path)
    page = PAGE_PATH.read_text(encoding="utf-8")

    async def homepage(request: Request) -> HTMLResponse:
        return HTMLResponse(page, headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY})

    async def health(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "status": "ok",
                "model": predictor.model_path.name,
                "classes": predictor.classes,
                "max_upload_bytes": max_upload_bytes,
                "max_image_pixels": max_image_pixels,
            }
        )

    async def predict(request: Request) -> JSONResponse:
        try:
            top_k, overlay = parse_options(request)
            name, data = await read_upload(request, max_upload_bytes=max_upload_bytes)
            image = await run_in_threadpool(
                decode_image,
                data,
                max_pixels=max_image_pixels,
                name=name,
                min_side=predictor.input_side,
            )
        except UploadError as error:
            LOGGER.info("refused upload: %s %s", error.code, error.message)
            return error_response(error)
        try:
            result = await run_in_threadpool(predictor.predict, image, top_k=top_k, overlay=overlay)
        except Exception:
            LOGGER.exception("prediction failed for %r", name)
            return JSONResponse(
                {
                    "error": "prediction_failed",
                    "message": f"the model failed on {name!r}; the server log has the details.",
                },
                500,
            )
        return JSONResponse({**result.to_json(), "model": predictor.model_path.name})

    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        return JSONResponse(
            {"error": f"http_{error.status_code}", "message": str(error.detail)},
            error.status_code,
            headers=error.headers,
        )

    app = Starlette(
        routes=[
            Route("/", homepage, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
            Route("/predict", predict, methods=["POST"]),
        ],
        exception_handlers={HTTPException: http_error},
    )
    app.state.predictor = predictor
    return app
