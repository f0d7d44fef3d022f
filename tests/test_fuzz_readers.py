"""Seeded fuzzing of the Caffe readers: a damaged prototxt or caffemodel loads, or is one BadInput.

Real inputs (the built-in architectures' text at small sizes, the test nets, the golden fixtures, V0/V1
forms, and caffemodels written by `write_net` and in the V1/V0 layouts) are mutated with byte flips,
truncations, inserted tokens or bytes, swapped numbers and names, dropped or repeated lines and spliced
chunks. Each case must end in `repro.caffe.load_net` succeeding or raising `BadInput`, and a net that loads
must convert (`repro.convert.to_onnx`) or raise `BadInput`, and what converts must run in ONNX Runtime:
never another exception, never more than TIME_LIMIT seconds. The seed and the number of cases are fixed,
so every run tries the same cases; a failure names the case and the mutations that made it.
"""

from __future__ import annotations

import math
import re
import signal
import time
import traceback
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from repro.caffe import architectures, load_net, parse_net_text, random_weights, schema, write_net
from repro.convert import to_onnx
from repro.errors import BadInput
from repro.runtime.ort import make_session
from tests.test_caffe_read import TINY, WEIGHTLESS, legacy_blob, tiny_weights

SEED = 20261201
TEXT_CASES = 600
MODEL_CASES = 300
TIME_LIMIT = 2.0  # seconds per case: load, convert and run
HANG_LIMIT = 20  # a case still running after this many seconds is stopped and reported as a hang
CONVERT_VALUES = 4_000_000  # nets with more weights or blob values than this are only loaded: time bound
FIXTURES = Path(__file__).parent / "fixtures" / "caffe"

V0_TEXT = """name: "v0"
input: "data" input_dim: 1 input_dim: 2 input_dim: 7 input_dim: 7
layers { layer { name: "pad1" type: "padding" pad: 1 } bottom: "data" top: "pad1" }
layers { layer { name: "conv1" type: "conv" num_output: 4 kernelsize: 3 stride: 2 }
         bottom: "pad1" top: "conv1" }
layers { layer { name: "relu1" type: "relu" } bottom: "conv1" top: "conv1" }
layers { layer { name: "pool1" type: "pool" pool: MAX kernelsize: 2 stride: 2 } bottom: "conv1" top: "pool1" }
layers { layer { name: "norm1" type: "lrn" local_size: 3 alpha: 0.0001 beta: 0.75 }
         bottom: "pool1" top: "norm1" }
layers { layer { name: "fc" type: "innerproduct" num_output: 3 } bottom: "norm1" top: "fc" }
layers { layer { name: "prob" type: "softmax" } bottom: "fc" top: "prob" }
"""

V1_TEXT = """name: "v1"
input: "data"
input_shape { dim: 2 dim: 3 dim: 6 dim: 6 }
layers { name: "conv" type: CONVOLUTION bottom: "data" top: "conv" blobs_lr: 1 blobs_lr: 2
         convolution_param { num_output: 4 kernel_size: 3 } }
layers { name: "relu" type: RELU bottom: "conv" top: "conv" }
layers { name: "fc" type: INNER_PRODUCT bottom: "conv" top: "fc" inner_product_param { num_output: 5 } }
layers { name: "drop" type: DROPOUT bottom: "fc" top: "fc" dropout_param { dropout_ratio: 0.5 } }
layers { name: "prob" type: SOFTMAX bottom: "fc" top: "prob" }
"""

# Tokens worth inserting: structure, field names and settings the readers and converters interpret.
TOKENS = [
    "{", "}", "<", ">", ":", '"', "#", "\n", "layer {", "layers {", "}}", "name:", "type:",
    'top: "data"', 'bottom: "data"', 'bottom: "nowhere"', 'top: "conv"', 'type: "Input"', 'type: "Mystery"',
    'type: "Data"', "input_param { shape { dim: 1 } }", "input_dim: 3", 'input: "x"', "kernel_size: 0",
    "stride: 0", "pad: 7", "group: 3", "dilation: 0", "num_output: 0", "num_output: 100000000",
    "axis: -7", "axis: 9", "local_size: 4", "alpha: 0", "beta: -1", "k: 0", "pool: AVE",
    "pool: STOCHASTIC", "global_pooling: true", "operation: PROD", "coeff: 2", "slice_point: 1",
    "offset: 5", "shape { dim: 0 dim: -1 }", "dim: -1", "dim: 0", "num_axes: 3", "bias_term: false",
    "transpose: true", "round_mode: FLOOR", "include { phase: TRAIN }", "exclude { phase: TEST }",
    "state { phase: TRAIN }", "norm_region: WITHIN_CHANNEL", "base: -2", "power: 0.5", "eps: -1",
    "use_global_stats: false", "nan", "inf", "-inf", "1e999", "-1", "0", "4294967296",
    "9223372036854775808", '"\\xff"', "[ext.field]: 1", "mystery_param { x: { y: 1 } }",
    "loss_weight: 1", "engine: CAFFE", "foo: }", "foo { " * 12,
]  # fmt: skip

NUMBERS = [
    "0", "1", "-1", "2", "3", "7", "-3", "0.5", "-0.5", "1e-9", "1e6", "1000000", "4096",
    "65536", "2147483647", "2147483648", "-2147483649", "4294967295", "9223372036854775807",
    "1e38", "nan", "inf", "-inf", "0x10", "1.5", "-0",
]  # fmt: skip

NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d*)?(?:e[-+]?\d+)?(?![\w.])")
QUOTED = re.compile(r'"[^"\n]*"')


def fixture_texts() -> dict[str, str]:
    return {f"fixture {p.stem}": p.read_text() for p in sorted(FIXTURES.glob("*.prototxt"))}


def prototxt_corpus() -> dict[str, str]:
    corpus = {
        "caffenet": architectures.caffenet(5, width=0.05, input_size=67),
        "alexnet": architectures.alexnet(3, width=0.05, input_size=67),
        "googlenet": architectures.googlenet(10, width=0.0625),
        "fc6 generator": architectures.fc6_generator(code_size=16, width=1 / 64),
        "tiny": TINY,
        "weightless": WEIGHTLESS,
        "v0": V0_TEXT,
        "v1": V1_TEXT,
    }
    corpus.update(fixture_texts())
    return corpus


# ---------------------------------------------------------------------------------------- text mutations


def _position(rng: np.random.Generator, data: bytes) -> int:
    return int(rng.integers(0, len(data) + 1))


def flip_bytes(rng, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(int(rng.integers(1, 4))):
        if out:
            i = int(rng.integers(len(out)))
            out[i] ^= int(rng.integers(1, 256))
    return bytes(out)


def truncate(rng, data: bytes) -> bytes:
    return data[: _position(rng, data)]


def insert_token(rng, data: bytes) -> bytes:
    token = TOKENS[int(rng.integers(len(TOKENS)))].encode()
    spaces = [m.start() for m in re.finditer(rb"\s", data)] or [0]
    i = spaces[int(rng.integers(len(spaces)))] if rng.random() < 0.8 else _position(rng, data)
    return data[:i] + b" " + token + b" " + data[i:]


def swap_number(rng, data: bytes) -> bytes:
    text = data.decode("utf-8", "replace")
    matches = list(NUMBER.finditer(text))
    if not matches:
        return insert_token(rng, data)
    m = matches[int(rng.integers(len(matches)))]
    if rng.random() < 0.3 and len(matches) > 1:  # two numbers trade places
        n = matches[int(rng.integers(len(matches)))]
        a, b = sorted((m, n), key=lambda x: x.start())
        if a.end() <= b.start():
            text = text[: a.start()] + b.group() + text[a.end() : b.start()] + a.group() + text[b.end() :]
            return text.encode()
    value = NUMBERS[int(rng.integers(len(NUMBERS)))]
    return (text[: m.start()] + value + text[m.end() :]).encode()


def swap_name(rng, data: bytes) -> bytes:
    """Replace one quoted string (a blob, layer or type name) with another from the same text."""
    text = data.decode("utf-8", "replace")
    matches = list(QUOTED.finditer(text))
    if len(matches) < 2:
        return insert_token(rng, data)
    m = matches[int(rng.integers(len(matches)))]
    other = matches[int(rng.integers(len(matches)))].group()
    return (text[: m.start()] + other + text[m.end() :]).encode()


def edit_lines(rng, data: bytes) -> bytes:
    lines = data.split(b"\n")
    i = int(rng.integers(len(lines)))
    if rng.random() < 0.5:
        del lines[i]
    else:
        lines.insert(int(rng.integers(len(lines) + 1)), lines[i])
    return b"\n".join(lines)


TEXT_MUTATIONS = [flip_bytes, truncate, insert_token, swap_number, swap_number, swap_name, edit_lines]


def mutate(rng, data: bytes, mutations) -> tuple[bytes, list[str]]:
    applied = []
    for _ in range(1 if rng.random() < 0.5 else int(rng.integers(2, 4))):  # half the cases: one mutation
        fn = mutations[int(rng.integers(len(mutations)))]
        data = fn(rng, data)
        applied.append(fn.__name__)
    return data, applied


# ----------------------------------------------------------------------------------- caffemodel corpus


def _v1_caffemodel() -> bytes:
    model = schema.NetParameter(name="tiny")
    weights = tiny_weights(2)
    for name, enum in (("conv", "CONVOLUTION"), ("fc", "INNER_PRODUCT")):
        blobs = [legacy_blob(a) for a in weights[name]]
        model.layers.add(name=name, type=schema.V1LayerParameter.LayerType.Value(enum), blobs=blobs)
    model.layers.add(name="relu", type=schema.V1LayerParameter.LayerType.Value("RELU"))
    return model.SerializeToString()


def _v0_caffemodel() -> bytes:
    model = schema.NetParameter()
    weights = tiny_weights(3)
    for name, v0_type in (("conv", "conv"), ("fc", "innerproduct")):
        model.layers.add(
            layer={"name": name, "type": v0_type, "blobs": [legacy_blob(a) for a in weights[name]]}
        )
    return model.SerializeToString()


def caffemodel_corpus(tmp: Path) -> dict[str, tuple[str, bytes]]:
    """name → (prototxt text, caffemodel bytes): small nets written by `write_net`, and legacy layouts."""
    corpus = {}
    texts = {
        "tiny": TINY,
        "weightless": WEIGHTLESS,
        "caffenet": architectures.caffenet(5, width=0.05, input_size=67),
        "fc6 generator": architectures.fc6_generator(code_size=16, width=1 / 64),
        "batch norm": (FIXTURES / "batch_norm.prototxt").read_text(),
        "deconv": (FIXTURES / "deconv.prototxt").read_text(),
    }
    for i, (name, text) in enumerate(texts.items()):
        net = parse_net_text(text)
        random_weights(net, i)
        write_net(net, tmp / f"{i}.prototxt", tmp / f"{i}.caffemodel")
        corpus[name] = ((tmp / f"{i}.prototxt").read_text(), (tmp / f"{i}.caffemodel").read_bytes())
    corpus["tiny v1 caffemodel"] = (TINY, _v1_caffemodel())
    corpus["tiny v0 caffemodel"] = (TINY, _v0_caffemodel())
    return corpus


def _varint_positions(data: bytes) -> list[int]:
    """Offsets of bytes that look like a protobuf tag (field 1..16, any wire type): worth corrupting."""
    return [i for i, b in enumerate(data[:4096]) if b & 7 in (0, 1, 2, 5) and 1 <= b >> 3 <= 16]


def flip_header_bytes(rng, data: bytes) -> bytes:
    """Byte flips where the structure is (tags and lengths), rather than inside float arrays."""
    positions = _varint_positions(data)
    out = bytearray(data)
    for _ in range(int(rng.integers(1, 3))):
        if positions:
            i = positions[int(rng.integers(len(positions)))] + int(rng.integers(0, 3))
            if i < len(out):
                out[i] ^= int(rng.integers(1, 256))
    return bytes(out)


def insert_bytes(rng, data: bytes) -> bytes:
    i = _position(rng, data)
    junk = rng.integers(0, 256, int(rng.integers(1, 12)), dtype=np.uint8).tobytes()
    return data[:i] + junk + data[i:]


def splice(rng, data: bytes) -> bytes:
    """Repeat or drop a chunk: a layer entry twice, or half a blob missing."""
    if len(data) < 2:
        return insert_bytes(rng, data)
    a = int(rng.integers(len(data)))
    b = min(len(data), a + int(rng.integers(1, 256)))
    return data[:b] + data[a:b] + data[b:] if rng.random() < 0.5 else data[:a] + data[b:]


def restructure(rng, data: bytes) -> bytes:
    """Well-formed protobuf with wrong content: changed dims, dropped blobs, renamed or retyped layers."""
    param = schema.NetParameter()
    try:
        param.ParseFromString(data)
    except Exception:
        return flip_bytes(rng, data)
    layers = list(param.layer) or [v1.layer if v1.HasField("layer") else v1 for v1 in param.layers]
    if not layers:
        return flip_bytes(rng, data)
    layer = layers[int(rng.integers(len(layers)))]
    choice = int(rng.integers(6))
    blobs = layer.blobs
    if choice == 0 and blobs:
        blob = blobs[int(rng.integers(len(blobs)))]
        if blob.shape.dim:
            j = int(rng.integers(len(blob.shape.dim)))
            blob.shape.dim[j] = int(rng.choice([0, -1, 1, blob.shape.dim[j] + 1, 2**31, 2**62]))
        else:
            blob.num = int(rng.choice([0, -1, 2, 2**31 - 1]))
    elif choice == 1 and blobs:
        del blobs[int(rng.integers(len(blobs)))]
    elif choice == 2 and blobs:
        blob = blobs[int(rng.integers(len(blobs)))]
        blob.channels = int(rng.choice([1, 3, 7]))
    elif choice == 3:
        layer.name = str(rng.choice(["", "conv", "fc", "data", "prob", "nope"]))
    elif choice == 4 and blobs:
        blob = blobs[int(rng.integers(len(blobs)))]
        values = np.asarray(blob.data, np.float32)
        blob.ClearField("data")
        blob.double_data.extend(values[: int(rng.integers(0, len(values) + 1))].astype(float))
    elif param.layer:  # the same layer twice
        param.layer.add().CopyFrom(layer)
    else:
        param.layers.add().CopyFrom(param.layers[int(rng.integers(len(param.layers)))])
    return param.SerializeToString()


MODEL_MUTATIONS = [flip_bytes, flip_header_bytes, truncate, insert_bytes, splice, restructure, restructure]


# --------------------------------------------------------------------------------------------- the check


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang(f"still running after {HANG_LIMIT} s")


def _small(net) -> bool:
    weights = sum(math.prod(s) for s in _weight_shapes(net))
    values = sum(math.prod(s) for s in net.shapes.values())
    return weights <= CONVERT_VALUES and values <= CONVERT_VALUES


def _weight_shapes(net):
    from repro.caffe.shapes import layer_shapes

    return [s for shapes in layer_shapes(net) for s in shapes.weights]


def run_case(prototxt: Path, caffemodel: Path | None) -> str:
    """load → (weights) → convert → run; the outcome, or raise whatever is not BadInput."""
    try:
        net = load_net(prototxt, caffemodel)
    except BadInput:
        return "refused at load"
    if not _small(net):
        return "loaded (too big to convert within the time bound)"
    if caffemodel is None:
        random_weights(net, 0)
    try:
        model = to_onnx(net)
    except BadInput:
        return "refused at conversion"
    rng = np.random.default_rng(0)
    feeds = {name: rng.standard_normal(net.shapes[name]).astype(np.float32) for name in net.inputs}
    outputs = make_session(model, threads=1).run(None, feeds)
    expected = [net.shapes[o.name] for o in model.graph.output]
    assert [tuple(o.shape) for o in outputs] == expected, "ONNX Runtime's output shapes differ from Caffe's"
    return "converted and ran"


def check_cases(cases, tmp: Path) -> Counter:
    """Run every (name, prototxt bytes, caffemodel bytes or None); fail with every case that misbehaved."""
    outcomes: Counter = Counter()
    failures = []
    slowest = (0.0, "")
    can_alarm = hasattr(signal, "SIGALRM")
    previous = signal.signal(signal.SIGALRM, _alarm) if can_alarm else None
    try:
        for index, (name, text, model) in enumerate(cases):
            prototxt = tmp / f"case{index}.prototxt"
            prototxt.write_bytes(text)
            caffemodel = None
            if model is not None:
                caffemodel = tmp / f"case{index}.caffemodel"
                caffemodel.write_bytes(model)
            started = time.perf_counter()
            if can_alarm:
                signal.alarm(HANG_LIMIT)
            try:
                outcome = run_case(prototxt, caffemodel)
            except BaseException as e:  # noqa: BLE001 (anything but BadInput is the finding)
                if isinstance(e, KeyboardInterrupt):
                    raise
                lines = traceback.format_exception(e)
                failures.append(f"case {index} ({name}): {type(e).__name__}: {e}\n{''.join(lines[-6:])}")
                outcome = "failed"
            finally:
                if can_alarm:
                    signal.alarm(0)
            elapsed = time.perf_counter() - started
            slowest = max(slowest, (elapsed, f"case {index} ({name})"))
            if elapsed > TIME_LIMIT:
                failures.append(f"case {index} ({name}): took {elapsed:.2f} s > {TIME_LIMIT} s ({outcome})")
            outcomes[outcome] += 1
    finally:
        if can_alarm:
            signal.signal(signal.SIGALRM, previous)
    print(f"{dict(outcomes)}; slowest {slowest[0]:.2f} s: {slowest[1]}")
    assert not failures, f"{len(failures)} of {len(cases)} cases misbehaved:\n" + "\n".join(failures[:10])
    return outcomes


def text_cases() -> list[tuple[str, bytes, None]]:
    rng = np.random.default_rng(SEED)
    corpus = list(prototxt_corpus().items())
    cases = []
    for _ in range(TEXT_CASES):
        source, text = corpus[int(rng.integers(len(corpus)))]
        data, applied = mutate(rng, text.encode(), TEXT_MUTATIONS)
        cases.append((f"{source}: {' + '.join(applied)}", data, None))
    return cases


def model_cases(tmp: Path) -> list[tuple[str, bytes, bytes]]:
    rng = np.random.default_rng(SEED + 1)
    corpus = list(caffemodel_corpus(tmp).items())
    cases = []
    for _ in range(MODEL_CASES):
        source, (text, model) = corpus[int(rng.integers(len(corpus)))]
        model, applied = mutate(rng, model, MODEL_MUTATIONS)
        if rng.random() < 0.2:  # now and then the prototxt is damaged too
            text_bytes, more = mutate(rng, text.encode(), TEXT_MUTATIONS)
            applied += [f"prototxt {m}" for m in more]
        else:
            text_bytes = text.encode()
        cases.append((f"{source}: {' + '.join(applied)}", text_bytes, model))
    return cases


def test_the_corpus_loads_converts_and_runs(tmp_path):
    """Unmutated, every input is good: the fuzzer starts from nets that work."""
    cases = [(name, text.encode(), None) for name, text in prototxt_corpus().items()]
    cases += [(name, text.encode(), model) for name, (text, model) in caffemodel_corpus(tmp_path).items()]
    outcomes = check_cases(cases, tmp_path)
    assert outcomes == Counter({"converted and ran": len(cases)})


def test_mutated_prototxts_load_or_are_refused(tmp_path):
    outcomes = check_cases(text_cases(), tmp_path)
    # The mutations must exercise both sides: some nets survive to run, many are refused at each stage.
    assert outcomes["converted and ran"] >= TEXT_CASES // 20, outcomes
    assert outcomes["refused at load"] >= TEXT_CASES // 4, outcomes


def test_mutated_caffemodels_load_or_are_refused(tmp_path):
    outcomes = check_cases(model_cases(tmp_path), tmp_path)
    assert outcomes["converted and ran"] >= MODEL_CASES // 20, outcomes
    assert outcomes["refused at load"] >= MODEL_CASES // 4, outcomes


@pytest.mark.parametrize("mutation", TEXT_MUTATIONS[:3] + MODEL_MUTATIONS[1:3])
def test_mutations_are_deterministic(mutation):
    data = TINY.encode()
    a = mutation(np.random.default_rng(7), data)
    b = mutation(np.random.default_rng(7), data)
    assert a == b
