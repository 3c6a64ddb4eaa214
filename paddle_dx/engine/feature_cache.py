"""Train the trainable part of a network from cached outputs of its frozen front.

With ``Arch.freeze: backbone`` (the papers' "pre-training" step) every epoch recomputes the
same backbone outputs: the backbone's BatchNorm layers are frozen in eval mode and its weights
never change. The same holds for the stem and first stages under ``until stage N``.
``Global.feature_cache`` computes the frozen front (``TransferModel.frozen_front``: the leading
layers with nothing trainable, no dropout and frozen BatchNorm) once per image through the
fastest engine (``frozen_features``) and trains ``head(dropout(rest(cached)))``; dropout still
draws from Paddle's generator exactly as the full forward would, so the trained weights are the
same. A whole frozen backbone caches one feature vector per image; a partial freeze caches the
last frozen stage's feature maps, which are large: the cache stays off (logged) when train +
validation maps would exceed ``Global.feature_cache_max_gb``.

Entries are ``.npy`` files under ``Global.cache_dir`` (default ``output_dir/cache``) ``/features``,
keyed by (front weights hash, resolved preprocessing spec, image SHA-256, engine), so a second
run on the same images and weights starts from a warm cache.

Pixel-changing train-time augmentation makes cached features wrong, unless its random ops have
a finite set of outcomes (``RandomFlip``: 2 or 4). Then every variant's front output is cached
(the pipeline run with the random ops fixed to that outcome, so later deterministic ops such as
NormalizeImage apply per variant) and each step picks, for sample (epoch, index), the variant
the ops would have drawn from that sample's generator: training from the cache is exact. With
ops of infinitely many outcomes (crops, rotations, colour jitter) ``auto`` stays off, or, with
``Global.feature_cache_views: N``, precomputes N augmented views per image and uses view
``epoch % N`` (an approximation of fresh augmentation every epoch, logged as such).
"""

import logging
import sys
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import paddle
from tqdm import tqdm

from paddle_dx.config.sections import cache_root
from paddle_dx.data.io import read_image
from paddle_dx.data.sampler import EpochBatchSampler
from paddle_dx.engine.frozen_features import build_extractor, weights_hash
from paddle_dx.errors import ConfigError
from paddle_dx.models import TransferModel
from paddle_dx.utils.files import atomic_path
from paddle_dx.utils.hashing import file_sha256, json_sha256

log = logging.getLogger(__name__)
_EXTRACT_BATCH = 16


class CachedForward:
    """Looks like the model to ``eval_loop.predict`` but takes cached front outputs:
    head(dropout(rest(x))).

    Deliberately not a ``paddle.nn.Layer``: ``Layer.train()`` would put the frozen BatchNorm
    layers back in train mode; delegating to ``TransferModel.train()`` keeps them in eval.
    """

    def __init__(self, model, rest) -> None:
        self.model, self.rest = model, rest

    @property
    def training(self) -> bool:
        return self.model.training

    def eval(self) -> None:
        self.model.eval()

    def train(self) -> None:
        self.model.train()

    def __call__(self, features):
        for layer in self.rest:
            features = layer(features)
        return self.model.head(self.model.dropout(features))


def _describe(front, layers):
    if len(front) == len(layers):
        return "the whole frozen backbone"
    return f"the frozen front ({len(front)} of {len(layers)} backbone layers, up to {type(front[-1]).__name__})"


class FeatureCache:
    """Decides per epoch whether cached front outputs apply, and serves them.

    ``epoch_batches(model, sampler, loader, epoch)`` -> (batches, forward): the normal loader
    and the model, or cached (front output, labels) batches and ``CachedForward``.
    """

    def __init__(self, g, train_set, eval_set, hashes=None, world_size=1) -> None:
        """``g``: the Global config section (feature_cache*, cache_dir, output_dir, num_threads, seed)."""
        self.mode = {True: "on", False: "off"}.get(g["feature_cache"], g["feature_cache"])
        self.engine, self.views = g["feature_cache_engine"], g["feature_cache_views"]
        self.max_bytes = float(g["feature_cache_max_gb"]) * 2**30
        if world_size > 1 and self.mode != "off":
            log.info("feature cache: off in multi-device training (each rank would cache its own shard)")
            self.mode = "off"
        self.root = cache_root(g)
        self.threads, self.seed = g["num_threads"], g["seed"]
        self.sets = {"Train": train_set, "Eval": eval_set}
        self.hashes = dict(hashes or {})
        self._memory = {}  # (front weights hash, mode, view) -> [N, ...] float32, current front only
        self._shapes = {}  # front layers -> shape of one image's front output
        self._extractor = None  # (front weights hash, extractor) of the last front computed
        self._logged = set()

    # ---- deciding ----------------------------------------------------------------------
    def _say(self, message, *args):
        """Log each decision once per run (not every epoch)."""
        if message not in self._logged:
            self._logged.add(message)
            log.info(message, *args)

    def _variants(self):
        """The Train pipeline's finite random outcomes (exact caching), or None."""
        transforms = self.sets["Train"].transforms
        return transforms.variants() if transforms.is_random else None

    def _views(self):
        """Cached outputs per training image (1 = exact; the variant count when the random ops
        have finitely many outcomes, also exact), or None when the cache cannot apply."""
        if not self.sets["Train"].transforms.is_random:
            return 1
        variants = self._variants()
        if variants is not None:
            return len(variants)
        if self.views > 0:
            return self.views
        return None

    def _how(self, views):
        if views == 1:
            return "exact (no random train-time ops)"
        if self._variants() is not None:
            return f"exact: {views} variants of the finite random ops, each step picks the one its sample draws"
        return f"{views} precomputed augmented views, view = epoch % {views}"

    def _problem(self, model, front):
        """Why this epoch cannot train from cached front outputs, or None."""
        if not front:
            dropout = model.first_random_layer()
            if dropout and all(p.stop_gradient for p in model.backbone.parameters()):
                return f"the frozen {model.arch_name} backbone starts with active dropout ({dropout})"
            return (
                "nothing is frozen at the network's input (Arch.freeze / the stage's freeze is 'none'), "
                "so every layer must run each step"
            )
        if self._views() is None:
            return (
                "DataLoader.Train.dataset.transform_ops has random ops, which change pixels every epoch "
                "(set Global.feature_cache_views: N to precompute N augmented views)"
            )
        floats = int(np.prod(self._front_shape(front)))
        total = floats * 4 * (len(self.sets["Train"]) * (self._views() or 1) + len(self.sets["Eval"]))
        if total > self.max_bytes:
            return (
                f"the cached outputs of {_describe(front, model.sequence())} would take {total / 2**30:.1f} GiB "
                f"(> Global.feature_cache_max_gb = {self.max_bytes / 2**30:g})"
            )
        return None

    def applies(self, model: TransferModel) -> bool:
        """True when this epoch can train from cached front outputs (logs why or why not)."""
        if self.mode == "off":
            return False
        front, _ = model.frozen_front()
        problem = self._problem(model, front)
        if problem:
            if self.mode == "on":
                raise ConfigError(f"config key 'Global.feature_cache' is 'on' but {problem}")
            self._say("feature cache: off because %s", problem)
            return False
        self._say(
            "feature cache: on for %s (%d floats per image), engine %s, %s, under %s",
            _describe(front, model.sequence()),
            int(np.prod(self._front_shape(front))),
            self.engine,
            self._how(self._views()),
            self.root,
        )
        return True

    def _front_shape(self, front):
        """Shape of one image's front output, found by running the front once (dygraph, eval)."""
        key = tuple(id(layer) for layer in front)  # the shape depends on the layers, not their weights
        if key not in self._shapes:
            image, _ = self.sets["Train"].load(0)
            output = build_extractor("dygraph", paddle.nn.Sequential(*front), None)(image[None])
            self._shapes[key] = tuple(int(d) for d in output.shape[1:])
        return self._shapes[key]

    def front_shape(self, model: TransferModel) -> tuple[int, ...]:
        """Shape of one image's cached front output under the model's current freeze."""
        return self._front_shape(model.frozen_front()[0])

    # ---- computing and storing ---------------------------------------------------------------
    def _image_hash(self, path):
        if path not in self.hashes:
            self.hashes[path] = file_sha256(path)
        return self.hashes[path]

    def _outcome(self, dataset, view):
        """The random ops' fixed outcome of variant ``view`` (None: not a variant cache)."""
        variants = dataset.transforms.variants() if dataset.transforms.is_random else None
        return None if variants is None else variants[view]

    def _entry(self, wkey, spec_key, dataset, index, view):
        path = dataset.samples[index][0]
        outcome = self._outcome(dataset, view)
        if outcome is not None:  # a variant depends on the image only, not on seed or index
            extra = ["variant", [list(o) if isinstance(o, tuple) else o for o in outcome]]
        else:
            extra = [self.seed, view, index] if dataset.transforms.is_random else []
        key = json_sha256([wkey, spec_key, self._image_hash(path), self.engine, extra])
        return self.root / "features" / wkey[:16] / key[:2] / f"{key}.npy"

    def _load(self, dataset, index, view):
        """The network input the cached output is computed from (variant ``view``, or view ``view``)."""
        outcome = self._outcome(dataset, view)
        if outcome is None:
            return dataset.load(index, view)[0]
        path, cache = dataset.samples[index][0], dataset.prefix_cache
        if cache is not None:
            return dataset.transforms.apply(cache.prefix_output(path), outcome, start=len(cache.prefix))
        return dataset.transforms.apply(read_image(path), outcome)

    def features(self, model: TransferModel, mode: str, view: int = 0) -> np.ndarray:
        """[N, ...] front outputs of every image of ``mode``'s dataset, computing missing entries."""
        front = paddle.nn.Sequential(*model.frozen_front()[0])
        wkey = weights_hash(front)
        memo = (wkey, mode, view)
        if memo in self._memory:
            return self._memory[memo]
        self._memory = {k: v for k, v in self._memory.items() if k[0] == wkey}  # a new front: drop the old
        dataset = self.sets[mode]
        spec_key = json_sha256(dataset.transforms.spec())
        files = [self._entry(wkey, spec_key, dataset, i, view) for i in range(len(dataset))]
        missing = [i for i, f in enumerate(files) if not f.is_file()]
        if missing:
            self._compute(front, wkey, dataset, missing, files, view)
        self._memory[memo] = np.stack([np.load(f) for f in files]).astype(np.float32)
        return self._memory[memo]

    def _compute(self, front, wkey, dataset, indices, files, view):
        if self._extractor is None or self._extractor[0] != wkey:  # one per front (variants, views share it)
            self._extractor = None
            self._extractor = (
                wkey,
                build_extractor(
                    self.engine,
                    front,
                    self.root / "backbones" / wkey[:16],
                    self.threads,
                    paddle.device.get_device(),  # the run's device, as select_device set it: "cpu" or "gpu:N"
                ),
            )
        extractor = self._extractor[1]
        log.info("feature cache: computing %d front outputs (%s engine)", len(indices), self.engine)
        with ThreadPoolExecutor(max_workers=2) as pool:
            chunks = [indices[s : s + _EXTRACT_BATCH] for s in range(0, len(indices), _EXTRACT_BATCH)]
            for chunk in tqdm(chunks, desc="feature cache", leave=False, disable=not sys.stderr.isatty()):
                images = np.stack(list(pool.map(lambda i: self._load(dataset, i, view), chunk)))
                for i, output in zip(chunk, extractor(images)):
                    with atomic_path(files[i]) as tmp:
                        with open(tmp, "wb") as fh:
                            np.save(fh, np.asarray(output, np.float32))

    # ---- serving -------------------------------------------------------------------------
    def _batches(self, feats, labels, key_batches):
        for keys in key_batches:
            idx = np.asarray([index for _, index in keys])
            yield paddle.to_tensor(feats[idx]), paddle.to_tensor(labels[idx])

    def _variant_batches(self, per_variant, labels, key_batches):
        """Each sample's variant is the one its random ops draw from the generator
        ``ImageListDataset.load`` gives them in that epoch."""
        dataset = self.sets["Train"]
        position = {outcome: v for v, outcome in enumerate(dataset.transforms.variants())}
        for keys in key_batches:
            rows = [per_variant[position[dataset.transforms.draw(dataset.rng(i, e))]][i] for e, i in keys]
            idx = np.asarray([index for _, index in keys])
            yield paddle.to_tensor(np.stack(rows)), paddle.to_tensor(labels[idx])

    def epoch_batches(
        self, model: TransferModel, sampler: EpochBatchSampler, loader: Iterable, epoch: int
    ) -> tuple[Iterable, paddle.nn.Layer]:
        """This epoch's training batches and the forward that consumes them."""
        if not self.applies(model):
            return loader, model
        views = self._views()
        labels = np.asarray(self.sets["Train"].labels, np.int64)
        forward = CachedForward(model, model.frozen_front()[1])
        if self._variants() is not None:
            per_variant = [self.features(model, "Train", view=v) for v in range(views)]
            self._extractor = None  # every variant is computed: free the backbone copy
            return self._variant_batches(per_variant, labels, sampler), forward
        feats = self.features(model, "Train", view=epoch % views if views > 1 else 0)
        self._extractor = None
        return self._batches(feats, labels, sampler), forward

    def eval_pair(self, model: TransferModel, loader: Iterable, batch_size: int) -> tuple[paddle.nn.Layer, Iterable]:
        """(model, loader) for validation: cached front outputs when the train epochs use them."""
        if not self.applies(model) or self.sets["Eval"].transforms.is_random:
            return model, loader
        feats = self.features(model, "Eval")
        self._extractor = None
        labels = np.asarray(self.sets["Eval"].labels, np.int64)
        n = len(labels)
        keys = [[(0, i) for i in range(s, min(s + batch_size, n))] for s in range(0, n, batch_size)]
        return CachedForward(model, model.frozen_front()[1]), list(self._batches(feats, labels, keys))
