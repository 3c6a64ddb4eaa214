"""The diagnosis assistant's web server: one static page and a small JSON API.

``GET /`` the page; ``GET /api/info`` classes, limits, whether speech works;
``POST /api/predict`` (multipart, one or more files in field ``images``; ``gradcam=1`` adds
heat-map overlays, ``preview=1`` a PNG of each decoded image) -> JSON;
``POST /api/speak`` (JSON ``{"class_name", "probability", "advice": false}``) -> WAV (``advice``:
with the next-step sentence, as "speak results as they appear" asks).

Uploads stay in memory (the request class never spools to a temporary file) and are neither
stored nor logged. Every error is a JSON ``{"error": message}`` with a 4xx status; an
unexpected failure is a 500 with a generic message, never a traceback.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading
import time
import traceback
from collections import Counter
from collections.abc import Iterable
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import cv2
import numpy as np
from flask import Flask, Request, jsonify, request, send_from_directory
from werkzeug.exceptions import ClientDisconnected, HTTPException
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from paddle_dx.errors import ImageReadError, PaddleDxError
from paddle_dx.ui.speech import DISCLAIMER, Speech, sentence
from paddle_dx.ui.uploads import UploadLimits, UploadTooLarge, decode_upload

log = logging.getLogger(__name__)
if TYPE_CHECKING:
    pass

STATIC_DIR = Path(__file__).resolve().parent / "static"
FIELD = "images"
PREVIEW_SIDE = 512
_TRUE = ("1", "true", "yes", "on")
LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")
ANY_ADDRESS = ("0.0.0.0", "::", "")
READ_TIMEOUT = 30  # seconds a request may take to arrive, plus what its bytes earn at MIN_UPLOAD_RATE
MIN_UPLOAD_RATE = 32 * 1024  # bytes/s: a client sending one byte a second is dropped after READ_TIMEOUT
MAX_CONNECTIONS = 32  # connections served at once; more are answered 503 at once, not given a thread
MAX_PER_CLIENT = 8  # of which from one client address (a browser opens about 6)
EXTRA_FORM_PARTS = 16  # form fields besides the files (gradcam, preview, ...)
MAX_FORM_FIELD_BYTES = 500_000  # a form field that is not a file (gradcam=1); Flask's default, also its parse buffer
RETRY_AFTER_S = 5


class MemoryRequest(Request):
    """Keeps uploaded files in memory (Werkzeug spools those over 500 kB to a temp file)."""

    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        return BytesIO()


class ApiError(Exception):
    def __init__(self, status, message) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def png_data_url(rgb: np.ndarray, max_side: int | None = None) -> str:
    """An RGB uint8 image as a ``data:image/png;base64,...`` URL (downscaled to ``max_side``)."""
    h, w = rgb.shape[:2]
    if max_side and max(h, w) > max_side:
        scale = max_side / max(h, w)
        rgb = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    ok, png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return "data:image/png;base64," + base64.b64encode(png.tobytes()).decode("ascii")


def _flag(name):
    return str(request.values.get(name, "")).lower() in _TRUE


class Assistant:
    """What the routes call: decode, predict, explain, speak, with one lock around the model."""

    def __init__(self, predictor, explainer=None, speech=None, limits=None, phrases=None) -> None:
        self.predictor, self.explainer = predictor, explainer
        self.speech = speech if speech is not None else Speech()
        self.limits = limits or UploadLimits()
        self.phrases = dict(phrases or {})
        self.lock = threading.Lock()
        self.admission = Admission(self.limits.max_pending, self.limits.max_server_bytes)

    def info(self) -> dict:
        return {
            "class_names": self.predictor.class_names,
            "arch": self.predictor.spec.get("arch"),
            "gradcam": self.explainer is not None,
            "speech": self.speech.available,
            "speech_message": self.speech.reason,
            "limits": self.limits.as_dict(),
            "disclaimer": DISCLAIMER,
        }

    def _uploads(self):
        files = request.files.getlist(FIELD)
        if not files:
            got = sorted(request.files) or sorted(request.form)
            hint = f"; got field(s) {got}" if got else ""
            raise ApiError(400, f"send multipart/form-data with one or more image files in the field '{FIELD}'{hint}")
        if len(files) > self.limits.max_files:
            raise ApiError(413, f"{len(files)} files sent; at most {self.limits.max_files} per request")
        return [(f.filename or f"image {i + 1}", f.read()) for i, f in enumerate(files)]

    def predict(self) -> dict:
        decoded, failed, budget = [], [], self.limits.budget()
        for name, data in self._uploads():
            try:
                decoded.append((name, decode_upload(data, name, self.limits, budget)))
            except ImageReadError as exc:
                failed.append({"name": name, "error": exc.problem, "too_large": isinstance(exc, UploadTooLarge)})
        if not decoded:
            status = 413 if any(f["too_large"] for f in failed) else 415
            raise ApiError(status, "; ".join(f"{f['name']}: {f['error']}" for f in failed))
        images = [img for _, img in decoded]
        with self.lock:
            rows = self.predictor.predict(images)
            overlays = (
                self.explainer.overlays(images, [r["class_id"] for r in rows])
                if self.explainer is not None and _flag("gradcam")
                else None
            )
        results = []
        for i, ((name, img), row) in enumerate(zip(decoded, rows)):
            p = row["probs"][row["class_name"]]
            item = {
                "name": name,
                "class_id": row["class_id"],
                "class_name": row["class_name"],
                "probability": p,
                "probs": row["probs"],
                "sentence": sentence(row["class_name"], p, self.phrases),
                "spoken": sentence(row["class_name"], p, self.phrases, advice=True),
            }
            if _flag("preview"):
                item["preview_png"] = png_data_url(img, PREVIEW_SIDE)
            if overlays is not None:
                item["gradcam_png"] = png_data_url(overlays[i])
            results.append(item)
        results += [{"name": f["name"], "error": f["error"]} for f in failed]
        return {"results": results, "class_names": self.predictor.class_names, "disclaimer": DISCLAIMER}

    def speak(self) -> bytes:
        if not self.speech.available:
            raise ApiError(503, self.speech.reason)
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise ApiError(400, 'send JSON {"class_name": ..., "probability": 0..1}')
        name, prob = body.get("class_name"), body.get("probability")
        if name not in self.predictor.class_names:
            raise ApiError(400, f"class_name must be one of {self.predictor.class_names}")
        if isinstance(prob, bool) or not isinstance(prob, (int, float)) or not 0 <= prob <= 1:
            raise ApiError(400, "probability must be a number between 0 and 1")
        if not isinstance(body.get("advice", False), bool):
            raise ApiError(400, "advice must be true or false")
        return self.speech.wav(sentence(name, prob, self.phrases, advice=body.get("advice", False)))


class Admission:
    """Server-wide bounds on uploads in progress: at most ``max_requests`` being received or
    waiting for the model and ``max_bytes`` of their bodies. Per-request limits alone let 32
    requests of 300 MB each queue behind the model lock."""

    def __init__(self, max_requests, max_bytes) -> None:
        self.max_requests, self.max_bytes = max_requests, max_bytes
        self.requests = self.bytes = 0
        self._lock = threading.Lock()

    def enter(self, size: int) -> bool:
        """Reserve a request of ``size`` body bytes; False when the server is full."""
        with self._lock:
            if self.requests >= self.max_requests or (self.requests and self.bytes + size > self.max_bytes):
                return False
            self.requests += 1
            self.bytes += size
            return True

    def leave(self, size: int) -> None:
        with self._lock:
            self.requests -= 1
            self.bytes -= size


def _admit(assistant):
    """Before a POST's body is read: reserve its size in the server-wide budget, or answer 503."""

    def check():
        if request.method != "POST":
            return None
        size = request.content_length or assistant.limits.max_request_bytes
        if not assistant.admission.enter(size):
            response = jsonify(
                error=f"server busy: {assistant.admission.max_requests} uploads are being received or "
                f"analysed; retry in a few seconds"
            )
            response.status_code = 503
            response.headers["Retry-After"] = str(RETRY_AFTER_S)
            return response
        request.environ["paddle_dx.admitted"] = size
        return None

    def release(_exc=None):
        size = request.environ.pop("paddle_dx.admitted", None)
        if size is not None:
            assistant.admission.leave(size)

    return check, release


def _too_large_message(exc, app, limits):
    """Say which limit a 413 from Werkzeug's form parser hit: the body size, the number of form
    parts, or one non-file field's size (it raises the same exception for all three)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = (frames[-1].name, Path(frames[-1].filename).name) if frames else ("", "")
    if (request.content_length or 0) <= limits.max_request_bytes and where[0] == "next_event":
        return (  # werkzeug.sansio.multipart counts the parts there
            f"too many form parts: at most {app.config['MAX_FORM_PARTS']} "
            f"(up to {limits.max_files} files in field '{FIELD}' and a few options)"
        )
    if (request.content_length or 0) <= limits.max_request_bytes and (
        where[0] == "receive_data" or where[1] == "formparser.py"
    ):
        return f"a form field other than the '{FIELD}' files is above {MAX_FORM_FIELD_BYTES:,} bytes"
    return f"upload too large: at most {limits.max_files} files of {limits.max_file_bytes:,} bytes each"


def _security_headers(response):
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data: blob:; "
        "media-src 'self' blob:; object-src 'none'; frame-ancestors 'none'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response


def _host_name(netloc):
    try:
        return (urlsplit(f"//{netloc}").hostname or "").lower()
    except ValueError:
        return ""


def _origin_guard(allowed_hosts):
    """Refuse a Host header that is not a name of this server (DNS rebinding: evil.example
    re-pointed at 127.0.0.1) and a POST whose Origin is another site (a page elsewhere posting
    to the local server). ``allowed_hosts`` None: bound to every address, any Host."""

    def check():
        if allowed_hosts is not None and _host_name(request.host) not in allowed_hosts:
            raise ApiError(
                403,
                f"Host {request.host[:100]!r} is not this server; open it as "
                f"http://localhost or with the address it was started on",
            )
        origin = request.headers.get("Origin")
        if request.method == "POST" and origin is not None:
            parts = urlsplit(origin) if origin != "null" else None
            if parts is None or parts.netloc.lower() != request.host.lower():
                raise ApiError(403, "cross-site request refused: the page posting here is not served by this server")

    return check


def create_app(assistant: Assistant, host: str = "127.0.0.1", allowed_hosts: Iterable[str] = ()) -> Flask:
    """The Flask app serving ``assistant`` (an :class:`Assistant`) bound to ``host``; requests
    must name ``host``, localhost or one of ``allowed_hosts`` (e.g. a reverse proxy's name)."""
    app = Flask("paddle_dx.ui", static_folder=str(STATIC_DIR), static_url_path="/static")
    app.request_class = MemoryRequest
    app.config["MAX_CONTENT_LENGTH"] = assistant.limits.max_request_bytes
    app.config["MAX_FORM_PARTS"] = assistant.limits.max_files + EXTRA_FORM_PARTS
    app.config["MAX_FORM_MEMORY_SIZE"] = MAX_FORM_FIELD_BYTES
    names = None if host in ANY_ADDRESS else {n.lower() for n in (*LOCAL_NAMES, host, *allowed_hosts)}
    app.before_request(_origin_guard(names))
    admit, release = _admit(assistant)
    app.before_request(admit)
    app.teardown_request(release)
    app.after_request(_security_headers)

    @app.get("/")
    def index():
        return send_from_directory(STATIC_DIR, "index.html")

    @app.get("/api/info")
    def info():
        return jsonify(assistant.info())

    @app.post("/api/predict")
    def predict():
        return jsonify(assistant.predict())

    @app.post("/api/speak")
    def speak():
        return app.response_class(assistant.speak(), mimetype="audio/wav")

    @app.errorhandler(ApiError)
    def api_error(exc):
        return jsonify(error=exc.message), exc.status

    @app.errorhandler(PaddleDxError)
    def input_error(exc):
        return jsonify(error=str(exc)), 422

    @app.errorhandler(HTTPException)
    def http_error(exc):
        message = exc.description
        if exc.code == 413:
            message = _too_large_message(exc, app, assistant.limits)
        elif isinstance(exc, ClientDisconnected):  # the body stopped short or stalled past the read timeout
            return jsonify(error="the request body ended early or stopped arriving"), 408
        return jsonify(error=message), exc.code

    @app.errorhandler(Exception)
    def unexpected(exc):
        log.error("internal error (%s) on %s %s", type(exc).__name__, request.method, request.path)
        log.debug("internal error", exc_info=True)
        return jsonify(error="internal error; the server log has its type"), 500

    return app


def build_assistant(
    model_dir: Path | str,
    gradcam: bool = True,
    phrases_file: Path | str | None = None,
    limits: UploadLimits | None = None,
    **predictor_args: object,
) -> Assistant:
    """An Assistant over the export in ``model_dir`` (Grad-CAM needs its dygraph weights)."""
    from paddle_dx.inference import Predictor

    predictor = Predictor(model_dir, **predictor_args)
    explainer = None
    if gradcam:
        from paddle_dx.explain.exported import Explainer

        explainer = Explainer(predictor)
    phrases = None
    if phrases_file:
        from paddle_dx.config.loader import read_yaml

        phrases = {str(k): str(v) for k, v in read_yaml(phrases_file).items()}
    return Assistant(predictor, explainer, limits=limits, phrases=phrases)


class PacedReader:
    """The request stream of one connection, with a deadline: ``timeout`` seconds plus one second
    for every ``min_rate`` bytes received. A per-recv timeout alone lets a client sending one
    byte a second hold its connection (and its thread) forever."""

    def __init__(self, stream, sock, timeout, min_rate) -> None:
        self._stream, self._sock, self.timeout, self.min_rate = stream, sock, timeout, min_rate
        self.restart()

    def restart(self) -> None:
        """A new request on the connection: a new allowance."""
        self.started, self.received = time.monotonic(), 0

    def _wait(self):
        left = self.started + self.timeout + self.received / self.min_rate - time.monotonic()
        if left <= 0:
            raise TimeoutError("request arrived too slowly")
        self._sock.settimeout(min(left, self.timeout))

    def _count(self, data):
        self.received += len(data) if data else 0
        return data

    def read(self, size: int | None = -1) -> bytes:
        self._wait()
        return self._count(self._stream.read(size))

    def read1(self, size: int = -1) -> bytes:
        self._wait()
        return self._count(self._stream.read1(size))

    def readline(self, size: int | None = -1) -> bytes:
        self._wait()
        return self._count(self._stream.readline(size))

    def readinto(self, buffer: bytearray | memoryview) -> int | None:
        self._wait()
        n = self._stream.readinto(buffer)
        self.received += n or 0
        return n

    def __iter__(self):
        return iter(self.readline, b"")

    def __getattr__(self, name):
        return getattr(self._stream, name)


class PacedRequestHandler(WSGIRequestHandler):
    """Reads each request through a :class:`PacedReader` (a deadline per request, not per recv)."""

    min_rate = MIN_UPLOAD_RATE

    def setup(self) -> None:
        super().setup()
        self.rfile = PacedReader(self.rfile, self.connection, self.timeout, self.min_rate)

    def handle_one_request(self) -> None:
        self.rfile.restart()
        super().handle_one_request()


def _busy_reply(reason):
    body = json.dumps({"error": f"server busy: {reason}; retry in a few seconds"}).encode()
    return (
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        + f"Retry-After: {RETRY_AFTER_S}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )


class BoundedServer(ThreadedWSGIServer):
    """Werkzeug's threaded server with at most ``max_connections`` connections in service, at
    most ``max_per_client`` of them from one address (more are answered 503 by the accepting
    thread), each request paced by :class:`PacedRequestHandler`: clients that never finish, or
    trickle, their body no longer hold every thread."""

    def __init__(
        self,
        host,
        port,
        app,
        timeout=READ_TIMEOUT,
        max_connections=MAX_CONNECTIONS,
        max_per_client=MAX_PER_CLIENT,
        min_rate=MIN_UPLOAD_RATE,
    ) -> None:
        handler = type("TimedRequestHandler", (PacedRequestHandler,), {"timeout": timeout, "min_rate": min_rate})
        super().__init__(host, port, app, handler=handler)
        self.slots = threading.BoundedSemaphore(max_connections)
        self.max_per_client = max_per_client
        self.per_client = Counter()
        self.clients_lock = threading.Lock()

    def _refuse(self, request, reason):
        try:
            request.sendall(_busy_reply(reason))
        except OSError:
            pass
        self.shutdown_request(request)

    def process_request(self, request: socket.socket, client_address: tuple | str) -> None:
        client = client_address[0] if isinstance(client_address, tuple) else client_address
        with self.clients_lock:
            if self.per_client[client] >= self.max_per_client:
                return self._refuse(request, f"{self.max_per_client} connections from your address already")
            if not self.slots.acquire(blocking=False):
                return self._refuse(request, "all connections are in use")
            self.per_client[client] += 1
        super().process_request(request, client_address)

    def process_request_thread(self, request: socket.socket, client_address: tuple | str) -> None:
        client = client_address[0] if isinstance(client_address, tuple) else client_address
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.clients_lock:
                self.per_client[client] -= 1
                if not self.per_client[client]:
                    del self.per_client[client]
            self.slots.release()


def make_app_server(
    assistant: Assistant,
    host: str = "127.0.0.1",
    port: int = 8050,
    allowed_hosts: Iterable[str] = (),
    timeout: float = READ_TIMEOUT,
    max_connections: int = MAX_CONNECTIONS,
    max_per_client: int = MAX_PER_CLIENT,
    min_rate: float = MIN_UPLOAD_RATE,
) -> BoundedServer:
    """The bound (not yet serving) server; ``port`` 0 picks a free one (``server.server_port``)."""
    app = create_app(assistant, host, allowed_hosts)
    return BoundedServer(host, port, app, timeout, max_connections, max_per_client, min_rate)


def serve(assistant: Assistant, host: str = "127.0.0.1", port: int = 8050, allowed_hosts: Iterable[str] = ()) -> None:
    """Run the app until interrupted (a bounded threaded server; the model is behind a lock)."""
    if host not in LOCAL_NAMES:
        log.warning(
            "serving on %s: reachable from other machines; uploads are medical images - use a "
            "trusted network or a reverse proxy with authentication",
            host,
        )
    server = make_app_server(assistant, host, port, allowed_hosts)
    log.info("diagnosis assistant on http://%s:%d/ (Ctrl+C to stop)", host, server.server_port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
