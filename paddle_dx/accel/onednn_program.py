"""Which ops of a static training Program run on oneDNN, and the NHWC rewrites that make Paddle
3.3's oneDNN conversions right.

Why (measured by benchmarks/static_levers.py, results in benchmarks/results/static_levers.md):
on CPU, Paddle 3.3's dygraph convolutions run im2col + sgemm and never reach oneDNN; a legacy
static Program reaches its oneDNN kernels through each op's ``use_mkldnn`` attribute.

- ResNets over whole images compute in NHWC, with every convolution, batch norm, relu and max
  pooling (forward and backward) on oneDNN. oneDNN's forward convolutions write nhwc, which the
  next op reads as it is; in NCHW each of them was followed by a reorder, and batch norm or relu
  backward on oneDNN met gradients in mixed formats and fell back to oneDNN's reference kernels
  (2x slower steps). ``nhwc_rewrites`` fixes two conversions for NHWC.
- Over cached stage maps (partial freezes) the Program stays NCHW with every convolution on
  oneDNN; other networks over whole images, NCHW with the spatial (k x k, k > 1) convolutions on
  oneDNN (the 1x1 ones in the early, large stages of a ResNet-50 were slower through oneDNN),
  and the 1x1 ones too where the network has depthwise convolutions (EfficientNet-Lite: its
  1x1 expansions and projections hold most of its multiply-adds, and Paddle's plain kernel runs
  them at a fraction of oneDNN's speed; Lite0 at 224 px, batch 16: 1.8 s a step against 2.6 s
  with only the spatial ones on oneDNN, benchmarks/results/lite0_step.md).
"""

from paddle.base.framework import Block, Operator

ONEDNN_OPS = ("conv2d", "conv2d_grad", "depthwise_conv2d", "depthwise_conv2d_grad")
# in NHWC, also these: their oneDNN kernels meet their inputs in the plain nhwc format oneDNN's
# forward convolutions write. relu_grad needs its gradient input made plain first where a
# convolution's backward wrote it (in a blocked format): oneDNN's eltwise backward on a blocked
# gradient with an nhwc input falls back to its reference kernel (10x slower)
NHWC_ONEDNN_OPS = ("batch_norm", "batch_norm_grad", "relu", "relu_grad")
ONEDNN_LAYOUT, PLAIN_LAYOUT = 5, 2  # phi::DataLayout ONEDNN, NCHW (the conversion then follows the model's NHWC)


def wants_nhwc(channels_last: bool, cached_front: bool) -> bool:
    """Whether the Program computes in NHWC: over whole images, for backbones that can
    (BackboneSpec.channels_last), when it uses oneDNN at all. Over cached stage maps it stays NCHW
    (the maps are stored so)."""
    return bool(ONEDNN_OPS) and channels_last and not cached_front


def use_onednn(op: Operator, block: Block, cached_front: bool, nhwc: bool = False) -> bool:
    """Whether one op of the step's Program runs through oneDNN (module docstring)."""
    if op.type not in ONEDNN_OPS:
        return nhwc and (op.type in NHWC_ONEDNN_OPS or _max_pool(op))
    spatial = max(block.var(op.input("Filter")[0]).shape[-2:]) > 1
    return nhwc or cached_front or spatial or _has_depthwise(block)


def _has_depthwise(block: Block) -> bool:
    return any(op.type == "depthwise_conv2d" for op in block.ops)


def mark_onednn_ops(block: Block, cached_front: bool, nhwc: bool) -> None:
    for op in block.ops:
        if use_onednn(op, block, cached_front, nhwc):
            op._set_attr("use_mkldnn", True)


def mark_bf16_convolutions(block: Block) -> int:
    """Forward convolutions on oneDNN compute in bfloat16 and write float32 (``Global.use_amp``
    with ``amp_dtype: bfloat16`` on a CPU with avx512_bf16 / AMX); returns how many. oneDNN
    converts the float32 input and weights to bf16 in the reorder it makes anyway, so no op is
    added. Their backward stays float32: Paddle 3.3's oneDNN gradient kernels take their data type
    from the tensors, and bf16 tensors need cast ops, which on Paddle's plain cast kernel cost more
    than bf16 saved (Lite0, 224 px, batch 16: 2.26 s a step against 2.05 s in float32; oneDNN's
    cast broke NHWC layouts), while this forward-only form took 1.79 s (ResNet-18: 1.66 s against
    1.89 s; one thread, a loaded machine)."""
    marked = 0
    for op in block.ops:
        if op.type in ("conv2d", "depthwise_conv2d") and op.attr("use_mkldnn"):
            op._set_attr("onednn_data_type", "bfloat16")
            op._set_attr("force_fp32_output", True)
            marked += 1
    return marked


def _max_pool(op: Operator) -> bool:
    """A (non-adaptive) max pooling op or its gradient: oneDNN has both; its average pooling
    backward refuses the adaptive global pool Paddle 3.3.1 gives it."""
    return op.type in ("pool2d", "pool2d_grad") and op.attr("pooling_type") == "max" and not op.attr("adaptive")


class NhwcRewrites:
    """What ``nhwc_rewrites`` changed in a Program: ``transposed`` {weight gradient: its OIHW
    shape}, ``plain`` {convolution's input gradient: its plain copy relu_grad now reads}."""

    def __init__(self) -> None:
        self.transposed, self.plain = {}, {}

    def __bool__(self) -> bool:
        return bool(self.transposed or self.plain)


def nhwc_rewrites(block: Block) -> NhwcRewrites:
    """Fix up an NHWC Program for Paddle 3.3's oneDNN conversions (the parity probe checks the
    result against dygraph before it trains):

    - a convolution's weight gradient goes to the optimizer's plain kernel converted by the
      thread's model layout, which the NHWC Program sets to NHWC, so it arrives rotated to O, H,
      W, I: a transpose back follows each convolution's backward (also for 1 x 1 kernels, whose
      data is the same in both orders but whose shape is not: a regulariser adding the weight to
      its gradient needs the OIHW shape);
    - a convolution's input gradient is converted to plain before a relu_grad on oneDNN reads it
      (see NHWC_ONEDNN_OPS)."""
    rewrites, conv_input_grads, index = NhwcRewrites(), set(), 0
    while index < len(block.ops):
        op = block.ops[index]
        if op.type == "relu_grad" and op.attr("use_mkldnn") and op.input("Out@GRAD")[0] in conv_input_grads:
            grad = op.input("Out@GRAD")[0]
            rewrites.plain[grad] = _insert_reading(
                block,
                index,
                "transfer_layout",
                grad,
                "@PLAIN",
                {"src_layout": ONEDNN_LAYOUT, "dst_layout": PLAIN_LAYOUT},
            )
            index += 1
        index += 1
        if op.type not in ONEDNN_OPS or not op.type.endswith("_grad"):
            continue
        conv_input_grads.update(op.output("Input@GRAD"))
        for grad in op.output("Filter@GRAD"):
            rewrites.transposed[grad] = block.var(grad).shape
            _insert_reading(block, index, "transpose2", grad, "@OIHW", {"axis": [0, 3, 1, 2]})
            index += 1
    return rewrites


def _insert_reading(block: Block, position: int, op_type: str, name: str, suffix: str, attrs: dict) -> str:
    """Insert ``op_type`` at ``position``, reading ``name`` and writing ``name + suffix``, which
    the ops after it then read instead; return the new name."""
    var = block.var(name)
    new = block.create_var(name=name + suffix, shape=var.shape, dtype=var.dtype)
    for later in block.ops[position:]:
        later._rename_input(name, new.name)
    outputs = {"Out": [new]}
    if op_type == "transpose2":
        outputs["XShape"] = [block.create_var(name=new.name + "_XSHAPE", shape=(0, *var.shape), dtype=var.dtype)]
    block._insert_op(position, type=op_type, inputs={"X": [name]}, outputs=outputs, attrs=attrs)
    return new.name
