"""The one reading of ONNX attributes that the gradient rules and the sub-pixel rewrite share."""

from onnx import helper

from repro.onnx_attrs import attributes, conv_window


def test_strings_are_decoded_and_absent_geometry_takes_the_spec_defaults():
    node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], auto_pad="NOTSET", group=2)
    attrs = attributes(node)
    assert attrs["auto_pad"] == "NOTSET"
    assert conv_window(attrs, 2) == {"strides": [1, 1], "pads": [0, 0, 0, 0], "dilations": [1, 1], "group": 2}


def test_explicit_pads_are_kept_and_valid_padding_means_none():
    node = helper.make_node("Conv", ["x", "w"], ["y"], strides=[2, 2], pads=[1, 2, 1, 2], dilations=[1, 3])
    assert conv_window(attributes(node), 2) == {
        "strides": [2, 2],
        "pads": [1, 2, 1, 2],
        "dilations": [1, 3],
        "group": 1,
    }
    valid = helper.make_node("Conv", ["x", "w"], ["y"], auto_pad="VALID", pads=[1, 1, 1, 1])
    assert conv_window(attributes(valid), 2)["pads"] == [0, 0, 0, 0]
