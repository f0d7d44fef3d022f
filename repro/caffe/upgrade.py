"""Caffe's file-format upgrades (`upgrade_proto.cpp`): V0 and V1 layers and legacy input fields to V2.

Readers upgrade every file to V2 `LayerParameter` messages, so the rest of repro sees one form. Prototxt and
caffemodel are upgraded independently because a V2 prototxt often ships with a V1 caffemodel.
"""

from __future__ import annotations

from typing import Any

from repro.caffe import schema
from repro.errors import BadInput

# UpgradeV1LayerType: V1 enum name -> V2 type string.
V1_TYPES = {
    "NONE": "",
    "ABSVAL": "AbsVal",
    "ACCURACY": "Accuracy",
    "ARGMAX": "ArgMax",
    "BNLL": "BNLL",
    "CONCAT": "Concat",
    "CONTRASTIVE_LOSS": "ContrastiveLoss",
    "CONVOLUTION": "Convolution",
    "DECONVOLUTION": "Deconvolution",
    "DATA": "Data",
    "DROPOUT": "Dropout",
    "DUMMY_DATA": "DummyData",
    "EUCLIDEAN_LOSS": "EuclideanLoss",
    "ELTWISE": "Eltwise",
    "EXP": "Exp",
    "FLATTEN": "Flatten",
    "HDF5_DATA": "HDF5Data",
    "HDF5_OUTPUT": "HDF5Output",
    "HINGE_LOSS": "HingeLoss",
    "IM2COL": "Im2col",
    "IMAGE_DATA": "ImageData",
    "INFOGAIN_LOSS": "InfogainLoss",
    "INNER_PRODUCT": "InnerProduct",
    "LRN": "LRN",
    "MEMORY_DATA": "MemoryData",
    "MULTINOMIAL_LOGISTIC_LOSS": "MultinomialLogisticLoss",
    "MVN": "MVN",
    "POOLING": "Pooling",
    "POWER": "Power",
    "RELU": "ReLU",
    "SIGMOID": "Sigmoid",
    "SIGMOID_CROSS_ENTROPY_LOSS": "SigmoidCrossEntropyLoss",
    "SILENCE": "Silence",
    "SOFTMAX": "Softmax",
    "SOFTMAX_LOSS": "SoftmaxWithLoss",
    "SPLIT": "Split",
    "SLICE": "Slice",
    "TANH": "TanH",
    "WINDOW_DATA": "WindowData",
    "THRESHOLD": "Threshold",
}

# UpgradeV0LayerType composed with UpgradeV1LayerType: V0 type string -> V2 type string.
V0_TYPES = {
    "accuracy": "Accuracy",
    "bnll": "BNLL",
    "concat": "Concat",
    "conv": "Convolution",
    "data": "Data",
    "dropout": "Dropout",
    "euclidean_loss": "EuclideanLoss",
    "flatten": "Flatten",
    "hdf5_data": "HDF5Data",
    "hdf5_output": "HDF5Output",
    "im2col": "Im2col",
    "images": "ImageData",
    "infogain_loss": "InfogainLoss",
    "innerproduct": "InnerProduct",
    "lrn": "LRN",
    "multinomial_logistic_loss": "MultinomialLogisticLoss",
    "pool": "Pooling",
    "relu": "ReLU",
    "sigmoid": "Sigmoid",
    "softmax": "Softmax",
    "softmax_loss": "SoftmaxWithLoss",
    "split": "Split",
    "tanh": "TanH",
    "window_data": "WindowData",
}

# UpgradeV0LayerParameter: (V0 type, V0 field) -> (V2 *_param message, field). Fields a V0 layer sets for a
# type that does not use them are ignored, as Caffe does (it logs and continues).
V0_FIELDS = {
    ("conv", "num_output"): ("convolution_param", "num_output"),
    ("innerproduct", "num_output"): ("inner_product_param", "num_output"),
    ("conv", "biasterm"): ("convolution_param", "bias_term"),
    ("innerproduct", "biasterm"): ("inner_product_param", "bias_term"),
    ("conv", "weight_filler"): ("convolution_param", "weight_filler"),
    ("innerproduct", "weight_filler"): ("inner_product_param", "weight_filler"),
    ("conv", "bias_filler"): ("convolution_param", "bias_filler"),
    ("innerproduct", "bias_filler"): ("inner_product_param", "bias_filler"),
    ("conv", "pad"): ("convolution_param", "pad"),
    ("pool", "pad"): ("pooling_param", "pad"),
    ("conv", "kernelsize"): ("convolution_param", "kernel_size"),
    ("pool", "kernelsize"): ("pooling_param", "kernel_size"),
    ("conv", "group"): ("convolution_param", "group"),
    ("conv", "stride"): ("convolution_param", "stride"),
    ("pool", "stride"): ("pooling_param", "stride"),
    ("pool", "pool"): ("pooling_param", "pool"),
    ("dropout", "dropout_ratio"): ("dropout_param", "dropout_ratio"),
    ("lrn", "local_size"): ("lrn_param", "local_size"),
    ("lrn", "alpha"): ("lrn_param", "alpha"),
    ("lrn", "beta"): ("lrn_param", "beta"),
    ("lrn", "k"): ("lrn_param", "k"),
    ("concat", "concat_dim"): ("concat_param", "concat_dim"),
}

# V1 fields that are not copied by name.
_V1_SPECIAL = {"type", "blobs", "param", "blobs_lr", "weight_decay", "layer"}


def _repeated(field: Any) -> bool:
    """protobuf 7 dropped `FieldDescriptor.label`; older releases lack `is_repeated`."""
    return field.is_repeated if hasattr(field, "is_repeated") else field.label == field.LABEL_REPEATED


def _assign(target: Any, name: str, source_field: Any, value: Any) -> None:
    """Set field `name` of `target` from `value`, a field of kind `source_field` (scalar, message, list)."""
    field = target.DESCRIPTOR.fields_by_name[name]
    if _repeated(field):
        getattr(target, name).extend(value if _repeated(source_field) else [value])
    elif field.type == field.TYPE_MESSAGE:
        getattr(target, name).CopyFrom(value)
    else:
        setattr(target, name, value)


def _param_specs(layer: Any, lrs, decays, names=()) -> None:
    """`blobs_lr[i]` / `weight_decay[i]` / `param[i]` become `param[i].lr_mult / decay_mult / name`."""
    for attr, values in (("name", names), ("lr_mult", lrs), ("decay_mult", decays)):
        for i, value in enumerate(values):
            while len(layer.param) <= i:
                layer.param.add()
            setattr(layer.param[i], attr, value)


def _from_v0(v1: Any, source: str) -> Any:
    v0 = v1.layer
    layer = schema.LayerParameter(name=v0.name, bottom=list(v1.bottom), top=list(v1.top))
    if v0.type not in V0_TYPES:
        raise BadInput(
            f"{source}: V0 layer '{v0.name}' has type '{v0.type}', which Caffe's V0 upgrade rejects"
        )
    layer.type = V0_TYPES[v0.type]
    for field, value in v0.ListFields():
        target = V0_FIELDS.get((v0.type, field.name))
        if target is not None:
            _assign(getattr(layer, target[0]), target[1], field, value)
    _param_specs(layer, v0.blobs_lr, v0.weight_decay)
    return layer


def _from_v1(v1: Any) -> Any:
    layer = schema.LayerParameter()
    for field, value in v1.ListFields():
        if field.name not in _V1_SPECIAL:
            _assign(layer, field.name, field, value)
    layer.type = V1_TYPES[schema.V1LayerParameter.LayerType.Name(v1.type)]
    _param_specs(layer, v1.blobs_lr, v1.weight_decay, v1.param)
    return layer


def _fold_v0_padding(layers: list[Any], inputs: list[str], source: str) -> list[Any]:
    """UpgradeV0PaddingLayers: a V0 "padding" layer feeding a conv/pool becomes that layer's `pad`."""
    producer: dict[str, Any] = {name: None for name in inputs}
    kept = []
    for v1 in layers:
        if v1.layer.type != "padding":
            kept.append(v1)
        for j, bottom in enumerate(v1.bottom):
            padder = producer.get(bottom)
            if padder is None or padder.layer.type != "padding":
                continue
            if v1.layer.type not in ("conv", "pool"):
                raise BadInput(
                    f"{source}: V0 padding layer '{padder.layer.name}' feeds '{v1.layer.name}', "
                    f"expected a conv or pool layer, got type '{v1.layer.type}'"
                )
            counts = {
                f"'{v1.layer.name}' takes": len(v1.bottom),
                f"padding layer '{padder.layer.name}' takes": len(padder.bottom),
                f"padding layer '{padder.layer.name}' produces": len(padder.top),
            }
            for what, n in counts.items():
                if n != 1:  # Caffe's UpgradeV0PaddingLayers checks the same
                    raise BadInput(
                        f"{source}: V0 {what} {n} blob(s), expected exactly 1 when padding is folded"
                    )
            v1.layer.pad = padder.layer.pad
            v1.bottom[j] = padder.bottom[0]
        for top in v1.top:
            producer[top] = v1
    return kept


def _input_layer(param: Any, source: str) -> Any | None:
    """UpgradeNetInput: legacy `input` + `input_shape`/`input_dim` become one Input layer named "input"."""
    if not param.input:
        return None
    layer = schema.LayerParameter(name="input", type="Input", top=list(param.input))
    if param.input_shape:
        if len(param.input_shape) not in (1, len(param.input)):
            raise BadInput(
                f"{source}: {len(param.input)} inputs need as many input_shape entries, "
                f"got {len(param.input_shape)}"
            )
        for shape in param.input_shape:
            layer.input_param.shape.add().CopyFrom(shape)
    elif param.input_dim:
        if len(param.input_dim) != 4 * len(param.input):
            raise BadInput(
                f"{source}: {len(param.input)} inputs need {4 * len(param.input)} input_dim "
                f"values (4 each), got {len(param.input_dim)}"
            )
        for i in range(len(param.input)):
            layer.input_param.shape.add(dim=param.input_dim[4 * i : 4 * i + 4])
    else:
        raise BadInput(f"{source}: input '{param.input[0]}' has no shape (input_shape or input_dim)")
    return layer


def upgrade_layers(param: Any, source: str) -> list[Any]:
    """Every layer of a NetParameter of any version as V2 LayerParameter messages, legacy inputs first.

    Blobs are not carried over (see `blobs_by_layer`): copying them would double a caffemodel in memory.
    """
    if param.layers:  # Caffe ignores `layer` entries once V1 `layers` are present
        v1_layers = list(param.layers)
        if any(v1.HasField("layer") for v1 in v1_layers):
            v1_layers = _fold_v0_padding(v1_layers, list(param.input), source)
            layers = [_from_v0(v1, source) if v1.HasField("layer") else _from_v1(v1) for v1 in v1_layers]
        else:
            layers = [_from_v1(v1) for v1 in v1_layers]
    else:
        layers = []
        for v2 in param.layer:
            layer = schema.LayerParameter()
            layer.CopyFrom(v2)
            layer.ClearField("blobs")
            layers.append(layer)
    inputs = _input_layer(param, source)
    return ([inputs] if inputs is not None else []) + layers


def blobs_by_layer(param: Any) -> dict[str, list[Any]]:
    """The weight blobs (BlobProto) of each named layer, wherever the file's version keeps them."""
    if param.layers:
        return {
            (v1.layer.name if v1.HasField("layer") else v1.name): list(
                v1.layer.blobs if v1.HasField("layer") else v1.blobs
            )
            for v1 in param.layers
        }
    return {layer.name: list(layer.blobs) for layer in param.layer}
