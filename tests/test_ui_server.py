"""The assistant's HTTP API, through Flask's test client: results equal the Predictor's, uploads
stay in memory and out of the logs, and every malformed request gets a 4xx JSON message."""
import base64
import io
import logging
import wave

import cv2
import numpy as np
import pytest
from corner_model import corner_image, export_corner_model, png_bytes

from paddle_dx.ui.speech import Speech, is_normal_class, sentence
from paddle_dx.ui.uploads import UploadLimits


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return export_corner_model(tmp_path_factory.mktemp("ui_server"))[1]


@pytest.fixture(scope="module")
def assistant(exported):
    from paddle_dx.ui.server import build_assistant
    return build_assistant(exported, limits=UploadLimits(max_file_bytes=2_000_000, max_pixels=1_000_000, max_files=3))


@pytest.fixture
def client(assistant):
    from paddle_dx.ui.server import create_app
    return create_app(assistant).test_client()


def _post(client, files, query=""):
    data = {"images": [(io.BytesIO(b), name) for name, b in files]}
    return client.post("/api/predict" + query, data=data, content_type="multipart/form-data")


def _decode_data_url(url):
    assert url.startswith("data:image/png;base64,")
    buf = np.frombuffer(base64.b64decode(url.split(",", 1)[1]), np.uint8)
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


def test_page_and_info(client):
    page = client.get("/")
    assert page.status_code == 200 and b"This is an aid, not a diagnosis." in page.data
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    for asset in ("/static/app.js", "/static/style.css"):
        assert client.get(asset).status_code == 200
    assert b"http" not in page.data.replace(b"http-equiv", b"")  # no CDN or remote resource
    info = client.get("/api/info").get_json()
    assert info["class_names"] == ["plain", "corner"] and info["gradcam"] is True
    assert info["limits"]["max_files"] == 3


def test_predict_matches_predictor_with_gradcam_and_preview(client, assistant):
    rng = np.random.default_rng(11)
    images = [corner_image(1, rng), corner_image(0, rng)]
    res = _post(client, [(f"img{i}.png", png_bytes(im)) for i, im in enumerate(images)], "?gradcam=1&preview=1")
    assert res.status_code == 200, res.get_json()
    results = res.get_json()["results"]
    expected = assistant.predictor.predict(images)
    for got, want, img in zip(results, expected, images):
        assert got["class_name"] == want["class_name"]
        assert got["probs"] == pytest.approx(want["probs"], abs=1e-7)
        assert got["sentence"].endswith("This is an aid, not a diagnosis.")
        assert _decode_data_url(got["preview_png"]).shape == img.shape
        assert _decode_data_url(got["gradcam_png"]).shape == (64, 64, 3)
    plain = _post(client, [("a.png", png_bytes(images[0]))]).get_json()["results"][0]
    assert "gradcam_png" not in plain and "preview_png" not in plain  # only when asked


def test_dicom_is_decoded_from_memory_by_content(client, assistant):
    from pydicom.data import get_testdata_file

    from paddle_dx.data.io import read_image
    path = get_testdata_file("CT_small.dcm")
    data = open(path, "rb").read()
    res = _post(client, [("scan_without_extension", data)])
    assert res.status_code == 200, res.get_json()
    want = assistant.predictor.predict([read_image(path)])[0]
    assert res.get_json()["results"][0]["probs"] == pytest.approx(want["probs"], abs=1e-7)


def test_uploads_never_touch_the_disk(client, monkeypatch):
    import tempfile

    import werkzeug.formparser as formparser

    def no_disk(*args, **kwargs):
        raise AssertionError("upload spooled to a temporary file")
    for name in ("SpooledTemporaryFile", "TemporaryFile", "NamedTemporaryFile", "mkstemp"):
        monkeypatch.setattr(tempfile, name, no_disk)
        monkeypatch.setattr(formparser, name, no_disk, raising=False)
    rng = np.random.default_rng(0)
    big = rng.integers(0, 255, (700, 700, 3), dtype=np.uint8)  # ~1.5 MB PNG: above Werkzeug's 500 kB spool
    data = png_bytes(big)
    assert len(data) > 600_000
    assert _post(client, [("big.png", data)]).status_code == 200


def test_uploads_are_not_logged(client, caplog):
    caplog.set_level(logging.DEBUG)
    name = "Jane_Doe_1957_secret.png"
    res = _post(client, [(name, png_bytes(corner_image(1, np.random.default_rng(1))))])
    assert res.status_code == 200
    assert "Jane_Doe" not in caplog.text
    bad = _post(client, [(name, b"not an image at all")])
    assert bad.status_code == 415 and "Jane_Doe" not in caplog.text


@pytest.mark.parametrize("case, status, words", [
    ("empty body", 400, "field 'images'"),
    ("wrong field", 400, "got field(s) ['file']"),
    ("not an image", 415, "not a decodable image"),
    ("file too large", 413, "above the limit of 2,000,000"),
    ("too many pixels", 413, "pixels, above the limit of 1,000,000"),
    ("request too large", 413, "upload too large"),
    ("too many files", 413, "at most 3 per request"),
    ("GET", 405, "method"),
])
def test_malformed_requests_get_4xx_json(client, case, status, words):
    tiny = png_bytes(np.zeros((8, 8, 3), np.uint8))
    if case == "empty body":
        res = client.post("/api/predict")
    elif case == "wrong field":
        res = client.post("/api/predict", data={"file": (io.BytesIO(tiny), "a.png")},
                          content_type="multipart/form-data")
    elif case == "not an image":
        res = _post(client, [("notes.png", b"%PDF-1.4 this is not a PNG")])
    elif case == "file too large":
        res = _post(client, [("big.png", b"\x89PNG" + b"0" * 2_100_000)])
    elif case == "too many pixels":  # a small file that declares 2000 x 2000 pixels
        res = _post(client, [("bomb.png", png_bytes(np.zeros((2000, 2000, 3), np.uint8)))])
    elif case == "request too large":
        res = _post(client, [(f"{i}.png", b"0" * 1_900_000) for i in range(4)])
    elif case == "too many files":
        res = _post(client, [(f"{i}.png", tiny) for i in range(4)])
    else:
        res = client.get("/api/predict")
    assert res.status_code == status, (case, res.data[:300])
    body = res.get_json()
    assert words.lower() in body["error"].lower(), body
    assert b"Traceback" not in res.data


def test_one_bad_file_among_good_ones_is_reported_not_fatal(client):
    good = png_bytes(corner_image(1, np.random.default_rng(2)))
    results = _post(client, [("good.png", good), ("bad.png", b"garbage")]).get_json()["results"]
    assert results[0]["class_name"] in ("plain", "corner")
    assert results[1] == {"name": "bad.png", "error": "not a decodable image: the content is not PNG, JPEG, BMP, TIFF, WebP or DICOM"}


def test_unexpected_failure_is_a_json_500_without_details(client, assistant, monkeypatch):
    def boom(images):
        raise RuntimeError("secret internals")
    monkeypatch.setattr(assistant.predictor, "predict", boom)
    res = _post(client, [("a.png", png_bytes(corner_image(0, np.random.default_rng(3))))])
    assert res.status_code == 500
    assert "error" in res.get_json() and b"secret internals" not in res.data and b"Traceback" not in res.data


def test_speak_returns_a_playable_wav(client, assistant):
    if not assistant.speech.available:
        pytest.skip("espeak-ng is not installed (.ci/system_deps.sh installs it)")
    res = client.post("/api/speak", json={"class_name": "corner", "probability": 0.93})
    assert res.status_code == 200 and res.mimetype == "audio/wav"
    with wave.open(io.BytesIO(res.data)) as w:
        seconds = w.getnframes() / w.getframerate()
    assert 2 < seconds < 20  # the header states the real length (espeak-ng's own says ~2 GB)
    for body in ({"class_name": "nope", "probability": 0.5}, {"class_name": "corner", "probability": 7},
                 {"class_name": "corner", "probability": True}):
        assert client.post("/api/speak", json=body).status_code == 400
    assert client.post("/api/speak", data="x", content_type="text/plain").status_code == 400


def test_without_speech_the_page_is_told_and_speak_is_503(exported):
    from paddle_dx.ui.server import Assistant, create_app
    from paddle_dx.inference import Predictor
    speech = Speech()
    speech.binary = None
    app = create_app(Assistant(Predictor(exported), speech=speech)).test_client()
    info = app.get("/api/info").get_json()
    assert info["speech"] is False and "espeak-ng" in info["speech_message"]
    assert info["gradcam"] is False
    res = app.post("/api/speak", json={"class_name": "corner", "probability": 0.5})
    assert res.status_code == 503 and "unavailable" in res.get_json()["error"]


@pytest.mark.parametrize("name, normal", [("normal", True), ("normal-cecum", True), ("no_tumor", True),
                                          ("lung_n", True), ("Healthy", True), ("polyp", False),
                                          ("glioma_tumor", False), ("lung_aca", False), ("nodule", False)])
def test_normal_classes_are_spoken_as_no_abnormality(name, normal):
    assert is_normal_class(name) is normal


def test_sentences():
    assert sentence("esophageal_cancer", 0.934) == ("Esophageal cancer suspected, probability 93 percent. "
                                                    "This is an aid, not a diagnosis.")
    assert sentence("normal", 0.97).startswith("No abnormality detected, probability 97 percent.")
    assert sentence("lung_aca", 0.5, {"lung_aca": "Lung adenocarcinoma suspected"}).startswith(
        "Lung adenocarcinoma suspected, probability 50 percent.")
