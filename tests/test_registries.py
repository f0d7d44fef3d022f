"""The three decorator-filled tables stay in step: converters, Caffe shape rules and VJP rules.

A converter without a shape rule cannot run (conversion needs every blob's shape), and an op a converter
emits without a VJP rule breaks the posterior's gradient only when a net using it is sampled. Both are
caught here, on the layer cases of `tests/test_convert_layers.py` (one or more per converter) and on small
variants of the built-in architectures, so a new converter without a layer case fails too.
"""

from __future__ import annotations

import pytest

import repro.grad  # noqa: F401  (importing repro.grad.rules fills the VJP table)
from repro.caffe import architectures, parse_net_text, random_weights
from repro.caffe import shapes as caffe_shapes
from repro.convert import CONVERTERS, converter, to_onnx
from repro.grad.registry import RULES as VJP_RULES
from repro.grad.registry import vjp
from repro.registry import registrar
from tests.test_convert_layers import CASES, net_from

# Narrow, small-input variants: the same layers with the same settings as the full-size nets, converted fast.
ARCHITECTURES = {
    "caffenet": lambda: architectures.caffenet(num_classes=10, input_size=67, width=0.05),
    "alexnet": lambda: architectures.alexnet(num_classes=10, input_size=67, width=0.05),
    "googlenet": lambda: architectures.googlenet(num_classes=10, width=0.05),
    "fc6_generator": lambda: architectures.fc6_generator(code_size=32, width=1 / 32),
}


def _nets():
    for case, (body, inputs) in CASES.items():
        yield f"layer case {case}", net_from(body, inputs)
    for name, build in ARCHITECTURES.items():
        net = parse_net_text(build())
        random_weights(net, 0)
        yield name, net


@pytest.fixture(scope="module")
def converted():
    """(Caffe layer types used, {ONNX op type: names of the nets that emit it}) over every test net."""
    layer_types: set[str] = set()
    emitted: dict[str, set[str]] = {}
    for name, net in _nets():
        layer_types |= {layer.type for layer in net.layers}
        for node in to_onnx(net).graph.node:
            emitted.setdefault(node.op_type, set()).add(name)
    return layer_types, emitted


def test_every_converter_has_a_shape_rule():
    missing = sorted(set(CONVERTERS) - set(caffe_shapes.RULES))
    assert not missing, f"converters without a Caffe shape rule: {missing}"


def test_the_test_nets_exercise_every_converter(converted):
    layer_types, _ = converted
    assert layer_types == set(CONVERTERS), (
        f"converters with no layer case: {sorted(set(CONVERTERS) - layer_types)}; "
        f"layer types without a converter: {sorted(layer_types - set(CONVERTERS))}"
    )


def test_every_emitted_op_has_a_vjp_rule(converted):
    # No exemption list: every op the converters emit is float-valued and can lie between the code z and
    # log p, so each needs a rule (the integer-valued ops the sweep skips, Shape and the like, are never
    # emitted by a converter).
    _, emitted = converted
    assert len(emitted) > 10  # the nets really were converted
    missing = {op: sorted(nets) for op, nets in emitted.items() if op not in VJP_RULES}
    assert not missing, f"ops emitted without a VJP rule (op: nets): {missing}"


def test_registrar_refuses_a_second_filing():
    table: dict = {}
    register = registrar(table, "things")

    def first():
        pass

    def second():
        pass

    register("a", "b")(first)
    assert table == {"a": first, "b": first}
    with pytest.raises(ValueError, match="two things for 'b'"):
        register("b")(second)
    assert table["b"] is first
    with pytest.raises(ValueError, match="'c'"):
        register("c", "c")(second)  # a duplicate within one filing is caught too


@pytest.mark.parametrize(
    ("decorate", "table", "key"),
    [
        (caffe_shapes.rule, caffe_shapes.RULES, "ReLU"),
        (converter, CONVERTERS, "Pooling"),
        (vjp, VJP_RULES, "Relu"),
    ],
    ids=["shape rules", "converters", "vjp rules"],
)
def test_real_tables_refuse_a_second_filing(decorate, table, key):
    original = table[key]
    with pytest.raises(ValueError, match=repr(key)):
        decorate(key)(lambda *args: None)
    assert table[key] is original
