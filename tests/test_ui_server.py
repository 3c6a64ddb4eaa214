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


@pytest.mark.parametrize(
    "case, status, words",
    [
        ("empty body", 400, "field 'images'"),
        ("wrong field", 400, "got field(s) ['file']"),
        ("not an image", 415, "not a decodable image"),
        ("file too large", 413, "above the limit of 2,000,000"),
        ("too many pixels", 413, "pixels, above the limit of 1,000,000"),
        ("request too large", 413, "upload too large"),
        ("too many files", 413, "at most 3 per request"),
        ("GET", 405, "method"),
    ],
)
def test_malformed_requests_get_4xx_json(client, case, status, words):
    tiny = png_bytes(np.zeros((8, 8, 3), np.uint8))
    if case == "empty body":
        res = client.post("/api/predict")
    elif case == "wrong field":
        res = client.post(
            "/api/predict", data={"file": (io.BytesIO(tiny), "a.png")}, content_type="multipart/form-data"
        )
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
    assert results[1] == {
        "name": "bad.png",
        "error": "not a decodable image: the content is not PNG, JPEG, BMP, TIFF, WebP or DICOM",
    }


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
    for body in (
        {"class_name": "nope", "probability": 0.5},
        {"class_name": "corner", "probability": 7},
        {"class_name": "corner", "probability": True},
    ):
        assert client.post("/api/speak", json=body).status_code == 400
    assert client.post("/api/speak", data="x", content_type="text/plain").status_code == 400


def test_without_speech_the_page_is_told_and_speak_is_503(exported):
    from paddle_dx.inference import Predictor
    from paddle_dx.ui.server import Assistant, create_app

    speech = Speech()
    speech.binary = None
    app = create_app(Assistant(Predictor(exported), speech=speech)).test_client()
    info = app.get("/api/info").get_json()
    assert info["speech"] is False and "espeak-ng" in info["speech_message"]
    assert info["gradcam"] is False
    res = app.post("/api/speak", json={"class_name": "corner", "probability": 0.5})
    assert res.status_code == 503 and "unavailable" in res.get_json()["error"]


@pytest.mark.parametrize(
    "name, normal",
    [
        ("normal", True),
        ("normal-cecum", True),
        ("no_tumor", True),
        ("lung_n", True),
        ("Healthy", True),
        ("polyp", False),
        ("glioma_tumor", False),
        ("lung_aca", False),
        ("nodule", False),
    ],
)
def test_normal_classes_are_spoken_as_no_abnormality(name, normal):
    assert is_normal_class(name) is normal


def test_sentences():
    assert sentence("esophageal_cancer", 0.934) == (
        "Esophageal cancer suspected, probability 93 percent. This is an aid, not a diagnosis."
    )
    assert sentence("normal", 0.97).startswith("No abnormality detected, probability 97 percent.")
    assert sentence("lung_aca", 0.5, {"lung_aca": "Lung adenocarcinoma suspected"}).startswith(
        "Lung adenocarcinoma suspected, probability 50 percent."
    )


# ---- hostile clients: other sites, slow bodies, odd forms, malformed DICOM ----------------


def header_only_png(width, height):
    """A PNG whose header claims ``width`` x ``height`` RGB pixels (the pixel data is a stub)."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def dicom_bytes(edit=None, replace=None):
    """pydicom's CT_small.dcm after ``edit(ds)``, with ``replace`` = (old, new) applied to its bytes."""
    import pydicom
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    if edit:
        edit(ds)
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=False)
    data = buf.getvalue()
    if replace:
        assert data.count(replace[0]) == 1
        data = data.replace(*replace)
    return data


def unknown_transfer_syntax(ds):
    ds.file_meta.TransferSyntaxUID = "1.2.3.4.5.6.7"


def zero_rows(ds):
    ds.Rows = 0


def frames_placeholder(ds):
    ds.NumberOfFrames = "12345678"  # then replaced by bytes that are not an integer


@pytest.mark.parametrize(
    "headers, status, words",
    [
        ({"Origin": "http://evil.example"}, 403, "cross-site request refused"),
        ({"Origin": "null"}, 403, "cross-site request refused"),
        ({"Origin": "http://localhost:9999"}, 403, "cross-site request refused"),  # another local port
        ({"Host": "evil.example"}, 403, "is not this server"),  # DNS rebinding
        ({"Host": "evil.example", "Origin": "http://evil.example"}, 403, "is not this server"),
        ({"Origin": "http://localhost"}, 200, None),  # the page itself
        ({}, 200, None),  # scripts (curl) send no Origin
        ({"Host": "127.0.0.1:8050", "Origin": "http://127.0.0.1:8050"}, 200, None),
    ],
)
def test_posts_from_other_sites_and_foreign_host_names_are_refused(client, headers, status, words):
    png = png_bytes(corner_image(1, np.random.default_rng(4)))
    res = client.post(
        "/api/predict",
        data={"images": [(io.BytesIO(png), "a.png")]},
        content_type="multipart/form-data",
        headers=headers,
    )
    assert res.status_code == status, res.get_json()
    if words:
        assert words in res.get_json()["error"]


def test_foreign_host_is_refused_on_get_and_any_host_when_bound_to_all_addresses(assistant):
    from paddle_dx.ui.server import create_app

    local = create_app(assistant).test_client()
    assert local.get("/api/info", headers={"Host": "rebound.example:8050"}).status_code == 403
    proxied = create_app(assistant, allowed_hosts=["dx.hospital.example"]).test_client()
    assert proxied.get("/api/info", headers={"Host": "dx.hospital.example"}).status_code == 200
    everywhere = create_app(assistant, host="0.0.0.0").test_client()
    assert everywhere.get("/api/info", headers={"Host": "10.0.0.5:8050"}).status_code == 200
    res = everywhere.post("/api/speak", json={}, headers={"Host": "10.0.0.5:8050", "Origin": "http://evil.example"})
    assert res.status_code == 403


def test_a_form_with_too_many_parts_is_told_so(client):
    data = {f"field{i}": "x" for i in range(1001)}
    res = client.post("/api/predict", data=data, content_type="multipart/form-data")
    assert res.status_code == 413
    error = res.get_json()["error"]
    assert error.startswith("too many form parts: at most 19") and "at most 3 files" not in error


@pytest.mark.parametrize(
    "name, data, words",
    [
        ("claims.png", header_only_png(50000, 50000), "image is 50000x50000 pixels, above the limit"),
        ("syntax.dcm", dicom_bytes(unknown_transfer_syntax), "unknown DICOM transfer syntax '1.2.3.4.5.6.7'"),
        ("rows.dcm", dicom_bytes(zero_rows), "DICOM declares 128x0 pixels: no image to decode"),
        (
            "frames.dcm",
            dicom_bytes(frames_placeholder, (b"12345678", b"SECRET12")),
            "DICOM header with a malformed image size",
        ),
    ],
    ids=["png-header-50000px", "dicom-unknown-transfer-syntax", "dicom-rows-0", "dicom-bad-integer"],
)
def test_hostile_files_are_per_file_errors_not_500(client, monkeypatch, name, data, words):
    from PIL import Image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 89_478_485)  # PIL's default, as in a freshly started server
    good = png_bytes(corner_image(0, np.random.default_rng(5)))
    res = _post(client, [("good.png", good), (name, data)])
    assert res.status_code == 200, res.get_json()
    results = res.get_json()["results"]
    assert results[0]["class_name"] in ("plain", "corner")
    assert results[1]["name"] == name and words in results[1]["error"]
    alone = _post(client, [(name, data)])
    assert alone.status_code in (413, 415) and words in alone.get_json()["error"]


def test_header_values_of_an_upload_stay_out_of_logs_and_warnings(client, caplog, recwarn, capfd):
    caplog.set_level(logging.DEBUG)
    res = _post(client, [("frames.dcm", dicom_bytes(frames_placeholder, (b"12345678", b"SECRET12")))])
    assert res.status_code == 415
    assert "SECRET12" not in caplog.text and "SECRET12" not in res.get_data(as_text=True)
    assert not [w for w in recwarn if "SECRET12" in str(w.message)]
    out, err = capfd.readouterr()
    assert "SECRET12" not in out + err


@pytest.fixture
def live_server(assistant):
    """A real server on a free port with a 4 s read timeout and room for 2 connections."""
    import threading

    from paddle_dx.ui.server import make_app_server

    server = make_app_server(assistant, "127.0.0.1", 0, timeout=4, max_connections=2)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _stalled_upload(port):
    """A connection that sends headers and part of a body, then nothing."""
    import socket

    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    sock.sendall(
        b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; "
        b"boundary=b\r\nContent-Length: 100000\r\n\r\n--b\r\nContent-Disposition: form-data; "
        b'name="images"; filename="a.png"\r\n\r\n\x89PNG'
    )
    return sock


def _read_all(sock):
    chunks = []
    while True:
        data = sock.recv(65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def test_connections_that_never_finish_are_dropped_and_bounded(live_server):
    import urllib.request

    port = live_server.server_port
    stalled = [_stalled_upload(port) for _ in range(2)]
    extra = _stalled_upload(port)  # beyond max_connections: refused at once, holds no thread
    assert _read_all(extra).startswith(b"HTTP/1.1 503")
    for sock in stalled:  # the read timeout ends each stalled upload (recv would block forever without it)
        reply = _read_all(sock)
        assert reply.startswith(b"HTTP/1.1 408") and b"stopped arriving" in reply, reply[:300]
        sock.close()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/info", timeout=60) as res:
        assert res.status == 200  # the slots were given back


@pytest.mark.parametrize(
    "flag, value",
    [
        ("--max-files", "0"),
        ("--max-file-mb", "-1"),
        ("--max-megapixels", "0"),
        ("--max-file-mb", "nan"),
        ("--port", "70000"),
    ],
)
def test_serve_tool_refuses_limits_that_cannot_work(tmp_path, monkeypatch, capsys, flag, value):
    import runpy
    import sys

    from conftest import ROOT

    monkeypatch.setattr(sys, "argv", ["serve.py", "--model-dir", str(tmp_path), flag, value])
    with pytest.raises(SystemExit) as exc:
        runpy.run_path(str(ROOT / "tools" / "serve.py"), run_name="__main__")
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert err.startswith(f"error: {flag} ") and " is out of range: accepted > " in err
    assert err.count("\n") == 1


def test_infer_tool_skips_a_bad_dicom_and_exits_2_when_nothing_was_predicted(exported, tmp_path, monkeypatch, capsys):
    import runpy
    import sys

    from conftest import ROOT

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "syntax.dcm").write_bytes(dicom_bytes(unknown_transfer_syntax))
    (folder / "rows.dcm").write_bytes(dicom_bytes(zero_rows))
    monkeypatch.setattr(sys, "argv", ["infer.py", "--model-dir", str(exported), "--input", str(folder)])
    with pytest.raises(SystemExit) as exc:
        runpy.run_path(str(ROOT / "tools" / "infer.py"), run_name="__main__")
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "Traceback" not in err
    assert "unknown DICOM transfer syntax" in err and "DICOM declares 128x0 pixels" in err
    assert err.strip().splitlines()[-1] == f"error: {folder}: no image could be predicted (2 unreadable, listed above)"


def test_a_request_whose_images_add_up_past_the_pixel_budget_refuses_the_one_that_passes_it():
    """Each file inside the per-image limit still counts toward the request's decoded pixels."""
    from paddle_dx.ui.uploads import UploadLimits, UploadTooLarge, decode_upload

    limits = UploadLimits(max_pixels=10_000, max_request_pixels=5_000)
    budget = limits.budget()
    image = cv2.imencode(".png", np.zeros((40, 50, 3), np.uint8))[1].tobytes()  # 2,000 pixels
    assert decode_upload(image, "a.png", limits, budget).shape == (40, 50, 3)
    assert decode_upload(image, "b.png", limits, budget).shape == (40, 50, 3)
    with pytest.raises(
        UploadTooLarge,
        match=r"c\.png: image is 50x40 pixels with the 4,000 pixels already in this "
        r"request, above the per-request limit of 5,000 pixels",
    ):
        decode_upload(image, "c.png", limits, budget)


@pytest.fixture
def paced_server(assistant):
    """A real server: 2 s to receive a request plus what its bytes earn, 2 connections per client."""
    import threading

    from paddle_dx.ui.server import make_app_server

    server = make_app_server(assistant, "127.0.0.1", 0, timeout=2, max_connections=8, max_per_client=2)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_client_sending_one_byte_at_a_time_is_dropped_and_others_are_served(paced_server):
    import select
    import socket
    import urllib.request

    port = paced_server.server_port
    slow = socket.create_connection(("127.0.0.1", port), timeout=5)
    request = b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n" + b"x" * 100
    closed_after = None
    for sent, byte in enumerate(request[:80]):  # one byte every 0.1 s: no recv waits 2 s, the request never ends
        if select.select([slow], [], [], 0.1)[0]:
            closed_after = sent
            break
        slow.sendall(bytes([byte]))
        if sent == 5:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/info", timeout=10) as res:
                assert res.status == 200  # served while the slow client trickles
    reply = _read_all(slow) if closed_after is not None else b""
    slow.close()
    assert closed_after is not None, "a trickling client kept its connection"
    assert reply == b"" or reply.startswith(b"HTTP/1.1 408"), reply[:200]


def test_connections_per_client_are_bounded_with_a_json_503(paced_server):
    import json

    port = paced_server.server_port
    held = [_stalled_upload(port) for _ in range(2)]
    extra = _stalled_upload(port)
    reply = _read_all(extra)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503") and b"Retry-After: 5" in head
    assert "2 connections from your address already" in json.loads(body)["error"]
    for sock in held + [extra]:
        sock.close()


def test_uploads_waiting_server_wide_are_bounded_and_released(exported):
    from paddle_dx.ui.server import Assistant, create_app

    assistant = Assistant(predictor=None, limits=UploadLimits(max_pending=1))
    client = create_app(assistant).test_client()
    assert assistant.admission.enter(1000)  # one upload already being received or analysed
    busy = client.post("/api/predict", data={}, content_type="multipart/form-data")
    assert busy.status_code == 503 and busy.headers["Retry-After"] == "5" and "server busy" in busy.get_json()["error"]
    assistant.admission.leave(1000)
    assert client.post("/api/predict", data={}, content_type="multipart/form-data").status_code == 400
    assert assistant.admission.requests == 0 and assistant.admission.bytes == 0  # released after each request


def test_a_413_says_which_limit_was_hit(client):
    field = client.post(
        "/api/predict",
        data={"note": "x" * 600_000, "images": (io.BytesIO(b"123"), "a.png")},
        content_type="multipart/form-data",
    )
    assert field.status_code == 413 and "a form field other than the 'images' files" in field.get_json()["error"]
