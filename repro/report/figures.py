"""The report's figures: image grids in the layout of the paper's Figures 2 and 3, sampler traces, and bar
charts of the metrics with standard-error bars. Plots use matplotlib's Agg backend (no display needed).
"""

from __future__ import annotations

import math
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from repro.atomic import atomic_path  # noqa: E402
from repro.images import grid, save_png, to_display  # noqa: E402
from repro.report.metrics import METRICS  # noqa: E402
from repro.report.stats import Stat  # noqa: E402

TILE = 128  # shown tile size: small generator outputs are enlarged before labelling, so labels stay crisp


def _tile(image_bgr: np.ndarray) -> np.ndarray:
    pixels = to_display(image_bgr)
    if pixels.shape[0] >= TILE:
        return pixels
    scale = TILE // pixels.shape[0]
    return np.asarray(
        Image.fromarray(pixels).resize((pixels.shape[1] * scale, pixels.shape[0] * scale), Image.NEAREST)
    )


def method_by_class(
    images: dict[tuple[str, int], np.ndarray],
    rows: list[tuple[str, str]],
    classes: list[tuple[int, str]],
    path: os.PathLike,
) -> None:
    """Figure 2's layout: one row per method, one column per class, each tile the first chain's final image.

    images: (row key, class index) → [C, 3, H, W]; rows: (key, label); classes: (index, name)."""
    tiles, labels = [], []
    for key, label in rows:
        for k, _ in classes:
            tiles.append(_tile(images[(key, k)][0]))
        labels.append(label)
    save_png(path, grid(tiles, len(classes), labels, [name for _, name in classes]))


def chains_of_one_class(
    images: dict[tuple[str, int], np.ndarray],
    rows: list[tuple[str, str]],
    class_index: int,
    path: os.PathLike,
) -> None:
    """Figure 3's idea: many chains of one class side by side, one row per method: diversity, or its lack."""
    chains = min(len(images[(key, class_index)]) for key, _ in rows)
    tiles = [_tile(images[(key, class_index)][j]) for key, _ in rows for j in range(chains)]
    save_png(path, grid(tiles, chains, [label for _, label in rows], [f"chain {j}" for j in range(chains)]))


def _save(fig, path: os.PathLike) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)


def traces(
    logp: dict[tuple[str, int], np.ndarray],
    accepted: dict[tuple[str, int], np.ndarray],
    rows: list[tuple[str, str, bool]],
    classes: list[tuple[int, str]],
    path: os.PathLike,
) -> None:
    """log π (MAP: its objective) and acceptance over iterations, one line per chain, coloured by class.

    logp/accepted: (row key, class) → [steps, C]; rows: (key, label, mcmc)."""
    fig, axes = plt.subplots(len(rows), 2, figsize=(11, 2.1 * len(rows)), squeeze=False)
    colours = plt.get_cmap("tab10")
    for i, (key, label, mcmc) in enumerate(rows):
        ax_l, ax_a = axes[i]
        for c, (k, name) in enumerate(classes):
            trace = logp[(key, k)]
            steps = np.arange(1, trace.shape[0] + 1)
            for j in range(trace.shape[1]):
                ax_l.plot(
                    steps,
                    trace[:, j],
                    color=colours(c % 10),
                    lw=0.7,
                    alpha=0.6,
                    label=name if j == 0 else None,
                )
            if mcmc:
                acc = accepted[(key, k)].astype(np.float64)
                window = max(1, acc.shape[0] // 50)
                kernel = np.ones(window) / window
                running = np.convolve(acc.mean(axis=1), kernel, mode="valid")
                ax_a.plot(np.arange(window, acc.shape[0] + 1), running, color=colours(c % 10), lw=1.0)
        ax_l.set_ylabel("log π" if mcmc else "objective")
        ax_l.set_title(label, fontsize=9, loc="left")
        finite = np.concatenate([logp[(key, k)].ravel() for k, _ in classes])
        finite = finite[np.isfinite(finite)]
        if finite.size:
            lo, hi = np.percentile(finite, [2, 100])
            ax_l.set_ylim(lo - 0.05 * (hi - lo + 1e-9), hi + 0.05 * (hi - lo + 1e-9))
        if not mcmc:
            ax_a.text(0.5, 0.5, "MAP: no accept step", ha="center", va="center", transform=ax_a.transAxes)
            ax_a.axis("off")
        else:
            ax_a.set_ylim(-0.02, 1.02)
            ax_a.set_ylabel("acceptance\n(running mean)")
    axes[0, 0].legend(fontsize=7, ncol=min(5, len(classes)), loc="lower right")
    axes[-1, 0].set_xlabel("iteration")
    axes[-1, 1].set_xlabel("iteration")
    fig.tight_layout()
    _save(fig, path)


def _colour(key: str) -> str:
    """One colour per method family, so the bar charts read at a glance."""
    for prefix, colour in (("map", "#8c8c8c"), ("mala", "#4c72b0"), ("hmc", "#dd8452"), ("real", "#55a868")):
        if key.startswith(prefix):
            return colour
    return "#4c72b0"


def metric_bars(
    summaries: dict[str, dict[str, Stat]], rows: list[tuple[str, str]], metrics: list[str], path: os.PathLike
) -> None:
    """One panel per metric, one bar per row, error bars = standard error; rows without it are left out.

    A row keyed "real" (real images) may lack sampler metrics; it is shown where it has the metric."""
    cols = 2
    n_rows = math.ceil(len(metrics) / cols)
    fig, axes = plt.subplots(
        n_rows, cols, figsize=(11, 0.32 * len(rows) * n_rows + 1.2 * n_rows), squeeze=False
    )
    for ax, metric in zip(axes.ravel(), metrics, strict=False):
        shown = [
            (key, label, summaries[key][metric])
            for key, label in rows
            if metric in summaries[key] and summaries[key][metric].n > 0
        ]
        y = np.arange(len(shown))
        means = [s.mean for _, _, s in shown]
        errs = [s.se if math.isfinite(s.se) else 0.0 for _, _, s in shown]
        ax.barh(y, means, xerr=errs, color=[_colour(k) for k, _, _ in shown], ecolor="black", capsize=2)
        ax.set_yticks(y, [label for _, label, _ in shown], fontsize=7)
        ax.invert_yaxis()
        ax.set_title(METRICS[metric].label, fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
        ax.axvline(0, color="grey", lw=0.5)
    for ax in axes.ravel()[len(metrics) :]:
        ax.axis("off")
    fig.tight_layout()
    _save(fig, path)


def table2_bars(entries: list[tuple[str, float, Stat | None]], path: os.PathLike) -> None:
    """The paper's Table 2 beside this run's numbers, each on its own scale (the judges differ):
    (method, paper value, ours)."""
    fig, (ax_p, ax_o) = plt.subplots(1, 2, figsize=(9, 3.0))
    x = np.arange(len(entries))
    names = [m for m, _, _ in entries]
    colours = [_colour(m.lower()) for m in names]
    ax_p.bar(x, [p for _, p, _ in entries], color=colours)
    ax_p.set_title("paper (DCGAN judge, CaffeNet/ImageNet)", fontsize=9)
    ours = [s.mean if s is not None and s.n else np.nan for _, _, s in entries]
    errs = [s.se if s is not None and math.isfinite(s.se) else 0.0 for _, _, s in entries]
    ax_o.bar(x, ours, yerr=errs, capsize=3, color=colours)
    ax_o.set_title("this run (this model set's judge)", fontsize=9)
    for ax in (ax_p, ax_o):
        ax.set_xticks(x, names, fontsize=8)
        ax.set_ylabel("mean log p(real)", fontsize=8)
        ax.axhline(0, color="black", lw=0.5)
    fig.tight_layout()
    _save(fig, path)


def guidance_tradeoff(
    series: dict[str, list[tuple[float, dict[str, Stat]]]],
    marker: tuple[str, dict[str, Stat]] | None,
    fidelity: str,
    others: list[str],
    path: os.PathLike,
) -> None:
    """The guidance study: class fidelity (x) against each of `others` (one panel each), one line per prior
    through its β levels (labelled), `marker` (MAP+clip) as a star: the trade-off a user of the method picks.

    series: prior label → [(β, metric → Stat)], in increasing β; marker: (label, metric → Stat)."""
    fig, axes = plt.subplots(1, len(others), figsize=(4.2 * len(others), 3.6), squeeze=False)
    for ax, other in zip(axes.ravel(), others, strict=True):
        for (label, points), colour in zip(series.items(), ("#4c72b0", "#dd8452", "#55a868"), strict=False):
            xs = [p[fidelity].mean for _, p in points]
            ys = [p[other].mean for _, p in points]
            ax.errorbar(
                xs,
                ys,
                xerr=[p[fidelity].se if math.isfinite(p[fidelity].se) else 0 for _, p in points],
                yerr=[p[other].se if math.isfinite(p[other].se) else 0 for _, p in points],
                marker="o",
                color=colour,
                label=label,
                capsize=2,
            )
            for (beta, _), x, y in zip(points, xs, ys, strict=True):
                ax.annotate(f"β={beta:g}", (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        if marker is not None:
            label, p = marker
            ax.plot([p[fidelity].mean], [p[other].mean], marker="*", ms=12, color="black", ls="", label=label)
        ax.set_xlabel(METRICS[fidelity].label, fontsize=8)
        ax.set_ylabel(METRICS[other].label, fontsize=8)
        ax.tick_params(labelsize=7)
    axes.ravel()[0].legend(fontsize=7)
    fig.tight_layout()
    _save(fig, path)
