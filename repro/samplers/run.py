"""The sampling loop: schedules, warm-up adaptation, per-chain random streams, thinning, checkpoint/resume.

Chain i draws from its own stream `SeedSequence(seed).spawn(C)[i]`, so its noise never depends on how many
chains run beside it; together with row-wise arithmetic this makes chain i's trajectory independent of the
batch (given a target whose rows do not interact). A resumed run restores every chain's exact RNG state,
the cached value and gradient, the adaptation accumulators and the traces, so it continues bit for bit.
"""

from __future__ import annotations

import hashlib
import sys
import time
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from repro.errors import BadInput
from repro.samplers import adapt, checkpoint
from repro.samplers.config import Config, resolve
from repro.samplers.state import Draws, State, Target, finite_rows


@dataclass
class Result:
    """Per-step traces are [steps, C]; `samples` holds the state after every `thin`-th step."""

    z: np.ndarray  # [C, D] final states
    samples: np.ndarray  # [steps // thin, C, D]
    logp: np.ndarray  # [steps, C] log density of the state after each step
    accepted: np.ndarray  # [steps, C] bool (all True for MAP)
    accept_rate: np.ndarray  # [C] over the steps after warm-up
    n_grad: int  # gradient evaluations per chain, the initial one included
    seconds: float
    energy_error: np.ndarray | None  # [steps, C] HMC only: H_new − H_old (NaN where non-finite)
    divergent: np.ndarray | None  # [steps, C] HMC only
    n_nonfinite: np.ndarray  # [C] steps that met a non-finite value (rejected or skipped)
    step_size: np.ndarray  # [C] step size used in the last step
    z_last_start: np.ndarray | None  # [C, D] MAP only: the state at the start of the last step
    method: str
    warmup: int  # adaptation steps at the start of the traces
    thin: int

    @property
    def z_image(self) -> np.ndarray:
        """The codes whose images the method reports: MAP's state at the start of its last step (the code
        DGN-AM had just scored when it saved the image), every other method's final state."""
        return self.z if self.z_last_start is None else self.z_last_start


@dataclass
class _Run:
    """The mutable record of a run in progress: exactly what a checkpoint stores."""

    t: int
    state: State
    rngs: list[np.random.Generator]
    da: adapt.DualAveragingState | None
    logp: np.ndarray
    accepted: np.ndarray
    energy_error: np.ndarray | None
    divergent: np.ndarray | None
    samples: np.ndarray
    n_nonfinite: np.ndarray
    step_size: np.ndarray
    z_last_start: np.ndarray | None
    n_grad: int
    seconds: float


def sample(
    target: Target,
    method: str,
    z0: np.ndarray,
    steps: int | None = None,
    seed: int = 0,
    step_size: float | np.ndarray | None = None,
    **options,
) -> Result:
    """Run `method` (a name in repro.samplers.methods.METHODS) from z0 [C, D] for `steps` steps.

    Options: schedule ("constant", "linear" with lr_end, "poly" with poly_b and poly_gamma), clip (lower,
    upper), thin, checkpoint, checkpoint_every, resume, progress; each kernel's own (MAP: decay, normalize;
    MALA: noise_anneal; HMC: n_leapfrog); and for methods with an accept step, adapt. With `adapt` = W, the
    first W steps tune each chain's step by dual averaging at constant step and unit noise; the schedule
    (and noise annealing) then starts from the frozen step, counting its iterations from the end of warm-up.
    """
    z0 = _check_z0(z0)
    cfg = resolve(method, z0.shape[0], z0.shape[1], steps, seed, step_size, options)
    started = time.perf_counter()
    resuming = cfg.resume and cfg.checkpoint.exists()
    run = _from_checkpoint(cfg, z0) if resuming else _fresh(cfg, target, z0)
    step = cfg.method.kernel.build(cfg.bounds, **cfg.params)
    elapsed_before = run.seconds
    every = max(1, cfg.steps // 100)
    with tqdm(
        total=cfg.steps, initial=run.t, desc=cfg.method.name, disable=not cfg.progress, file=sys.stderr
    ) as bar:
        while run.t < cfg.steps:
            _advance(cfg, step, target, run)
            bar.update(1)
            if run.t % every == 0 or run.t == cfg.steps:
                bar.set_postfix(accept=f"{run.accepted[: run.t].mean():.3f}")
            if cfg.checkpoint is not None and (run.t % cfg.checkpoint_every == 0 or run.t == cfg.steps):
                run.seconds = elapsed_before + time.perf_counter() - started
                _save(cfg, z0, run)
    run.seconds = elapsed_before + time.perf_counter() - started
    return _result(cfg, run)


def _check_z0(z0: object) -> np.ndarray:
    try:
        z = np.array(z0, dtype=np.float64)
    except (TypeError, ValueError):
        raise BadInput(f"z0: expected a numeric 2-D array [chains, dim], got {type(z0).__name__}") from None
    if z.ndim != 2 or 0 in z.shape:
        raise BadInput(f"z0: expected a 2-D array [chains, dim] with chains, dim >= 1, got shape {z.shape}")
    bad = np.flatnonzero(~finite_rows(z))
    if bad.size:
        raise BadInput(f"z0: expected finite values, got NaN or inf in chains {bad[:10].tolist()}")
    return z


def _fresh(cfg: Config, target: Target, z0: np.ndarray) -> _Run:
    state = cfg.method.kernel.init(target, z0)
    bad = np.flatnonzero(~finite_rows(state.logp, state.grad))
    if bad.size:
        raise BadInput(
            f"z0: the target's log density or gradient is not finite at chains {bad[:10].tolist()}"
        )
    chains, dim = z0.shape
    rngs = [np.random.Generator(np.random.PCG64(s)) for s in np.random.SeedSequence(cfg.seed).spawn(chains)]
    return _Run(
        t=0,
        state=state,
        rngs=rngs,
        da=adapt.init(cfg.step_size) if cfg.adapt else None,
        logp=np.full((cfg.steps, chains), np.nan),
        accepted=np.zeros((cfg.steps, chains), dtype=bool),
        energy_error=None,
        divergent=None,
        samples=np.zeros((cfg.steps // cfg.thin, chains, dim)),
        n_nonfinite=np.zeros(chains, dtype=np.int64),
        step_size=cfg.step_size.copy(),
        z_last_start=None,
        n_grad=1,
        seconds=0.0,
    )


def _step_size_at(cfg: Config, run: _Run, t: int) -> np.ndarray:
    if t < cfg.adapt:
        return adapt.step_size(run.da)
    base = adapt.final_step_size(run.da) if cfg.adapt else cfg.step_size
    return cfg.schedule(base, t - cfg.adapt, cfg.steps - cfg.adapt)


def _draw(rngs: list[np.random.Generator], dim: int) -> Draws:
    """Each chain's standard normal vector, then its uniform, from its own stream."""
    normal = np.empty((len(rngs), dim))
    uniform = np.empty(len(rngs))
    for i, g in enumerate(rngs):
        g.standard_normal(out=normal[i])
        uniform[i] = g.random()
    return Draws(normal, uniform)


def _advance(cfg: Config, step, target: Target, run: _Run) -> None:
    t = run.t
    kernel = cfg.method.kernel
    warm = t < cfg.adapt
    eps = _step_size_at(cfg, run, t)
    start = run.state
    draws = _draw(run.rngs, start.z.shape[1]) if kernel.DRAWS else None
    state, info = step(start, target, eps, draws, t - cfg.adapt)
    if warm:
        run.da = adapt.update(run.da, info.accept_prob, kernel.TARGET_ACCEPT)
        if info.metric_changed:
            run.da = adapt.restart(run.da)
    if kernel.IMAGE_AT_LAST_START:
        run.z_last_start = start.z
    run.state = state
    run.logp[t] = state.logp
    run.accepted[t] = info.accepted
    if info.energy_error is not None:
        if run.energy_error is None:
            run.energy_error = np.full(run.logp.shape, np.nan)
            run.divergent = np.zeros(run.logp.shape, dtype=bool)
        run.energy_error[t] = info.energy_error
        run.divergent[t] = info.divergent
    run.n_nonfinite += info.nonfinite
    run.step_size = eps
    run.n_grad += info.n_eval
    run.t = t + 1
    if run.t % cfg.thin == 0:
        run.samples[run.t // cfg.thin - 1] = state.z


def _result(cfg: Config, run: _Run) -> Result:
    return Result(
        z=run.state.z,
        samples=run.samples,
        logp=run.logp,
        accepted=run.accepted,
        accept_rate=run.accepted[cfg.adapt :].mean(axis=0),
        n_grad=run.n_grad,
        seconds=run.seconds,
        energy_error=run.energy_error,
        divergent=run.divergent,
        n_nonfinite=run.n_nonfinite,
        step_size=np.broadcast_to(run.step_size, run.n_nonfinite.shape).copy(),
        z_last_start=run.z_last_start,
        method=cfg.method.name,
        warmup=cfg.adapt,
        thin=cfg.thin,
    )


# ---- checkpoints ---------------------------------------------------------------------------------------

_DA_FIELDS = ("log_step", "log_step_avg", "h_avg", "mu")


def _fingerprint(cfg: Config, z0: np.ndarray) -> dict:
    return {**cfg.fingerprint(), "shape": list(z0.shape), "z0": hashlib.sha256(z0.tobytes()).hexdigest()}


def _save(cfg: Config, z0: np.ndarray, run: _Run) -> None:
    t = run.t
    arrays = {
        "z": run.state.z,
        "state_logp": run.state.logp,
        "state_grad": run.state.grad,
        "state_memory": run.state.memory,
        "rngs": checkpoint.rng_states(run.rngs),
        "logp": run.logp[:t],
        "accepted": run.accepted[:t],
        "energy_error": None if run.energy_error is None else run.energy_error[:t],
        "divergent": None if run.divergent is None else run.divergent[:t],
        "samples": run.samples[: t // cfg.thin],
        "n_nonfinite": run.n_nonfinite,
        "step_size": run.step_size,
        "z_last_start": run.z_last_start,
    }
    if run.da is not None:
        arrays.update({f"da_{name}": getattr(run.da, name) for name in _DA_FIELDS})
    meta = {
        "fingerprint": _fingerprint(cfg, z0),
        "t": t,
        "steps": cfg.steps,
        "n_grad": run.n_grad,
        "seconds": run.seconds,
        "da_count": None if run.da is None else run.da.count,
    }
    checkpoint.save(cfg.checkpoint, meta, arrays)


def _from_checkpoint(cfg: Config, z0: np.ndarray) -> _Run:
    path = cfg.checkpoint
    meta, a = checkpoint.load(path)
    saved, now = meta["fingerprint"], _fingerprint(cfg, z0)
    for key in now:
        if saved.get(key) != now[key]:
            raise BadInput(
                f"checkpoint {path}: written for {key}={saved.get(key)!r}, this run has {now[key]!r}"
            )
    t = meta["t"]
    if t > cfg.steps:
        raise BadInput(f"checkpoint {path}: already at step {t}, beyond steps={cfg.steps}")
    if meta["steps"] != cfg.steps and cfg.schedule.depends_on_length:
        raise BadInput(
            f"checkpoint {path}: written for steps={meta['steps']}, this run has steps={cfg.steps}, and the "
            f"{cfg.schedule.kind} schedule depends on the step count"
        )
    chains, dim = z0.shape

    def grown(name: str, shape: tuple, fill, dtype=np.float64) -> np.ndarray:
        out = np.full(shape, fill, dtype=dtype)
        out[: len(a[name])] = a[name]
        return out

    da = None
    if cfg.adapt:
        da = adapt.DualAveragingState(*(a[f"da_{name}"] for name in _DA_FIELDS), meta["da_count"])
    return _Run(
        t=t,
        state=State(a["z"], a["state_logp"], a["state_grad"], a.get("state_memory")),
        rngs=checkpoint.restore_rngs(a["rngs"]),
        da=da,
        logp=grown("logp", (cfg.steps, chains), np.nan),
        accepted=grown("accepted", (cfg.steps, chains), False, bool),
        energy_error=grown("energy_error", (cfg.steps, chains), np.nan) if "energy_error" in a else None,
        divergent=grown("divergent", (cfg.steps, chains), False, bool) if "divergent" in a else None,
        samples=grown("samples", (cfg.steps // cfg.thin, chains, dim), 0.0),
        n_nonfinite=a["n_nonfinite"],
        step_size=a["step_size"],
        z_last_start=a.get("z_last_start"),
        n_grad=meta["n_grad"],
        seconds=meta["seconds"],
    )
