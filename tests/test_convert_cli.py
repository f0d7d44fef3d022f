"""`repro convert` end to end, and every way its input can be wrong (exit 2, one line, no output file)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from repro.caffe import load_net, parse_net_text, schema, write_net
from repro.cli import main
from tests import caffe_reference
from tests.conftest import NET
from tests.test_caffe_read import WEIGHTLESS
from tests.test_convert_layers import TOL, rel_error, session


def run_bad(capsys, args, out) -> str:
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    assert not out.exists()
    assert not list(out.parent.glob(f".{out.name}.*"))  # no temporary file left behind either
    return err


def test_convert_writes_model_and_summary(files, tmp_path, capsys):
    prototxt, caffemodel = files
    out = tmp_path / "tiny.onnx"
    assert (
        main(
            [
                "convert",
                str(prototxt),
                str(caffemodel),
                "-o",
                str(out),
                "--batch",
                "3",
                "--outputs",
                "prob,conv1",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "input   data  [3, 3, 9, 9]" in printed
    assert "output  prob  [3, 5]" in printed and "output  conv1  [3, 4, 4, 4]" in printed
    model = onnx.load(out)
    onnx.checker.check_model(model)
    net = load_net(prototxt, caffemodel, batch=3)
    feeds = {"data": np.random.default_rng(0).standard_normal((3, 3, 9, 9)).astype(np.float32)}
    prob, conv1 = session(model).run(["prob", "conv1"], feeds)
    want = caffe_reference.forward(net, feeds)
    assert rel_error(prob, want["prob"]) <= TOL and rel_error(conv1, want["conv1"]) <= TOL


def test_dynamic_batch_flag(files, tmp_path, capsys):
    prototxt, caffemodel = files
    out = tmp_path / "tiny.onnx"
    assert main(["convert", str(prototxt), str(caffemodel), "-o", str(out), "--dynamic-batch"]) == 0
    assert "input   data  [batch, 3, 9, 9]" in capsys.readouterr().out


def test_unknown_layer_type(files, tmp_path, capsys):
    prototxt, caffemodel = files
    prototxt.write_text(NET + 'layer { name: "odd" type: "Foo" bottom: "prob" top: "odd" }\n')
    out = tmp_path / "tiny.onnx"
    err = run_bad(capsys, ["convert", str(prototxt), str(caffemodel), "-o", str(out)], out)
    assert "'odd'" in err and "Foo" in err and "Convolution" in err and str(prototxt) in err


def test_unknown_output_blob(files, tmp_path, capsys):
    prototxt, caffemodel = files
    out = tmp_path / "tiny.onnx"
    err = run_bad(
        capsys, ["convert", str(prototxt), str(caffemodel), "-o", str(out), "--outputs", "prob,nope"], out
    )
    assert "'nope'" in err and "pool1" in err


def test_missing_file(files, tmp_path, capsys):
    prototxt, caffemodel = files
    out = tmp_path / "tiny.onnx"
    missing = tmp_path / "absent.prototxt"
    err = run_bad(capsys, ["convert", str(missing), str(caffemodel), "-o", str(out)], out)
    assert str(missing) in err
    err = run_bad(
        capsys, ["convert", str(prototxt), str(tmp_path / "absent.caffemodel"), "-o", str(out)], out
    )
    assert "absent.caffemodel" in err


def test_truncated_caffemodel(files, tmp_path, capsys):
    prototxt, caffemodel = files
    data = caffemodel.read_bytes()
    caffemodel.write_bytes(data[: len(data) // 2])
    out = tmp_path / "tiny.onnx"
    err = run_bad(capsys, ["convert", str(prototxt), str(caffemodel), "-o", str(out)], out)
    assert str(caffemodel) in err


def test_bad_batch_is_a_usage_error(files, tmp_path, capsys):
    prototxt, caffemodel = files
    out = tmp_path / "tiny.onnx"
    assert main(["convert", str(prototxt), str(caffemodel), "-o", str(out), "--batch", "0"]) == 2
    assert not out.exists()


# A net without learnable layers: Caffe writes its caffemodel with blobless layer entries (Net::ToProto),
# and reads a zero-byte one as the empty NetParameter; both convert.
PLAIN = """name: "plain"
input: "data"
input_shape { dim: 2 dim: 3 dim: 9 dim: 9 }
layer { name: "relu" type: "ReLU" bottom: "data" top: "relu" }
layer { name: "pool" type: "Pooling" bottom: "relu" top: "pool"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
"""


def relu_max_pool(x: np.ndarray) -> np.ndarray:
    """Caffe's 2x2 stride-2 max pool after a ReLU: 9 -> ceil(7 / 2) + 1 = 5, the last window clipped."""
    padded = np.full((*x.shape[:2], 10, 10), -np.inf)
    padded[:, :, :9, :9] = np.maximum(x, 0.0)
    return padded.reshape(*x.shape[:2], 5, 2, 5, 2).max(axis=(3, 5))


def weightless_files(tmp_path, text: str):
    """prototxt, caffemodel (as the project's writer makes it) and an output path."""
    prototxt, caffemodel = tmp_path / "plain.prototxt", tmp_path / "plain.caffemodel"
    write_net(parse_net_text(text), prototxt, caffemodel)
    return prototxt, caffemodel, tmp_path / "p.onnx"


@pytest.mark.parametrize("form", ["zero-byte", "blobless"])
def test_weightless_net_converts_with_a_caffemodel_without_blobs(tmp_path, capsys, form):
    prototxt, caffemodel, out = weightless_files(tmp_path, PLAIN)
    written = schema.NetParameter.FromString(caffemodel.read_bytes())
    assert [(x.name, len(x.blobs)) for x in written.layer] == [("input", 0), ("relu", 0), ("pool", 0)]
    if form == "zero-byte":
        caffemodel.write_bytes(b"")
    assert main(["convert", str(prototxt), str(caffemodel), "-o", str(out)]) == 0
    assert "output  pool  [2, 3, 5, 5]" in capsys.readouterr().out
    model = onnx.load(out)
    onnx.checker.check_model(model)
    x = np.random.default_rng(1).standard_normal((2, 3, 9, 9)).astype(np.float32)
    (pool,) = session(model).run(["pool"], {"data": x})
    assert pool.shape == (2, 3, 5, 5) and np.array_equal(pool, relu_max_pool(x).astype(np.float32))


@pytest.mark.parametrize("form", ["zero-byte", "blobless"])
def test_weightless_layer_zoo_converts_with_a_caffemodel_without_blobs(tmp_path, capsys, form):
    prototxt, caffemodel, out = weightless_files(tmp_path, WEIGHTLESS)
    if form == "zero-byte":
        caffemodel.write_bytes(b"")
    assert main(["convert", str(prototxt), str(caffemodel), "-o", str(out), "--outputs", "prob,cat"]) == 0
    capsys.readouterr()
    net = load_net(prototxt, caffemodel)
    feeds = {"data": np.random.default_rng(2).standard_normal((2, 3, 8, 8)).astype(np.float32)}
    prob, cat = session(onnx.load(out)).run(["prob", "cat"], feeds)
    want = caffe_reference.forward(net, feeds)
    assert rel_error(prob, want["prob"]) <= TOL and rel_error(cat, want["cat"]) <= TOL


@pytest.mark.parametrize("form", ["zero-byte", "named", "blobless"])
def test_net_with_weights_and_a_caffemodel_without_blobs(files, tmp_path, capsys, form):
    prototxt, caffemodel = files
    blobless = schema.NetParameter(name="tiny")
    for layer in parse_net_text(NET).layers:
        blobless.layer.add(name=layer.name, type=layer.type)
    data = {
        "zero-byte": b"",
        "named": schema.NetParameter(name="tiny").SerializeToString(),
        "blobless": blobless.SerializeToString(),
    }[form]
    caffemodel.write_bytes(data)
    out = tmp_path / "tiny.onnx"
    err = run_bad(capsys, ["convert", str(prototxt), str(caffemodel), "-o", str(out)], out)
    assert str(caffemodel) in err and "layer 'conv1' (Convolution)" in err
    expected = "2 weight blob(s) [(4, 3, 3, 3), (4,)]" if form != "blobless" else "expected 2 weight blob(s)"
    assert expected in err
