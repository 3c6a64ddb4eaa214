"""Train a head on a frozen backbone from cached features instead of re-running the backbone.

With ``Arch.freeze: backbone`` (the papers' "pre-training" step) every epoch recomputes the
same backbone outputs: the backbone's BatchNorm layers are frozen in eval mode and its weights
never change. ``Global.feature_cache`` computes them once per image through the fastest engine
(``frozen_features``) and trains ``head(dropout(features))``; dropout still draws from Paddle's
generator exactly as the full forward would, so the trained head is the same.

Entries are ``.npy`` files under ``Global.cache_dir`` (default ``output_dir/cache``) ``/features``,
keyed by (backbone weights hash, resolved preprocessing spec, image SHA-256, engine), so a
second run on the same images and weights starts from a warm cache.

Pixel-changing train-time augmentation makes cached features wrong. ``auto`` therefore caches
only when the Train pipeline has no random op, or, with ``Global.feature_cache_views: N``,
precomputes N augmented views per image and uses view ``epoch % N`` (an approximation of
fresh augmentation every epoch, logged as such). Partial freezes (``until stage N``) are not
cached: the trainable stages need the frozen stages' spatial maps, which are large.
"""
import logging
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import paddle

from paddle_dx.data.io import file_sha256
from paddle_dx.data.preprocess_cache import cache_root
from paddle_dx.engine.frozen_features import build_extractor, weights_hash
from paddle_dx.errors import ConfigError
from paddle_dx.utils.files import atomic_path
from paddle_dx.utils.hashing import json_sha256

log = logging.getLogger(__name__)
_EXTRACT_BATCH = 16


class HeadOnly:
    """Looks like the model to ``evaluator.predict`` but takes features: head(dropout(x)).

    Deliberately not a ``paddle.nn.Layer``: ``Layer.train()`` would put the frozen BatchNorm
    layers back in train mode; delegating to ``TransferModel.train()`` keeps them in eval.
    """

    def __init__(self, model):
        self.model = model

    @property
    def training(self):
        return self.model.training

    def eval(self):
        self.model.eval()

    def train(self):
        self.model.train()

    def __call__(self, features):
        return self.model.head(self.model.dropout(features))


def _backbone_frozen(model):
    return all(p.stop_gradient for p in model.backbone.parameters())


def _active_dropout(model):
    return [type(layer).__name__ for layer in model.backbone.sublayers()
            if isinstance(layer, paddle.nn.Dropout) and layer.p > 0]


class FeatureCache:
    """Decides per epoch whether cached features apply, and serves them.

    ``epoch_batches(model, sampler, loader, epoch)`` -> (batches, forward): the normal loader
    and the model, or cached (features, labels) batches and ``HeadOnly(model)``.
    """

    def __init__(self, config, train_set, eval_set, hashes=None, world_size=1):
        g = config["Global"]
        self.mode = {True: "on", False: "off"}.get(g["feature_cache"], g["feature_cache"])
        self.engine, self.views = g["feature_cache_engine"], g["feature_cache_views"]
        if world_size > 1 and self.mode != "off":
            log.info("feature cache: off in multi-device training (each rank would cache its own shard)")
            self.mode = "off"
        self.root = cache_root(config)
        self.threads, self.seed = g["num_threads"], g["seed"]
        self.sets = {"Train": train_set, "Eval": eval_set}
        self.hashes = dict(hashes or {})
        self.freeze = config["Arch"]["freeze"]
        self._memory = {}  # (weights hash, mode, view) -> [N, D] float32
        self._logged = set()

    # ---- deciding ----------------------------------------------------------------------
    def _say(self, message, *args):
        """Log each decision once per run (not every epoch)."""
        if message not in self._logged:
            self._logged.add(message)
            log.info(message, *args)

    def _views(self):
        """Views per training image (1 = exact), or None when the cache cannot apply."""
        if not self.sets["Train"].transforms.is_random:
            return 1
        if self.views > 0:
            return self.views
        return None

    def applies(self, model):
        """True when this epoch can train from cached features (logs why or why not)."""
        if self.mode == "off":
            return False
        if not _backbone_frozen(model):
            if self.mode == "on":
                self._say("feature cache: not used while the backbone is trainable (Arch.freeze / stage freeze "
                          "is not 'backbone'; partial freezes are not cached)")
            return False
        dropout = _active_dropout(model)
        views = self._views()
        problem = None
        if dropout:
            problem = f"the frozen {model.arch_name} backbone contains active dropout ({dropout[0]})"
        elif views is None:
            problem = ("DataLoader.Train.dataset.transform_ops has random ops, which change pixels every epoch "
                       "(set Global.feature_cache_views: N to precompute N augmented views)")
        if problem:
            if self.mode == "on":
                raise ConfigError(f"config key 'Global.feature_cache' is 'on' but {problem}")
            self._say("feature cache: off because %s", problem)
            return False
        how = "exact (no random train-time ops)" if views == 1 else f"{views} precomputed augmented views, view = epoch % {views}"
        self._say("feature cache: on, engine %s, %s, under %s", self.engine, how, self.root)
        return True

    # ---- computing and storing ---------------------------------------------------------------
    def _image_hash(self, path):
        if path not in self.hashes:
            self.hashes[path] = file_sha256(path)
        return self.hashes[path]

    def _entry(self, wkey, spec_key, dataset, index, view, randomised):
        path = dataset.samples[index][0]
        extra = [self.seed, view, index] if randomised else []
        key = json_sha256([wkey, spec_key, self._image_hash(path), self.engine, extra])
        return self.root / "features" / wkey[:16] / key[:2] / f"{key}.npy"

    def features(self, model, mode, view=0):
        """[N, D] features of every image of ``mode``'s dataset, computing missing entries."""
        wkey = weights_hash(model.backbone)
        memo = (wkey, mode, view)
        if memo in self._memory:
            return self._memory[memo]
        dataset = self.sets[mode]
        randomised = dataset.transforms.is_random
        spec_key = json_sha256(dataset.transforms.spec())
        files = [self._entry(wkey, spec_key, dataset, i, view, randomised) for i in range(len(dataset))]
        missing = [i for i, f in enumerate(files) if not f.is_file()]
        if missing:
            self._compute(model, wkey, dataset, missing, files, view)
        self._memory[memo] = np.stack([np.load(f) for f in files]).astype(np.float32)
        return self._memory[memo]

    def _compute(self, model, wkey, dataset, indices, files, view):
        extractor = build_extractor(self.engine, model.backbone, self.root / "backbones" / wkey[:16], self.threads)
        log.info("feature cache: computing %d feature vectors (%s engine)", len(indices), self.engine)
        with ThreadPoolExecutor(max_workers=2) as pool:
            for start in range(0, len(indices), _EXTRACT_BATCH):
                chunk = indices[start:start + _EXTRACT_BATCH]
                images = np.stack([img for img, _ in pool.map(lambda i: dataset.load(i, view), chunk)])
                for i, vector in zip(chunk, extractor(images)):
                    with atomic_path(files[i]) as tmp:
                        with open(tmp, "wb") as fh:
                            np.save(fh, np.asarray(vector, np.float32))

    # ---- serving -------------------------------------------------------------------------
    def _batches(self, feats, labels, key_batches):
        for keys in key_batches:
            idx = np.asarray([index for _, index in keys])
            yield paddle.to_tensor(feats[idx]), paddle.to_tensor(labels[idx])

    def epoch_batches(self, model, sampler, loader, epoch):
        """This epoch's training batches and the forward that consumes them."""
        if not self.applies(model):
            return loader, model
        views = self._views()
        feats = self.features(model, "Train", view=epoch % views if views > 1 else 0)
        labels = np.asarray(self.sets["Train"].labels, np.int64)
        return self._batches(feats, labels, sampler), HeadOnly(model)

    def eval_pair(self, model, loader, batch_size):
        """(model, loader) for validation: cached features when the train epochs use them."""
        if not self.applies(model) or self.sets["Eval"].transforms.is_random:
            return model, loader
        feats = self.features(model, "Eval")
        labels = np.asarray(self.sets["Eval"].labels, np.int64)
        n = len(labels)
        keys = [[(0, i) for i in range(s, min(s + batch_size, n))] for s in range(0, n, batch_size)]
        return HeadOnly(model), list(self._batches(feats, labels, keys))
