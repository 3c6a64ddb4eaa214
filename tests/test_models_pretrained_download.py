"""Downloads of pretrained weights against a local HTTP server on 127.0.0.1: a truncated body is
never cached, the cache is keyed by the whole URL, and a cached file is checked against the
SHA-256 recorded when it was downloaded."""

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from paddle_dx.errors import WeightsError
from paddle_dx.models import pretrained as pretrained_mod

BODIES = {"/good/w.pdparams": b"A" * 3000, "/other/w.pdparams": b"B" * 2000}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        if self.path == "/trunc/w.pdparams":  # announces 1000 bytes, sends 500, hangs up
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"C" * 500)
            self.close_connection = True
            return
        body = BODIES.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path, monkeypatch):
    monkeypatch.setenv("PADDLE_DX_WEIGHTS_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("PADDLE_DX_ALLOW_ANY_WEIGHTS_URL", "1")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def cached_files(tmp_path):
    return sorted(p.name for p in (tmp_path / "cache").rglob("*") if p.is_file())


def test_a_truncated_download_is_refused_and_not_cached(server, tmp_path):
    with pytest.raises(WeightsError, match=r"cut short: 500 of 1,000 bytes"):
        pretrained_mod.fetch(f"{server}/trunc/w.pdparams")
    assert cached_files(tmp_path) == []


def test_two_urls_with_one_file_name_are_cached_apart_and_checked_on_reuse(server, tmp_path):
    good = pretrained_mod.fetch(f"{server}/good/w.pdparams")
    other = pretrained_mod.fetch(f"{server}/other/w.pdparams")
    assert good != other and good.read_bytes() == BODIES["/good/w.pdparams"]
    assert other.read_bytes() == BODIES["/other/w.pdparams"]  # not the stale file of the same name
    assert cached_files(tmp_path) == ["w.pdparams", "w.pdparams", "w.pdparams.sha256.json", "w.pdparams.sha256.json"]
    assert pretrained_mod.fetch(f"{server}/good/w.pdparams") == good  # reused, digest matches
    good.write_bytes(BODIES["/good/w.pdparams"][:1000])  # truncated or changed since
    with pytest.raises(WeightsError, match=r"SHA-256 differs from the one recorded when it was downloaded"):
        pretrained_mod.fetch(f"{server}/good/w.pdparams")


def test_a_known_digest_is_checked(server, tmp_path):
    right = hashlib.sha256(BODIES["/good/w.pdparams"]).hexdigest()
    with pytest.raises(WeightsError, match=r"has SHA-256 .*expected 0{64}; nothing was cached"):
        pretrained_mod.fetch(f"{server}/good/w.pdparams", sha256="0" * 64)
    assert cached_files(tmp_path) == []
    assert pretrained_mod.fetch(f"{server}/good/w.pdparams", sha256=right).read_bytes() == BODIES["/good/w.pdparams"]


def test_paddleclas_urls_keep_their_file_name_in_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PADDLE_DX_WEIGHTS_HOME", str(tmp_path))
    url = pretrained_mod.pretrained_url("ResNet18")
    assert pretrained_mod.cache_path(url) == tmp_path / "ResNet18_pretrained.pdparams"  # PaddleClas's own cache
    look_alike = url.replace("/legendary_models/", "/elsewhere/")
    assert pretrained_mod.cache_path(look_alike).parent.parent == tmp_path / "by-url"
