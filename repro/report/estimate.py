"""`repro report --dry-run`: what a report would run and about how long it would take, before it runs.

A full paper grid on the full-size models is hours of sampling; a user should see the cost first. The cost
is counted exactly (every unit's sampler iterations × its kernel's gradients per iteration) and priced by
timing the chosen backend's value-and-grad call at each batch size the units use, on this machine. It
leaves out what costs little beside sampling (judge and evaluator scoring, figures) and the extra
evaluations of clipped steps, which depend on the chains.

`refuse_what_cannot_fit` prices the plan's memory the same way before a report runs (repro.resources): its
largest sampler call (a row's chains × classes in one batch: traces, samples, images, one value-and-grad call)
and the finished cells the report keeps to the end (their log π traces and images).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from repro.bench import call_times
from repro.modelsets import ModelSet
from repro.report.plan import Plan
from repro.report.run import Unit, Worker, pending_units, posterior_key
from repro.resources import call_bytes, net_sizes, refuse_unless_fits, sampling_bytes, size_text
from repro.samplers.methods import METHODS


@dataclass(frozen=True)
class RowCost:
    key: str
    label: str
    cells: int
    calls: int  # sampler calls (units)
    batch: int  # chains per call
    iterations: int  # per call
    gradients_per_chain: int
    gradients: int  # all chains of all calls
    seconds: float  # estimated wall time, one call after the other


@dataclass(frozen=True)
class Estimate:
    rows: list[RowCost]
    seconds_per_call: dict[tuple[str, int], float]  # (posterior, batch) → measured median

    @property
    def gradients(self) -> int:
        return sum(r.gradients for r in self.rows)

    @property
    def seconds(self) -> float:
        return sum(r.seconds for r in self.rows)


def _posterior(unit: Unit) -> str:
    """How the dry run names the posterior a unit samples; guidance (one more product) is priced as β = 1."""
    objective, sigma, kind, _ = posterior_key(unit.row)
    return f"{objective}, {'fitted prior' if kind == 'fitted' else f'prior {sigma}'}"


def estimate(ms, plan: Plan, backend: str = "ort", device: str = "cpu", repeats: int = 3) -> Estimate:
    """The plan's cost, every cell counted as still to run."""
    units = pending_units(plan, {c.key: None for c in plan.cells})
    worker = Worker(ms, plan, backend, device, progress=False)
    timed: dict[tuple[str, int], float] = {}
    for unit in units:
        key = (_posterior(unit), plan.chains * len(unit.cells))
        if key not in timed:
            timed[key] = _seconds_per_call(worker.backend(unit.row), key[1], repeats)
    costs = []
    drawn = set()  # the priors whose draws an earlier exact row already pays for
    for row in plan.rows:
        mine = [u for u in units if u.row.key == row.key]
        kernel = METHODS[row.method].kernel
        per_iteration = kernel.gradients_per_step(**row.options)
        batch = plan.chains * len(mine[0].cells)
        calls = len(mine)
        per_call = timed[(_posterior(mine[0]), batch)]
        if row.kind == "exact":  # no gradients: the prior draws' forward passes, once per prior
            seconds = 0.0 if row.prior in drawn else row.steps / batch * per_call
            drawn.add(row.prior)
            cells = len(mine[0].cells)
            costs.append(RowCost(row.key, row.label, cells, calls, batch, row.steps, 0, 0, seconds))
            continue
        costs.append(
            RowCost(
                row.key,
                row.label,
                sum(len(u.cells) for u in mine),
                calls,
                batch,
                row.steps,
                row.steps * per_iteration,
                row.steps * per_iteration * batch * calls,
                calls * row.steps * per_iteration * per_call,
            )
        )
    return Estimate(costs, timed)


def _seconds_per_call(backend, batch: int, repeats: int) -> float:
    return statistics.median(call_times(backend, batch, repeats))


def describe(est: Estimate, backend: str, device: str) -> str:
    """The estimate as a text table, with the measured call times it rests on."""
    w = max([16] + [len(r.key) for r in est.rows])
    lines = [
        f"{'row':<{w}} {'cells':>5} {'calls':>5} {'batch':>5} {'iters':>6} {'grads/chain':>11} "
        f"{'gradients':>12} {'est. time':>10}"
    ]
    for r in est.rows:
        lines.append(
            f"{r.key:<{w}} {r.cells:>5} {r.calls:>5} {r.batch:>5} {r.iterations:>6} "
            f"{r.gradients_per_chain:>11,} {r.gradients:>12,} {_duration(r.seconds):>10}"
        )
    lines.append(
        f"{'all':<{w}} {sum(r.cells for r in est.rows):>5} {'':>5} {'':>5} {'':>6} {'':>11} "
        f"{est.gradients:>12,} {_duration(est.seconds):>10}"
    )
    timing = "; ".join(
        f"{o}, batch {b}: {s * 1e3:.1f} ms" for (o, b), s in sorted(est.seconds_per_call.items())
    )
    lines.append(
        f"priced by one value-and-grad call ({backend} on {device}, median, this machine): {timing}. "
        "One call after the other, as --executor local runs them; with Ray, about this divided by the "
        "number of tasks running at once. Scoring, figures and extra evaluations of clipped steps are "
        "not counted."
    )
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def refuse_what_cannot_fit(ms: ModelSet, plan: Plan, device: str = "cpu") -> None:
    """BadInput, naming the options and the estimate, when the plan's largest sampler call and the cells
    kept beside it would not fit in this machine's available memory (see the module docstring)."""
    sizes = net_sizes(ms)
    units = pending_units(plan, {c.key: None for c in plan.cells})

    def held(unit: Unit) -> tuple[int, int]:
        batch = plan.chains * len(unit.cells)
        steps = unit.row.steps
        thin = max(1, steps // 100)  # as Worker.run_unit keeps samples
        return sampling_bytes(sizes, batch, steps, thin), call_bytes(sizes, batch, device)

    unit = max(units, key=lambda u: sum(held(u)))
    traces, call = held(unit)
    cells = sum(c.row.steps * plan.chains * 9 + plan.chains * sizes.image * 4 for c in plan.cells)
    classes = len(unit.cells)
    steps_option = "--budget" if unit.row.mcmc else "--map-steps"
    lower = ["--chains", *(["--classes"] if classes > 1 else []), *([steps_option] if traces > call else [])]
    refuse_unless_fits(
        traces + call + cells,
        f"--chains {plan.chains} × {classes} class{'es' if classes > 1 else ''} in one sampler call (row "
        f"{unit.row.key}, {unit.row.steps} iterations): the report",
        " or ".join([", ".join(lower[:-1]), lower[-1]] if len(lower) > 1 else lower),
        f"its traces, samples and images {size_text(traces)}, its value-and-grad call {size_text(call)}, "
        f"the finished cells kept beside it {size_text(cells)}",
    )
