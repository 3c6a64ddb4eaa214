"""Every component a config can name, handed down to the config schema.

The config package validates names it cannot import (it sits below data, models and engine):
this module, at the top of the layers that own the registries, offers each registry under the
config key it answers (config/choices.py), with the checks the data layer makes on a loaded
config. Importing it is all it takes; the commands, the Trainer and the tests do so before a
config is loaded. A new registry a config key names is one line in ``NAMES``.
"""

from paddle_dx.config.choices import offer
from paddle_dx.data.classes import resolve_class_num
from paddle_dx.data.pipelines import check_pipelines
from paddle_dx.data.sampler import SAMPLERS
from paddle_dx.data.transforms import TRANSFORMS
from paddle_dx.engine.frozen_features import EXTRACTORS
from paddle_dx.engine.loss import LOSSES
from paddle_dx.engine.optimizer import OPTIMIZERS, SCHEDULES
from paddle_dx.engine.steps import STEPS
from paddle_dx.models.backbones import BACKBONES

NAMES = {
    "Global.engine": STEPS,
    "Global.feature_cache_engine": EXTRACTORS,
    "Arch.name": BACKBONES,
    "Loss": LOSSES,
    "Optimizer.name": OPTIMIZERS,
    "Optimizer.lr_schedule": SCHEDULES,
    "DataLoader.sampler.name": SAMPLERS,
    "DataLoader.dataset.transform_ops": TRANSFORMS,
}

# In this order: the class count is filled in before the pipelines are checked.
CHECKS = (resolve_class_num, check_pipelines)

offer(NAMES, CHECKS)
