"""The kernel contract (repro.samplers.kernel): `METHODS` refuses a kernel module that does not keep it."""

from __future__ import annotations

import types

import pytest

from repro.samplers import METHODS, Method, mala
from repro.samplers.kernel import CONTRACT, check_kernel


def _copy_of(module: types.ModuleType, **changes) -> types.ModuleType:
    copy = types.ModuleType("repro.samplers.my_kernel")
    for name in CONTRACT:
        setattr(copy, name, getattr(module, name))
    for name, value in changes.items():
        if value is None and name != "TARGET_ACCEPT":
            delattr(copy, name)
        else:
            setattr(copy, name, value)
    return copy


def test_every_kernel_in_the_table_keeps_the_contract():
    assert {m.kernel.__name__ for m in METHODS.values()} == {
        "repro.samplers.map",
        "repro.samplers.mala",
        "repro.samplers.hmc",
        "repro.samplers.mala_released",
        "repro.samplers.hmc_released",
        "repro.samplers.mala_mass",
        "repro.samplers.hmc_jitter",
        "repro.samplers.ghmc",
        "repro.samplers.mclmc",
        "repro.samplers.ppgn_released",
    }
    for m in METHODS.values():
        assert check_kernel(m.kernel) is m.kernel


@pytest.mark.parametrize("missing", sorted(CONTRACT))
def test_a_kernel_missing_a_name_is_refused_naming_it(missing):
    broken = _copy_of(mala, **{missing: None})
    if missing == "TARGET_ACCEPT":
        delattr(broken, "TARGET_ACCEPT")
    with pytest.raises(TypeError, match=rf"kernel module repro.samplers.my_kernel: no {missing} \("):
        Method("mine", broken, "Mine", "log_softmax", 1.0, False, {}, "mala_step", 10)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("TARGET_ACCEPT", 57.4, "TARGET_ACCEPT = 57.4 is not the acceptance rate"),
        ("DRAWS", 1, "DRAWS = 1 is not a bool"),
        ("OPTIONS", {"step": 0.1}, "OPTIONS = {'step': 0.1} is not a dict of option name → Option"),
        ("gradients_per_step", 1, "gradients_per_step = 1 is not a function"),
    ],
)
def test_a_kernel_holding_the_wrong_kind_of_value_is_refused(name, value, message):
    with pytest.raises(TypeError, match=message):
        check_kernel(_copy_of(mala, **{name: value}))
