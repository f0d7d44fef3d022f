"""The tables that name the parts: methods and backends are each listed once, and every user reads that list.

Adding a method must be one table entry: the test adds one (a renamed copy of MALA) and finds it in the
sampler API and the report's rows without touching anything else.
"""

from __future__ import annotations

import dataclasses

import click
import numpy as np
import pytest

from repro import cli
from repro.runtime import BACKENDS, make_backend
from repro.samplers import METHODS, sample
from repro.samplers.accept import metropolis_hastings
from repro.samplers.state import State
from repro.samplers.targets import Gaussian


def _choices(command: click.Command, option: str) -> list[str]:
    param = next(p for p in command.params if p.name == option)
    return list(param.type.choices)


def test_command_line_choices_come_from_the_tables():
    assert _choices(cli.sample, "method") == list(METHODS)
    for command in (cli.sample, cli.report):
        assert _choices(command, "backend") == list(BACKENDS)


def test_every_backend_is_checked_against_another_backend():
    for name, kind in BACKENDS.items():
        assert kind.checked_against in BACKENDS and kind.checked_against != name


def test_unknown_backend_is_bad_input():
    from repro.errors import BadInput

    with pytest.raises(BadInput, match="expected one of ort, torch"):
        make_backend("tpu", None)


def test_a_new_table_entry_is_a_new_method_everywhere(monkeypatch, tmp_path):
    from repro.modelsets import resolve
    from repro.report.plan import rows
    from tests.test_report import write_tiny_set

    copy = dataclasses.replace(METHODS["mala"], name="mala-copy", label="MALA copy", paper_key=None)
    monkeypatch.setitem(METHODS, "mala-copy", copy)

    target = Gaussian(np.zeros(3), np.eye(3))
    z0 = np.zeros((2, 3))
    a = sample(target, "mala", z0, 20, 1, 0.3, noise_anneal=0.2)
    b = sample(target, "mala-copy", z0, 20, 1, 0.3, noise_anneal=0.2)
    np.testing.assert_array_equal(a.z, b.z)
    assert b.method == "mala-copy"

    made = {r.key: r for r in rows(resolve(str(write_tiny_set(tmp_path / "tiny"))), 0.01, 20)}
    assert {"mala-copy", "mala-copy-da"} <= set(made)
    assert made["mala-copy"].options == made["mala"].options
    # the tiny set has no encoder (no classifier blob of the code's size): PPGN's row needs one
    assert {r.method for r in made.values()} == {name for name, m in METHODS.items() if not m.encoder}


def test_metropolis_hastings_accepts_by_the_log_uniform_test():
    class Never:
        def value_and_grad(self, z):
            raise AssertionError("no bounds: the target is not called")

    current = State(np.zeros((4, 2)), np.zeros(4), np.zeros((4, 2)))
    proposal = State(np.ones((4, 2)), np.ones(4), np.ones((4, 2)))
    log_ratio = np.array([np.log(0.5), np.log(0.5), 3.0, np.nan])
    usable = np.array([True, True, False, True])
    uniform = np.array([0.4, 0.6, 0.0, 0.0])
    d = metropolis_hastings(Never(), current, proposal, log_ratio, usable, uniform, None)
    # chain 0: u 0.4 < 0.5 accepts; chain 1: 0.6 > 0.5 rejects; chain 2 unusable, chain 3 NaN: rejected
    assert d.accepted.tolist() == [True, False, False, False]
    np.testing.assert_allclose(d.accept_prob, [0.5, 0.5, 0.0, 0.0])
    assert d.state.z[:, 0].tolist() == [1.0, 0.0, 0.0, 0.0] and d.extra_evals == 0


def test_metropolis_hastings_clips_the_accepted_state_and_refreshes_its_cache():
    from repro.samplers.bounds import check_clip

    target = Gaussian(np.zeros(2), np.eye(2))
    current = State(np.zeros((2, 2)), np.zeros(2), np.zeros((2, 2)))
    far = np.array([[3.0, 0.5], [0.2, 0.1]])
    proposal = State(far, *target.value_and_grad(far))
    d = metropolis_hastings(
        target, current, proposal, np.zeros(2), np.ones(2, bool), np.full(2, 0.5), check_clip((-1.0, 1.0), 2)
    )
    assert d.extra_evals == 1 and d.state.z.tolist() == [[1.0, 0.5], [0.2, 0.1]]
    np.testing.assert_array_equal(d.state.logp, target.value_and_grad(d.state.z)[0])
