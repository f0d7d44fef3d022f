"""`repro convert` end to end, and every way its input can be wrong (exit 2, one line, no output file)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from repro.caffe import load_net, parse_net_text, random_weights, write_net
from repro.cli import main
from tests import caffe_reference
from tests.test_convert_layers import TOL, rel_error, session

NET = """name: "tiny"
input: "data"
input_shape { dim: 1 dim: 3 dim: 9 dim: 9 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 4 kernel_size: 3 stride: 2 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "fc" type: "InnerProduct" bottom: "pool1" top: "fc" inner_product_param { num_output: 5 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""


@pytest.fixture
def files(tmp_path):
    net = parse_net_text(NET)
    random_weights(net, 0)
    prototxt, caffemodel = tmp_path / "tiny.prototxt", tmp_path / "tiny.caffemodel"
    write_net(net, prototxt, caffemodel)
    return prototxt, caffemodel


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
