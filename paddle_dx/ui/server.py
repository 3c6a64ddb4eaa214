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

import base64
import logging
import threading
from io import BytesIO
from pathlib import Path
from urllib.parse import urlsplit

import cv2
from flask import Flask, Request, jsonify, request, send_from_directory
from werkzeug.exceptions import ClientDisconnected, HTTPException
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from paddle_dx.errors import ImageReadError, PaddleDxError
from paddle_dx.ui.speech import DISCLAIMER, Speech, sentence
from paddle_dx.ui.uploads import UploadLimits, UploadTooLarge, decode_upload

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).resolve().parent / "static"
FIELD = "images"
PREVIEW_SIDE = 512
_TRUE = ("1", "true", "yes", "on")
LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")
ANY_ADDRESS = ("0.0.0.0", "::", "")
READ_TIMEOUT = 30  # seconds a connection may stay silent (a body never finished) before it is dropped
MAX_CONNECTIONS = 32  # connections served at once; more are answered 503 at once, not given a thread
EXTRA_FORM_PARTS = 16  # form fields besides the files (gradcam, preview, ...)


class MemoryRequest(Request):
    """Keeps uploaded files in memory (Werkzeug spools those over 500 kB to a temp file)."""

    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        return BytesIO()


class ApiError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status, self.message = status, message


def png_data_url(rgb, max_side=None):
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

    def __init__(self, predictor, explainer=None, speech=None, limits=None, phrases=None):
        self.predictor, self.explainer = predictor, explainer
        self.speech = speech if speech is not None else Speech()
        self.limits = limits or UploadLimits()
        self.phrases = dict(phrases or {})
        self.lock = threading.Lock()

    def info(self):
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

    def predict(self):
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

    def speak(self):
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


def create_app(assistant, host="127.0.0.1", allowed_hosts=()):
    """The Flask app serving ``assistant`` (an :class:`Assistant`) bound to ``host``; requests
    must name ``host``, localhost or one of ``allowed_hosts`` (e.g. a reverse proxy's name)."""
    app = Flask("paddle_dx.ui", static_folder=str(STATIC_DIR), static_url_path="/static")
    app.request_class = MemoryRequest
    app.config["MAX_CONTENT_LENGTH"] = assistant.limits.max_request_bytes
    app.config["MAX_FORM_PARTS"] = assistant.limits.max_files + EXTRA_FORM_PARTS
    names = None if host in ANY_ADDRESS else {n.lower() for n in (*LOCAL_NAMES, host, *allowed_hosts)}
    app.before_request(_origin_guard(names))
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
        limits = assistant.limits
        if exc.code == 413 and (request.content_length or 0) > limits.max_request_bytes:
            message = f"upload too large: at most {limits.max_files} files of {limits.max_file_bytes:,} bytes each"
        elif exc.code == 413:  # Werkzeug's MAX_FORM_PARTS: a small body cut into very many parts
            message = (
                f"too many form parts: at most {app.config['MAX_FORM_PARTS']} "
                f"(up to {limits.max_files} files in field '{FIELD}' and a few options)"
            )
        elif isinstance(exc, ClientDisconnected):  # the body stopped short or stalled past the read timeout
            return jsonify(error="the request body ended early or stopped arriving"), 408
        return jsonify(error=message), exc.code

    @app.errorhandler(Exception)
    def unexpected(exc):
        log.error("internal error (%s) on %s %s", type(exc).__name__, request.method, request.path)
        log.debug("internal error", exc_info=True)
        return jsonify(error="internal error; the server log has its type"), 500

    return app


def build_assistant(model_dir, gradcam=True, phrases_file=None, limits=None, **predictor_args):
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


class BoundedServer(ThreadedWSGIServer):
    """Werkzeug's threaded server with at most ``max_connections`` connections in service (more
    are answered 503 by the accepting thread) and a read timeout on each: 200 clients that never
    finish their body no longer hold 200 threads."""

    def __init__(self, host, port, app, timeout=READ_TIMEOUT, max_connections=MAX_CONNECTIONS):
        handler = type("TimedRequestHandler", (WSGIRequestHandler,), {"timeout": timeout})
        super().__init__(host, port, app, handler=handler)
        self.slots = threading.BoundedSemaphore(max_connections)

    def process_request(self, request, client_address):
        if not self.slots.acquire(blocking=False):
            try:
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


def make_app_server(
    assistant, host="127.0.0.1", port=8050, allowed_hosts=(), timeout=READ_TIMEOUT, max_connections=MAX_CONNECTIONS
):
    """The bound (not yet serving) server; ``port`` 0 picks a free one (``server.server_port``)."""
    return BoundedServer(host, port, create_app(assistant, host, allowed_hosts), timeout, max_connections)


def serve(assistant, host="127.0.0.1", port=8050, allowed_hosts=()):
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
