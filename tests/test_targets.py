"""Targets beyond a class logit (repro.target): hidden units, positions, channel means and weighted sums.

The hidden target's value is checked against the blob read from a separately converted classifier
(`repro convert --outputs BLOB`, run on the prototxt with the in-place ReLU removed, so its blob after a full
forward is what DGN-AM's act_max.py reads after `forward(end=BLOB)`); its gradient against float64 torch
autograd and finite differences (repro.parity); MAP on a convolutional unit against a re-implementation of
act_max.py's loop, one code at a time.
"""

from __future__ import annotations

import json
import re

import numpy as np
import onnxruntime as ort
import pytest
from click.testing import CliRunner

from repro.cli import cli, main
from repro.errors import BadInput
from repro.modelsets import resolve
from repro.parity import against_exact, exact_reference, finite_differences
from repro.posterior import posterior_model, target_rows, target_shape
from repro.runtime import ClassTarget, make_backend
from repro.samplers import METHODS, load_bounds, sample
from repro.samplers.bounds import dgn_am_box
from repro.target import MEAN, Term, for_class, parse, parse_term
from tests.test_samplers_map import act_max_reference


@pytest.fixture(scope="module")
def embedded():
    return resolve("embedded")


@pytest.fixture(scope="module")
def codes():
    return np.random.default_rng(3).standard_normal((3, 512)).astype(np.float32) * 2


def _hidden_backend(ms, blob: str, prior=None):
    return make_backend("ort", posterior_model(ms, "logit", prior, 1.0, target_blob=blob))


def _blob_values(tmp_path, ms, images: np.ndarray, blobs: list[str], drop: tuple[str, ...] = ()) -> dict:
    """The blobs of the embedded classifier, converted by `repro convert --outputs` from its prototxt with the
    layers `drop` (in-place ReLUs) removed, on the crop of `images`."""
    text = ms.classifier.prototxt.read_text()
    for layer in drop:
        text, n = re.subn(r'layer\s*\{\s*name:\s*"' + layer + r'"[^{}]*\}\s*', "", text)
        assert n == 1, layer
    prototxt = tmp_path / f"classifier_{'_'.join(drop) or 'as_is'}.prototxt"
    prototxt.write_text(text)
    out = tmp_path / f"{prototxt.stem}.onnx"
    args = [
        "convert",
        str(prototxt),
        str(ms.classifier.caffemodel),
        "-o",
        str(out),
        "--outputs",
        ",".join(blobs),
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    end = ms.crop_offset + ms.crop_size
    crop = images[:, :, ms.crop_offset : end, ms.crop_offset : end]
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    values = [session.run(blobs, {"data": crop[i : i + 1]}) for i in range(len(crop))]
    return {blob: np.concatenate([v[j] for v in values]) for j, blob in enumerate(blobs)}


def test_parse_forms_and_text():
    assert parse_term("class:7") == Term("class", 7)
    assert parse_term("fc6:123=-0.5") == Term("fc6", 123, None, -0.5)
    assert parse_term("conv5:45@6,6") == Term("conv5", 45, (6, 6))
    assert parse_term("inception_4a/output:3@mean=2") == Term("inception_4a/output", 3, MEAN, 2.0)
    target = parse(["class:643=1", "class:624=0.5"])
    assert target.text() == "class:643 class:624=0.5" and not target.hidden and target.class_index is None
    assert parse([t for t in target.text().split()]) == target
    assert for_class(3).class_index == 3 and parse(["conv3:1@2,3"]).class_index is None


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        (["fc6"], "expected class:K"),
        (["fc6:x"], "the unit must be a whole number"),
        (["fc6:-1"], "the unit must be a whole number"),
        (["fc6:3=heavy"], "the weight after '=' must be a number, got 'heavy'"),
        (["fc6:3=inf"], "must be finite"),
        (["class:3@1,1"], "a class has no position"),
        (["conv3:3@4"], "expected @Y,X or @mean"),
        (["conv3:3@a,1"], "the row must be a whole number"),
        (["class:1", "fc6:2"], "every term must read one blob; got class, fc6"),
        ([], "at least one"),
    ],
)
def test_bad_specs_are_refused(specs, message):
    with pytest.raises(BadInput, match=re.escape(message)):
        parse(specs)


def test_weights_place_each_term():
    shape = (4, 3, 5)
    w = parse(["m:1@2,3=2", "m:0@mean", "m:7=-1"]).weights(shape).reshape(shape)
    expected = np.zeros(shape, np.float32)
    expected[1, 2, 3] = 2
    expected[0] += 1 / 15
    expected.reshape(-1)[7] += -1
    np.testing.assert_allclose(w, expected, rtol=1e-7)
    for specs, message in [
        (["m:4@0,0"], "channel 4 is outside m's 4 channels"),
        (["m:1@3,0"], "position (3, 0) is outside m's 3×5 map"),
        (["m:60"], "unit 60 is outside m's 60 values (4×3×5)"),
    ]:
        with pytest.raises(BadInput, match=re.escape(message)):
            parse(specs).weights(shape)
    with pytest.raises(BadInput, match=re.escape("fc6 is not a convolutional map (its shape is 512)")):
        parse(["fc6:1@0,0"]).weights((512,))


def test_hidden_values_are_the_blobs_before_their_relu(tmp_path, embedded, codes):
    """logp of fc6:U, conv3:C@Y,X and conv3:C@mean (no prior) equals the blob as act_max.py reads it: read
    from a conversion of the prototxt without the in-place ReLU; with it, the blob is max(0, that)."""
    specs = {"fc6": ["fc6:17", "fc6:300=0.5"], "conv3": ["conv3:5@3,4", "conv3:7@mean", "conv3:2@0,6=-2"]}
    backends = {blob: _hidden_backend(embedded, blob) for blob in specs}
    images = backends["fc6"].images(codes)
    # each blob from a net without its own ReLU (without relu3, every blob after conv3 would change too)
    pre = {
        **_blob_values(tmp_path, embedded, images, ["fc6"], drop=("relu6",)),
        **_blob_values(tmp_path, embedded, images, ["conv3"], drop=("relu3",)),
    }
    post = _blob_values(tmp_path, embedded, images, ["fc6", "conv3", "pool3"])
    np.testing.assert_array_equal(np.maximum(pre["conv3"], 0), post["conv3"])
    assert (pre["conv3"] < 0).any() and (pre["fc6"] < 0).any()  # the ReLU matters on these codes
    for blob, terms in specs.items():
        for spec in terms:
            target = parse([spec])
            weights = target.weights(target_shape(embedded, blob))
            logp, _ = backends[blob].value_and_grad(codes, weights)
            expected = pre[blob].reshape(len(codes), -1).astype(np.float64) @ weights.astype(np.float64)
            np.testing.assert_allclose(logp, expected, rtol=1e-5, atol=1e-4 * np.abs(pre[blob]).max())
    pooled = _hidden_backend(embedded, "pool3")  # not rewritten in place: the blob as converted
    weights = parse(["pool3:9@1,1"]).weights(target_shape(embedded, "pool3"))
    np.testing.assert_allclose(
        pooled.value_and_grad(codes, weights)[0], post["pool3"][:, 9, 1, 1], rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("spec", ["fc6:17", "conv3:5@3,4", "conv3:7@mean"])
def test_hidden_gradient_parity(embedded, codes, spec):
    """ORT-VJP against float64 torch autograd and float64 finite differences, on the posterior with its
    N(0, I) prior, as the parity gate checks a class target."""
    target = parse([spec])
    model = posterior_model(embedded, "logit", 1.0, 1.0, target_blob=target.blob)
    ort_backend = make_backend("ort", model)
    exact = exact_reference(model)
    weights = target.weights(target_shape(embedded, target.blob))
    checks = against_exact(ort_backend, exact, codes, weights)
    checks += finite_differences(ort_backend, exact, codes, weights, n_directions=3, seed=0)
    for check in checks:
        print(f"{spec}: {check.name}: {check.error:.2e} (tolerance {check.tolerance:.0e})")
        assert check.passed, check.name


def test_weighted_gradient_is_the_weighted_sum(embedded, codes):
    """One graph, chains aimed at different rows: a weighted target's logp and gradient are the weighted
    sums of its terms' (no prior, so the objective is linear in the weights)."""
    backend = _hidden_backend(embedded, "conv3")
    shape = target_shape(embedded, "conv3")
    parts = [parse(["conv3:5@3,4"]).weights(shape), parse(["conv3:7@mean"]).weights(shape)]
    both = parse(["conv3:5@3,4=1.5", "conv3:7@mean=-0.25"]).weights(shape)
    rows = np.stack([parts[0], parts[1], both])
    z = np.repeat(codes[:1], 3, axis=0)
    logp, grad = backend.value_and_grad(z, rows)
    np.testing.assert_allclose(logp[2], 1.5 * logp[0] - 0.25 * logp[1], rtol=1e-5, atol=1e-5)
    scale = np.abs(grad[2]).max()
    np.testing.assert_allclose(grad[2], 1.5 * grad[0] - 0.25 * grad[1], atol=1e-5 * scale)
    assert np.abs(grad[0] - grad[1]).max() > 0.1 * scale  # the parts differ: the check can fail
    classes = make_backend("ort", posterior_model(embedded, "logit", None))
    mix = parse(["class:2=0.5", "class:6=2"]).weights(target_shape(embedded, None))
    value, gradient = classes.value_and_grad(codes, mix)
    (v2, g2), (v6, g6) = classes.value_and_grad(codes, 2), classes.value_and_grad(codes, 6)
    np.testing.assert_allclose(value, 0.5 * v2 + 2 * v6, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gradient, 0.5 * g2 + 2 * g6, atol=1e-5 * np.abs(gradient).max())


def test_map_clip_on_a_conv_unit_follows_act_max(embedded):
    """DGN-AM's hidden branch (conv3, channel C at xy = 3, as 4_activate_hidden.sh's conv5 at xy 6): the
    sampler against act_max.py's loop re-implemented one code at a time, over the published 200 steps."""
    m = METHODS["map-clip"]
    backend = _hidden_backend(embedded, "conv3")
    weights = parse(["conv3:11@3,3"]).weights(target_shape(embedded, "conv3"))
    aimed = ClassTarget(backend, weights)
    upper = load_bounds(embedded.clip_bounds, 512)
    z0 = np.random.default_rng(0).standard_normal((1, 512))
    options = {**m.published, "clip": dgn_am_box(upper)}
    result = sample(aimed, "map-clip", z0, m.published_steps, 0, embedded.start_step(m), **options)

    def grad_one(code):
        return aimed.value_and_grad(code[None])[1][0].astype(np.float64)

    start = embedded.start_step(m)
    trajectory, best = act_max_reference(grad_one, z0[0], m.published_steps, start, 1e-10, upper, 0.99)
    diff = max(np.abs(result.samples[:, 0] - trajectory).max(), np.abs(result.z_last_start[0] - best).max())
    first, last = aimed.value_and_grad(z0)[0][0], aimed.value_and_grad(result.z)[0][0]
    print(f"MAP+clip on conv3:11@3,3: max |difference| {diff:.2e}; activation {first:.2f} → {last:.2f}")
    assert diff <= 1e-9 * np.abs(trajectory).max()
    assert last > first + 1.0  # it climbs: the comparison is not between two resting codes


def _sample(tmp_path, capsys, *args):
    """`repro sample` as the command line runs it (exit code, and what it printed)."""
    out = tmp_path / "out"
    base = ["sample", "--models", "embedded", "--chains", "2", "--steps", "3", "-o", str(out)]
    code = main([*base, *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err, out


def test_sample_a_hidden_target_records_it(tmp_path, capsys):
    code, output, out = _sample(
        tmp_path, capsys, "--target", "fc6:12", "--target", "fc6:40=0.5", "--method", "map"
    )
    assert code == 0, output
    record = json.loads((out / "run.json").read_text())
    assert record["target"] == record["settings"]["target"] == "fc6:12 fc6:40=0.5"
    assert record["class_index"] is None and record["class_name"] is None
    assert record["settings"]["objective"] == "activation"
    assert record["evaluator"]["accuracy"] is None and "not one class" in record["evaluator"]["no_class"]
    assert all(check["passed"] for check in record["parity"])
    assert "fc6:12 fc6:40=0.5" in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target", "nope:3"], "target blob 'nope' is not a computed blob of the classifier"),
        (["--target", "data:3"], "target blob 'data' is not a computed blob"),
        (["--target", "fc6:512"], "unit 512 is outside fc6's 512 values"),
        (["--target", "conv3:1@7,0"], "position (7, 0) is outside conv3's 7×7 map"),
        (["--target", "conv3:1@0,0=x"], "the weight after '=' must be a number"),
        (["--target", "class:10"], "class index 10"),
        (["--target", "class:1", "--class", "1"], "not both"),
        ([], "give --class K or --target"),
        (["--target", "fc6:1", "--method", "mala-released"], "runs on --class K only"),
    ],
)
def test_sample_bad_targets_exit_2_in_one_line(tmp_path, capsys, args, message):
    if "--method" not in args:
        args = [*args, "--method", "map"]
    code, output, out = _sample(tmp_path, capsys, *args)
    assert code == 2, output
    assert message in output and "Traceback" not in output and len(output.strip().splitlines()) == 1
    assert not out.exists()


def test_target_rows_checks_shapes():
    with pytest.raises(BadInput, match=re.escape("expected [5] or [2, 5], got [3]")):
        target_rows(np.zeros(3, np.float32), 2, 5)
    np.testing.assert_array_equal(target_rows(np.arange(5.0), 2, 5), np.tile(np.arange(5.0), (2, 1)))
