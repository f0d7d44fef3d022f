"""ONNX node attributes read one way: strings decoded, and the spec's defaults for a convolution's window.

The gradient rules and the sub-pixel rewrite both take a Conv or ConvTranspose apart; reading its geometry in
one place keeps them agreeing on what a node means (auto_pad VALID as zero pads, absent strides as ones).
"""

from __future__ import annotations

from onnx import NodeProto, helper


def attributes(node: NodeProto) -> dict:
    values = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in values.items()}


def conv_window(attrs: dict, n: int) -> dict:
    """Strides, pads, dilations and group of an n-D Conv/ConvTranspose, as lists with the defaults filled in.

    Only explicit padding has a fixed meaning here: callers refuse auto_pad SAME_* (whose pads depend on the
    input size) before they use the pads.
    """
    explicit = attrs.get("auto_pad", "NOTSET") == "NOTSET"
    return {
        "strides": list(attrs.get("strides", [1] * n)),
        "pads": list(attrs.get("pads", [0] * 2 * n)) if explicit else [0] * 2 * n,
        "dilations": list(attrs.get("dilations", [1] * n)),
        "group": attrs.get("group", 1),
    }
