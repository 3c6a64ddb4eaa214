""".pdparams files are pickles: weights come only from PaddleClas's hosts unless the user opts
in with PADDLE_DX_ALLOW_ANY_WEIGHTS_URL=1 (refusal of a plain foreign URL: test_models_transfer)."""
import io

import pytest

from paddle_dx.errors import WeightsError
from paddle_dx.models import BACKBONES, pretrained_url
from paddle_dx.models import pretrained as pretrained_mod


@pytest.mark.parametrize("url", [
    "https://paddleclas.bj.bcebos.com.evil.example/ResNet18_pretrained.pdparams",  # look-alike host
    "https://paddleclas.bj.bcebos.com@evil.example/ResNet18_pretrained.pdparams",  # user-info trick
    "http://evil.example/paddleclas.bj.bcebos.com/ResNet18_pretrained.pdparams",   # host in the path
    "file:///tmp/ResNet18_pretrained.pdparams",
])
def test_look_alike_weight_urls_are_refused(url, tmp_path, monkeypatch):
    monkeypatch.setenv("PADDLE_DX_WEIGHTS_HOME", str(tmp_path))
    monkeypatch.delenv("PADDLE_DX_ALLOW_ANY_WEIGHTS_URL", raising=False)
    monkeypatch.setattr(pretrained_mod.urllib.request, "urlopen", lambda *a, **k: pytest.fail("downloaded"))
    with pytest.raises(WeightsError, match="refusing to download weights .* pickles and can run code"):
        pretrained_mod.fetch(url)
    assert not list(tmp_path.iterdir())


def test_every_paddleclas_weight_url_is_on_a_trusted_host():
    urls = {name: pretrained_url(name) for name in BACKBONES.names()}
    assert sum(u is not None for u in urls.values()) >= 10
    for name, url in urls.items():
        if url is not None:
            pretrained_mod.check_trusted_url(url)  # raises if a registered backbone would be refused


def test_each_backbone_records_paddleclas_own_weights_and_a_known_normalisation():
    import importlib

    from paddle_dx.data.transforms import NORMALIZE_PRESETS
    published = {}
    for module in ("resnet", "vgg", "inception_v3"):
        published.update(importlib.import_module(
            f"paddleclas.ppcls.arch.backbone.legendary_models.{module}").MODEL_URLS)
    for name in BACKBONES.names():
        pretrained = BACKBONES.get(name).pretrained
        if pretrained is None:
            assert name not in published  # PaddleClas has weights it should record
            continue
        assert pretrained.url == published[name], name
        assert pretrained.normalize in NORMALIZE_PRESETS


def test_other_hosts_only_when_the_user_opts_in(tmp_path, monkeypatch):
    monkeypatch.setenv("PADDLE_DX_WEIGHTS_HOME", str(tmp_path))
    monkeypatch.setenv("PADDLE_DX_ALLOW_ANY_WEIGHTS_URL", "1")
    fetched = []

    def fake_urlopen(url, timeout):
        fetched.append(url)
        return io.BytesIO(b"weights")

    monkeypatch.setattr(pretrained_mod.urllib.request, "urlopen", fake_urlopen)
    path = pretrained_mod.fetch("https://mirror.example/x.pdparams")
    assert fetched == ["https://mirror.example/x.pdparams"] and path.read_bytes() == b"weights"
