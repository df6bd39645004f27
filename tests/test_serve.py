"""The demo web app (serve/): the JSON API with an HTTP client, bad uploads, concurrency, CLI.

The model is a tiny fastai learner (resnet18, random weights, one epoch on generated colour
squares) exported once per session: the point is the plumbing, not the accuracy.
"""

from __future__ import annotations

import asyncio
import base64
import io
import re
import struct
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CLASS_COLOURS = {
    "blue": (30, 30, 200),
    "green": (30, 190, 40),
    "red": (200, 30, 30),
    "yellow": (220, 210, 40),
}


def export_tiny_learner(folder: Path, *, per_class: int = 6, side: int = 32) -> Path:
    """Train a resnet18 (random init) one epoch on colour squares; return the exported file."""
    from fastai.vision.all import ImageDataLoaders, Resize, resnet18, vision_learner

    images = folder / "images"
    rng = np.random.default_rng(0)
    for label, colour in CLASS_COLOURS.items():
        (images / label).mkdir(parents=True, exist_ok=True)
        for number in range(per_class):
            noise = rng.normal(0, 25, (side, side, 3))
            pixels = np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(images / label / f"{number}.png")
    loaders = ImageDataLoaders.from_folder(
        images, valid_pct=0.25, seed=0, item_tfms=Resize(side), bs=4, num_workers=0
    )
    learner = vision_learner(loaders, resnet18, pretrained=False)
    with learner.no_bar(), learner.no_logging():
        learner.fit(1)
    learner.export(folder / "export.pkl")
    return folder / "export.pkl"


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def colour_square(colour=(200, 30, 30), *, size=(48, 40)) -> bytes:
    return png_bytes(Image.new("RGB", size, colour))


def png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature and header claiming ``width × height`` gray pixels, with a tiny body.

    The shape of a decompression bomb: a few hundred bytes that would decode to gigabytes.
    """

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    body = zlib.compress(b"\x00" * 4096)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )


def shared_tiny_learner(tmp_path_factory) -> Path:
    """The tiny exported learner, trained once per test session and shared by the serve tests."""
    folder = tmp_path_factory.getbasetemp() / "serve-model"
    if not (folder / "export.pkl").is_file():
        export_tiny_learner(folder)
    return folder / "export.pkl"


@pytest.fixture(scope="session")
def model_path(tmp_path_factory) -> Path:
    return shared_tiny_learner(tmp_path_factory)


@pytest.fixture(scope="session")
def predictor(model_path):
    from serve.inference import Predictor

    return Predictor(model_path)


@pytest.fixture(scope="session")
def client(model_path, predictor):
    from starlette.testclient import TestClient

    from serve.app import create_app

    with TestClient(create_app(model_path, predictor=predictor)) as test_client:
        yield test_client


def post_image(client, data: bytes, *, name="picture.png", query=""):
    return client.post(f"/predict{query}", files={"file": (name, data, "image/png")})


def test_health_names_the_model_and_its_classes(client):
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["model"] == "export.pkl"
    assert body["classes"] == sorted(CLASS_COLOURS)


def test_page_has_a_file_input_and_no_external_urls(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    page = response.text
    assert re.search(r'<input[^>]+type="file"', page)
    assert 'id="overlay"' in page
    external = re.findall(r"""(?:src|href|url)\s*[=(]\s*["']?(?:https?:)?//""", page)
    assert external == [], f"the page must work offline; it links {external}"


def test_predict_returns_top_three_sorted_probabilities_and_a_png_overlay(client):
    response = post_image(client, colour_square())
    assert response.status_code == 200, response.text
    body = response.json()
    predictions = body["predictions"]
    assert len(predictions) == 3
    labels = [item["label"] for item in predictions]
    assert len(set(labels)) == 3 and set(labels) <= set(CLASS_COLOURS)
    probabilities = [item["probability"] for item in predictions]
    assert probabilities == sorted(probabilities, reverse=True)
    assert all(0.0 <= value <= 1.0 for value in probabilities)
    assert sum(probabilities) <= 1.0 + 1e-5
    overlay = Image.open(io.BytesIO(base64.b64decode(body["overlay_png_base64"])))
    assert overlay.format == "PNG" and overlay.width > 0 and overlay.height > 0
    assert body["model"] == "export.pkl"


def test_predict_options_all_classes_sum_to_one_and_no_overlay(client):
    response = post_image(client, colour_square(), query="?top_k=10&overlay=false")
    assert response.status_code == 200, response.text
    body = response.json()
    assert "overlay_png_base64" not in body
    assert sorted(item["label"] for item in body["predictions"]) == sorted(CLASS_COLOURS)
    assert sum(item["probability"] for item in body["predictions"]) == pytest.approx(1.0, abs=1e-4)


def test_api_agrees_with_the_predictor_and_accepts_other_formats(client, predictor):
    from serve.inference import decode_image

    picture = Image.new("RGB", (64, 64), CLASS_COLOURS["green"])
    expected = predictor.predict(decode_image(png_bytes(picture)), overlay=False).predictions
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=100)
    response = client.post("/predict", files={"file": ("g.jpg", buffer.getvalue(), "image/jpeg")})
    assert response.status_code == 200
    assert response.json()["predictions"][0]["label"] == expected[0].label


def test_decode_image_composes_transparency_on_white_and_reads_16_bit():
    from serve.inference import decode_image

    transparent = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    decoded = decode_image(png_bytes(transparent))
    assert decoded.mode == "RGB" and decoded.getpixel((0, 0)) == (255, 255, 255)
    ramp = Image.fromarray(np.arange(16 * 16, dtype=np.uint16).reshape(16, 16) * 200)
    decoded = decode_image(png_bytes(ramp.convert("I;16")))
    assert decoded.mode == "RGB" and decoded.size == (16, 16)
    assert decoded.getpixel((0, 0)) == (0, 0, 0) and decoded.getpixel((15, 15)) == (255, 255, 255)


def test_decode_image_reads_a_large_jpeg_at_a_reduced_scale_for_a_small_model():
    from serve.inference import decode_image

    buffer = io.BytesIO()
    Image.new("RGB", (1600, 1200), (10, 200, 30)).save(buffer, format="JPEG")
    assert decode_image(buffer.getvalue()).size == (1600, 1200)
    reduced = decode_image(buffer.getvalue(), min_side=224)
    assert reduced.size == (400, 300) and reduced.mode == "RGB"


@pytest.fixture(scope="module")
def strict_client(model_path, predictor):
    """An app with small limits, sharing the loaded model."""
    from starlette.testclient import TestClient

    from serve.app import create_app

    app = create_app(
        model_path, predictor=predictor, max_upload_bytes=20_000, max_image_pixels=10_000
    )
    with TestClient(app) as test_client:
        yield test_client


def noise_png(side: int) -> bytes:
    pixels = np.random.default_rng(1).integers(0, 256, (side, side, 3), dtype=np.uint8)
    return png_bytes(Image.fromarray(pixels))


BAD_UPLOADS = {
    "not an image": (b"%PDF-1.4 this is not a picture\n" * 20, 415, "not_an_image"),
    "empty": (b"", 400, "empty_file"),
    "too many bytes": (noise_png(120), 413, "too_large"),  # about 43 kB > 20 kB
    "bomb over PIL's own limit": (png_header_only(100_000, 100_000), 413, "too_many_pixels"),
    "over the configured pixel limit": (png_header_only(200, 100), 413, "too_many_pixels"),
    "truncated": (noise_png(64)[:600], 400, "corrupt_image"),
}


@pytest.mark.parametrize("case", list(BAD_UPLOADS))
def test_bad_upload_gets_a_clear_4xx_and_the_server_keeps_serving(strict_client, case):
    data, status, code = BAD_UPLOADS[case]
    response = post_image(strict_client, data, name="bad.png")
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code
    assert "bad.png" in body["message"] or "limit" in body["message"]
    good = post_image(strict_client, colour_square(size=(60, 60)))
    assert good.status_code == 200 and len(good.json()["predictions"]) == 3


def test_chunked_upload_without_length_is_cut_off_at_the_limit(strict_client):
    boundary = "splitsafe-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()

    def body():
        yield head
        for _ in range(100):  # 100 × 4 kB = 400 kB, never announced in a header
            yield b"\xff" * 4096
        yield f"\r\n--{boundary}--\r\n".encode()

    response = strict_client.post(
        "/predict",
        content=body(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"


@pytest.mark.parametrize(
    ("request_options", "status", "code"),
    [
        ({"json": {"file": "picture.png"}}, 415, "not_multipart"),
        ({"data": {"picture": "x"}, "files": {"other": ("a.png", b"x")}}, 400, "missing_file"),
        ({"files": {"file": ("a.png", colour_square())}, "params": {"top_k": "0"}}, 400, None),
        (
            {"files": {"file": ("a.png", colour_square())}, "params": {"overlay": "maybe"}},
            400,
            None,
        ),
    ],
    ids=["json body", "no file field", "top_k zero", "overlay word"],
)
def test_malformed_requests_are_refused_with_json(client, request_options, status, code):
    response = client.post("/predict", **request_options)
    assert response.status_code == status, response.text
    assert response.json()["error"] == (code or "bad_parameter")
    assert client.get("/predict").json()["error"] == "http_405"


def test_concurrent_requests_all_succeed_off_the_event_loop_with_the_same_answer(
    model_path, predictor
):
    import httpx

    from serve.app import create_app

    threads_seen = set()
    original = predictor.predict

    def recording_predict(*args, **kwargs):
        threads_seen.add(threading.get_ident())
        return original(*args, **kwargs)

    predictor.predict = recording_predict
    app = create_app(model_path, predictor=predictor)
    picture = colour_square(CLASS_COLOURS["yellow"], size=(50, 50))

    async def many() -> tuple[list, int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            requests = [
                http.post("/predict", files={"file": (f"{n}.png", picture, "image/png")})
                for n in range(8)
            ]
            return await asyncio.gather(*requests), threading.get_ident()

    try:
        responses, loop_thread = asyncio.run(many())
    finally:
        del predictor.predict
    assert [response.status_code for response in responses] == [200] * 8
    bodies = [response.json() for response in responses]
    assert all(body["predictions"] == bodies[0]["predictions"] for body in bodies)
    assert all(body["overlay_png_base64"] == bodies[0]["overlay_png_base64"] for body in bodies)
    assert threads_seen and loop_thread not in threads_seen


def test_command_line_help_and_a_missing_model(capsys, tmp_path):
    from serve.__main__ import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "--model" in capsys.readouterr().out
    assert main(["--model", str(tmp_path / "missing.pkl")]) == 2
    assert "missing.pkl" in capsys.readouterr().err
