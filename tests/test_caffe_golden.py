"""Conversion and gradients against real Caffe's answers, stored as golden files (no Caffe needed here).

tests/fixtures/caffe/ holds, per case, what Caffe computed (tools/caffe_oracle/make_fixtures.py): blobs after
a forward pass and input gradients from Caffe's own backward. Weights and inputs are rebuilt from the stored
seed, so the comparison is repro's reader + converter + ORT forward + ORT-VJP gradient against Caffe's C++.
"""

from __future__ import annotations

import numpy as np
import pytest

from tools.caffe_oracle import golden
from tools.caffe_oracle.runner import result_from_npz

CASES = golden.load_manifest()


def _param(case: golden.Case):
    return pytest.param(case, id=case.name, marks=[pytest.mark.slow] if case.slow else [])


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_matches_caffe(case: golden.Case) -> None:
    try:
        text, source, digest = golden.case_text(case)
    except FileNotFoundError as missing:
        pytest.skip(f"reference prototxt absent: {missing}")
    assert golden.text_digest(text) == digest, (
        f"{source} changed since the golden files were made; rerun tools/caffe_oracle/make_fixtures.py"
    )
    net = golden.build_net(text, source, case)
    assert golden.weights_digest(net) == case.weights_sha, (
        "random_weights no longer gives the weights Caffe saw; rerun tools/caffe_oracle/make_fixtures.py"
    )
    with np.load(golden.FIXTURES / f"{case.name}.npz") as f:
        expected = result_from_npz(f)
    assert set(expected["blobs"]) == set(case.blobs) and set(expected["grads"]) == set(case.grad_specs)

    inputs = golden.seeded_inputs(net, case.seed, case.input_scale)
    ours = golden.repro_side(net, inputs, case.blobs, case.grad_specs)
    checks = golden.compare(case.name, ours, expected, case.grad_noise)

    assert len(checks) == len(case.blobs) + len(case.grad_specs) * len(net.inputs)
    failed = [c for c in checks if not c.passed]
    assert not failed, "\n" + golden.format_table(failed)


def test_fixtures_are_small_and_weightless() -> None:
    """Golden files stay a few MB, and hold only Caffe's answers (blob/ and grad/ entries), never weights."""
    files = list(golden.FIXTURES.iterdir())
    assert sum(f.stat().st_size for f in files) < 6_000_000
    for case in CASES:
        with np.load(golden.FIXTURES / f"{case.name}.npz") as f:
            assert all(k.startswith(("blob/", "grad/")) for k in f.files)
            assert all(f[k].dtype == np.float32 for k in f.files)
