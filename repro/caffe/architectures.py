"""repro's own V2 prototxts for the paper's networks, built from the published architectures.

Layer and blob names follow the BVLC deploy files and the DGN generator, so real caffemodels attach to
these prototxts by name. `width` scales every hidden channel count (for small test variants);
`batch` is the Input batch (the generator's Reshape hard-codes it, as the original does).
"""

from __future__ import annotations

from typing import Any

from google.protobuf import text_format

from repro.caffe import schema


def _channels(n: int, width: float, multiple: int = 1) -> int:
    """A scaled channel count, kept a multiple of `multiple` (the group count) and at least that."""
    return max(multiple, multiple * round(n * width / multiple))


def _layer(name: str, type_: str, bottoms: list[str], tops: list[str] | None = None, **params: Any) -> Any:
    return schema.LayerParameter(name=name, type=type_, bottom=bottoms, top=tops or [name], **params)


def _input(name: str, shape: tuple[int, ...]) -> Any:
    return _layer(name, "Input", [], input_param={"shape": [{"dim": list(shape)}]})


def _conv(name: str, bottom: str, n: int, k: int, *, stride: int = 1, pad: int = 0, group: int = 1,
          type_: str = "Convolution") -> Any:  # fmt: skip
    param: dict[str, Any] = {"num_output": n, "kernel_size": [k]}
    if pad:
        param["pad"] = [pad]
    if stride != 1:
        param["stride"] = [stride]
    if group != 1:
        param["group"] = group
    return _layer(name, type_, [bottom], convolution_param=param)


def _relu(name: str, blob: str, slope: float = 0.0) -> Any:
    return _layer(
        name, "ReLU", [blob], [blob], **({"relu_param": {"negative_slope": slope}} if slope else {})
    )


def _pool(name: str, bottom: str, k: int, stride: int, *, pad: int = 0, average: bool = False) -> Any:
    param: dict[str, Any] = {"pool": "AVE" if average else "MAX", "kernel_size": k, "stride": stride}
    if pad:
        param["pad"] = pad
    return _layer(name, "Pooling", [bottom], pooling_param=param)


def _lrn(name: str, bottom: str) -> Any:
    return _layer(name, "LRN", [bottom], lrn_param={"local_size": 5, "alpha": 1e-4, "beta": 0.75})


def _fc(name: str, bottom: str, n: int) -> Any:
    return _layer(name, "InnerProduct", [bottom], inner_product_param={"num_output": n})


def _dropout(name: str, blob: str, ratio: float) -> Any:
    return _layer(name, "Dropout", [blob], [blob], dropout_param={"dropout_ratio": ratio})


def _text(name: str, layers: list[Any]) -> str:
    return text_format.MessageToString(schema.NetParameter(name=name, layer=layers))


def _alexnet_family(name: str, lrn_before_pool: bool, num_classes: int, input_size: int, width: float,
                    batch: int) -> str:  # fmt: skip
    """CaffeNet and AlexNet differ only in the order of LRN and pooling in the first two stages."""
    c = [_channels(n, width, multiple=2) for n in (96, 256, 384, 384, 256, 4096, 4096)]
    layers = [_input("data", (batch, 3, input_size, input_size))]
    blob = "data"
    for i, (k, stride, pad, group) in enumerate([(11, 4, 0, 1), (5, 1, 2, 2)], start=1):
        layers += [
            _conv(f"conv{i}", blob, c[i - 1], k, stride=stride, pad=pad, group=group),
            _relu(f"relu{i}", f"conv{i}"),
        ]
        if lrn_before_pool:
            layers += [_lrn(f"norm{i}", f"conv{i}"), _pool(f"pool{i}", f"norm{i}", 3, 2)]
            blob = f"pool{i}"
        else:
            layers += [_pool(f"pool{i}", f"conv{i}", 3, 2), _lrn(f"norm{i}", f"pool{i}")]
            blob = f"norm{i}"
    for i, group in ((3, 1), (4, 2), (5, 2)):
        layers += [_conv(f"conv{i}", blob, c[i - 1], 3, pad=1, group=group), _relu(f"relu{i}", f"conv{i}")]
        blob = f"conv{i}"
    layers.append(_pool("pool5", "conv5", 3, 2))
    blob = "pool5"
    for i in (6, 7):
        layers += [
            _fc(f"fc{i}", blob, c[i - 1]),
            _relu(f"relu{i}", f"fc{i}"),
            _dropout(f"drop{i}", f"fc{i}", 0.5),
        ]
        blob = f"fc{i}"
    layers += [_fc("fc8", "fc7", num_classes), _layer("prob", "Softmax", ["fc8"])]
    return _text(name, layers)


def caffenet(num_classes: int = 1000, *, input_size: int = 227, width: float = 1.0, batch: int = 1) -> str:
    """BVLC CaffeNet deploy: pool before LRN, grouped conv2/4/5, Dropout 0.5 after fc6 and fc7."""
    return _alexnet_family("CaffeNet", False, num_classes, input_size, width, batch)


def alexnet(num_classes: int = 1000, *, input_size: int = 227, width: float = 1.0, batch: int = 1) -> str:
    """BVLC AlexNet deploy: as CaffeNet but LRN before pooling."""
    return _alexnet_family("AlexNet", True, num_classes, input_size, width, batch)


# GoogLeNet inception modules: 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool projection (Szegedy et al. T1).
INCEPTION = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}


def _inception(name: str, bottom: str, sizes: tuple[int, ...]) -> list[Any]:
    one, reduce3, three, reduce5, five, proj = sizes
    p = f"inception_{name}/"
    layers = []
    for branch, n in (("1x1", one), ("3x3_reduce", reduce3), ("5x5_reduce", reduce5)):
        layers += [_conv(p + branch, bottom, n, 1), _relu(f"{p}relu_{branch}", p + branch)]
        if branch != "1x1":
            k = 3 if branch == "3x3_reduce" else 5
            out = f"{k}x{k}"
            layers += [
                _conv(p + out, p + branch, three if k == 3 else five, k, pad=k // 2),
                _relu(f"{p}relu_{out}", p + out),
            ]
    layers += [
        _pool(p + "pool", bottom, 3, 1, pad=1),
        _conv(p + "pool_proj", p + "pool", proj, 1),
        _relu(p + "relu_pool_proj", p + "pool_proj"),
        _layer(p + "output", "Concat", [p + b for b in ("1x1", "3x3", "5x5", "pool_proj")]),
    ]
    return layers


def googlenet(num_classes: int = 1000, *, input_size: int = 224, width: float = 1.0, batch: int = 1) -> str:
    """BVLC GoogLeNet deploy without the auxiliary heads: 9 inception modules, Caffe ceil-mode pools
    (112 -> 56 -> 28 -> 14 -> 7), 7x7 average pool, Dropout 0.4, classifier, Softmax."""

    def c(n: int) -> int:
        return _channels(n, width)

    layers = [
        _input("data", (batch, 3, input_size, input_size)),
        _conv("conv1/7x7_s2", "data", c(64), 7, stride=2, pad=3),
        _relu("conv1/relu_7x7", "conv1/7x7_s2"),
        _pool("pool1/3x3_s2", "conv1/7x7_s2", 3, 2),
        _lrn("pool1/norm1", "pool1/3x3_s2"),
        _conv("conv2/3x3_reduce", "pool1/norm1", c(64), 1),
        _relu("conv2/relu_3x3_reduce", "conv2/3x3_reduce"),
        _conv("conv2/3x3", "conv2/3x3_reduce", c(192), 3, pad=1),
        _relu("conv2/relu_3x3", "conv2/3x3"),
        _lrn("conv2/norm2", "conv2/3x3"),
        _pool("pool2/3x3_s2", "conv2/norm2", 3, 2),
    ]
    blob = "pool2/3x3_s2"
    for name, sizes in INCEPTION.items():
        layers += _inception(name, blob, tuple(c(n) for n in sizes))
        blob = f"inception_{name}/output"
        if name in ("3b", "4e"):
            pool = f"pool{name[0]}/3x3_s2"
            layers.append(_pool(pool, blob, 3, 2))
            blob = pool
    layers += [
        _pool("pool5/7x7_s1", blob, 7, 1, average=True),
        _dropout("pool5/drop_7x7_s1", "pool5/7x7_s1", 0.4),
        _fc("loss3/classifier", "pool5/7x7_s1", num_classes),
        _layer("prob", "Softmax", ["loss3/classifier"]),
    ]
    return _text("GoogleNet", layers)


# The fc6 generator's up-convolution stack after the 4x4 reshape: (name, output channels, kernel, stride).
GENERATOR_DECONVS = [
    ("deconv5", 256, 4, 2),
    ("conv5_1", 512, 3, 1),
    ("deconv4", 256, 4, 2),
    ("conv4_1", 256, 3, 1),
    ("deconv3", 128, 4, 2),
    ("conv3_1", 128, 3, 1),
    ("deconv2", 64, 4, 2),
    ("deconv1", 32, 4, 2),
    ("deconv0", 3, 4, 2),
]


def fc6_generator(*, code_size: int = 4096, width: float = 1.0, batch: int = 1) -> str:
    """Dosovitskiy & Brox's fc6 image generator (DGN-AM's `upconv/fc6/generator.prototxt`): three
    InnerProduct layers with leaky ReLU 0.3, a Reshape to 256x4x4, then nine Deconvolution layers up to a
    linear 3x256x256 BGR output."""
    fc, c5 = _channels(4096, width), _channels(256, width)
    layers = [_input("feat", (batch, code_size))]
    blob = "feat"
    for name, n in (("defc7", fc), ("defc6", fc), ("defc5", c5 * 16)):
        layers += [_fc(name, blob, n), _relu(f"relu_{name}", name, 0.3)]
        blob = name
    layers.append(_layer("reshape", "Reshape", ["defc5"], ["reshape_defc5"],
                         reshape_param={"shape": {"dim": [batch, c5, 4, 4]}}))  # fmt: skip
    blob = "reshape_defc5"
    for name, n, k, stride in GENERATOR_DECONVS:
        channels = n if name == "deconv0" else _channels(n, width)
        layers.append(_conv(name, blob, channels, k, stride=stride, pad=1, type_="Deconvolution"))
        if name != "deconv0":
            layers.append(_relu(f"relu_{name}", name, 0.3))
        blob = name
    return _text("fc6_generator", layers)
