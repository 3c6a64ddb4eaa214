"""paddle_dx: transfer learning for small medical image sets on PaddlePaddle.

Data flows one way: ``data`` (read, preprocess, split, sample) -> ``models`` (backbone +
transfer head) -> ``engine`` (train, evaluate, checkpoint, log) -> ``inference`` (export,
predict) -> reports / UI.
"""

__version__ = "0.1.0"
