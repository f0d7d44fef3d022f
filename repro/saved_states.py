"""Chains as they go: the images of every N-th state of each chain, as a contact sheet per chain.

A run's final images say where the chains ended, not how they got there; PPGN's sampler saves its images as
it goes (`save_every`), keeping only those whose class probability passes a threshold. Here the states are
the ones the loop already keeps (`thin` = N: `Result.samples`, the state after steps N, 2N, ...), drawn by
the generator after sampling, so saving costs no gradient and changes no draw. With a threshold, a state is
kept only where the classifier's softmax probability of the target class exceeds it (a class target only).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from repro.errors import BadInput
from repro.evaluate.image_metrics import softmax
from repro.images import grid, save_png, to_display

MAX_PER_CHAIN = 400  # states on one chain's sheet: beyond it the sheet (and the images held) is too large
COLUMNS = 10


def check(save_every: int | None, threshold: float | None, steps: int, class_index: int | None) -> None:
    """Refuse settings that cannot be saved, before any sampling."""
    if threshold is not None:
        if save_every is None:
            raise BadInput("--threshold keeps some of the states --save-every saves: give --save-every N too")
        if not 0 <= threshold < 1:
            raise BadInput(f"--threshold: expected a probability in [0, 1), got {threshold}")
        if class_index is None:
            raise BadInput("--threshold: a state is kept by its target class's probability; give --class K")
    if save_every is not None and steps // save_every > MAX_PER_CHAIN:
        raise BadInput(
            f"--save-every {save_every} saves {steps // save_every} states of each chain over {steps} steps; "
            f"at most {MAX_PER_CHAIN} fit on a sheet: use --save-every {-(-steps // MAX_PER_CHAIN)} or more"
        )


def save(
    folder: Path, backend, samples: np.ndarray, every: int, warmup: int, threshold: float | None, class_index
) -> list[dict]:
    """Write `chain_<i>_states.png` for each chain with a state kept; return every saved state as a record
    (chain, step, whether in warm-up, the class probability where there is a class, the sheet)."""
    steps = (np.arange(len(samples)) + 1) * every
    saved: list[dict] = []
    tiles: dict[int, list[np.ndarray]] = {}
    for j, z in enumerate(samples):  # one generator call per saved step, every chain at once
        images = backend.images(z.astype(np.float32))
        p = None if class_index is None else softmax(backend.logits(z.astype(np.float32)))[:, class_index]
        for chain, image in enumerate(images):
            if threshold is not None and not p[chain] > threshold:
                continue
            tiles.setdefault(chain, []).append(to_display(image))
            saved.append(
                {
                    "chain": chain,
                    "step": int(steps[j]),
                    "warmup": bool(steps[j] <= warmup),
                    "p_class": None if p is None else float(p[chain]),
                    "sheet": f"chain_{chain:03d}_states.png",
                }
            )
    for chain, row in tiles.items():
        sheet = grid(row, columns=min(COLUMNS, len(row)))
        save_png(folder / f"chain_{chain:03d}_states.png", sheet, scale=max(1, 128 // row[0].shape[0]))
    return saved
