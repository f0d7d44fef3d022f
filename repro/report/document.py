"""The report's content as a few plain blocks (headings, paragraphs, tables, figures), built from the
metrics.json record; html.py and markdown.py only render these blocks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from repro.report.metrics import METRICS
from repro.report.stats import format_stat

# The two metric tables of the page: what the images are like, and how the samplers ran.
IMAGE_METRICS = [key for key, m in METRICS.items() if m.on != "run"]
SAMPLER_METRICS = [key for key, m in METRICS.items() if m.on == "run"]


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Para:
    text: str


@dataclass(frozen=True)
class Table:
    header: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class Figure:
    path: str  # relative to the report folder
    caption: str


Block = Heading | Para | Table | Figure


def _stat_cell(s: dict) -> str:
    text = format_stat(s)
    return text if text == "—" else f"{text} (n={s['n']})"


def _metric_table(r: dict, metrics: list[str], with_reference: bool) -> Table:
    defs = r["metric_definitions"]
    header = ["row"] + [defs[m]["label"] for m in metrics]
    rows = [[_row_label(row)] + [format_stat(row["metrics"][m]) for m in metrics] for row in r["rows"]]
    ref = r.get("reference")
    if with_reference and ref:
        rows.append(
            [ref["label"]] + [format_stat(ref["metrics"][m]) if m in ref["metrics"] else "—" for m in metrics]
        )
    return Table(header, rows)


def _row_label(row: dict) -> str:
    """The row's label, marked where chains of it became non-finite and are left out of its numbers."""
    n = row["nonfinite"]["chains"]
    return row["label"] + (f" ⚠ {n} non-finite chain{'s' if n > 1 else ''} left out" if n else "")


def nonfinite_notice(r: dict) -> str | None:
    """One line naming the rows, classes, chains and first steps that became non-finite; None if none did."""
    parts = []
    for row in r["rows"]:
        for cell in row["nonfinite"]["cells"]:
            steps = [s for s in cell["first_step"] if s is not None]
            when = f", first at step {min(steps)}" if steps else ", in their images"
            chains = ", ".join(str(c) for c in cell["chains"])
            plural = "s" if len(cell["chains"]) > 1 else ""
            parts.append(f"{row['key']} class {cell['class_index']}: chain{plural} {chains}{when}")
    if not parts:
        return None
    total = sum(row["nonfinite"]["chains"] for row in r["rows"])
    return (
        f"{total} chain{'s' if total > 1 else ''} became non-finite (log density or images NaN or inf) and "
        f"{'are' if total > 1 else 'is'} left out of every metric, marked ⚠ in the tables: "
        + "; ".join(parts)
    )


def _settings_text(r: dict) -> str:
    s = r["settings"]
    classes = ", ".join(f"{k} ({name})" for k, name in zip(s["classes"], s["class_names"], strict=True))
    grads = round(6000 * s["budget"])
    return (
        f"Model set **{r['models']['name']}**. Classes: {classes}. {s['chains']} chains per class and "
        f"method, seed {s['seed']}. MCMC budget: {grads} gradient evaluations per chain ({s['budget']:g} × "
        f"the paper's 6000); MAP+clip: {s['map_steps']} DGN-AM iterations. Backend {s['backend']} on "
        f"{s['device']}. "
        f"Wall time {r['wall_seconds']:.1f} s ({r['cells']['run']} cells run, {r['cells']['reused']} reused)."
        + (
            " Quick mode: a smoke-sized run, the rows beyond the paper (dual averaging, fitted prior) at "
            "half the budget; its verdicts rest on few units."
            if s.get("quick")
            else ""
        )
    )


def _claims_summary(claims: list[dict]) -> str:
    by = {
        v: [str(c["number"]) for c in claims if c["verdict"] == v]
        for v in ("reproduced", "not reproduced", "not tested")
    }
    parts = [f"{len(by['reproduced'])} of {len(claims)} claims reproduced on this model set"]
    if by["not reproduced"]:
        parts.append(f"{_numbered(by['not reproduced'])} did NOT reproduce")
    if by["not tested"]:
        parts.append(f"{_numbered(by['not tested'])} could not be tested")
    return "; ".join(parts) + "."


def _numbered(numbers: list[str]) -> str:
    return f"claim {numbers[0]}" if len(numbers) == 1 else f"claims {', '.join(numbers)}"


def _judge_text(judge: dict | None) -> str:
    paper = "The paper's numbers come from the DCGAN ImageNet discriminator on CaffeNet/ImageNet images"
    if judge is None:
        return (
            f"{paper}. No judge given for this model set, so this run has no judge column: pass the DCGAN "
            "judge's files with --judge DIR."
        )
    if judge["kind"] == "dcgan":
        return (
            f"{paper}; this run's come from the same judge (preprocessing `{judge['preprocess']}`, scoring "
            f"the {judge['file_format'].upper()} file DGN-AM's save path writes), on this model set's "
            "images. Mean ± standard error over chains and classes."
        )
    return (
        f"{paper}; this run's come from this model set's own judge, so compare the ordering of the methods, "
        "not the absolute values. Mean ± standard error over chains and classes."
    )


FIGURE2 = "Figure 2 analog: one row per method, one column per class (first chain's final image)."
SETTING_NAMES = {
    "paper": "paper's equations",
    "released": "authors' code",
    "fitted-prior": "fitted prior",
    "exact": "exact posterior",
}


def model_or_sampler(claims: list[dict]) -> str | None:
    """Each claim the paper's equations fail, attributed from the numbers: to the model where the exact
    posterior fails it too, to the samplers where the exact posterior holds it. None without exact rows."""
    if not claims or "exact" not in claims[0]["verdicts"]:
        return None
    parts = []
    for c in claims:
        paper, exact = c["verdict"], c["verdicts"]["exact"]["verdict"]
        if exact == "not tested":
            continue
        n = c["number"]
        if paper == "not reproduced" and exact == "not reproduced":
            parts.append(f"claim {n} fails on the exact posterior too: it is the model's, not a sampler's")
        elif paper == "not reproduced" and exact == "reproduced":
            parts.append(f"claim {n} holds on the exact posterior: its failure belongs to the samplers")
        elif paper == "reproduced" and exact == "not reproduced":
            parts.append(f"claim {n} holds for the samplers but not for the exact posterior they approximate")
    if not parts:
        return "On the exact posterior every claim tested there is decided as on the paper's rows."
    return "Model or sampler: " + "; ".join(parts) + "."


def _vs_exact_table(r: dict) -> Table | None:
    rows = [row for row in r["rows"] if row.get("vs_exact")]
    if not rows:
        return None
    labels = {row["key"]: row["label"] for row in r["rows"]}

    def cell(d: dict | None) -> str:
        if d is None:
            return "—"
        return f"{d['difference']:+.3g} ± {d['se']:.2g} (z = {d['z']:+.1f})" if d["z"] is not None else "—"

    body = []
    for row in rows:
        v = row["vs_exact"]
        reached = {True: "yes", False: "no", None: "—"}[v["reached"]]
        body.append(
            [
                _row_label(row),
                labels[v["reference"]],
                cell(v["differences"].get("target_confidence")),
                cell(v["differences"].get("code_sq_norm")),
                reached,
            ]
        )
    header = ["row", "exact reference", "Δ classifier p(class)", "Δ ‖z‖²/D", "reached it (|z| ≤ 2)"]
    return Table(header, body)


def _exact_table(r: dict) -> Table | None:
    rows = [row for row in r["rows"] if row.get("exact")]
    if not rows:
        return None
    body = []
    for row in rows:
        e = row["exact"]
        per_class = e["per_class"]
        accepted = min((c["accepted"] for c in per_class if c["accepted"] is not None), default=None)
        est = e["estimates"]
        body.append(
            [
                row["label"],
                str(e["draws"]),
                format_stat(est["target_confidence"]) if "target_confidence" in est else "—",
                format_stat(est["code_sq_norm"]) if "code_sq_norm" in est else "—",
                format_stat(est["evaluator_accuracy"]) if "evaluator_accuracy" in est else "—",
                "—" if accepted is None else f"{accepted:.0f}",
                ", ".join(map(str, e["withheld"])) or "none",
            ]
        )
    header = ["exact row", "prior draws", "classifier p(class)", "‖z‖²/D", "evaluator accuracy"]
    return Table(header + ["min N·p(k)", "classes withheld"], body)


EXACT_TEXT = (
    "The posterior is p(z | k) = p(k | G(z)) p(z) / p(k), and p(k | G(z)) ≤ 1, so p(z | k) ≤ p(z) / p(k): "
    "it is the prior reweighted by at most 1/p(k). Importance sampling with the prior as proposal "
    "(repro.evaluate.posterior_reference) therefore computes it exactly in the limit, with bounded weights "
    "(with guidance β, p(k | G(z))^β), and one set of prior draws serves every class. Each exact row gives "
    "the posterior means (± standard error, delta method) per class, and as many codes resampled by weight "
    "as a sampler row has chains, which the tables and figures show like a sampler's. A class whose draws "
    "rejection sampling would accept fewer than 30 times (N·p(k)) has its estimates withheld. An MCMC row "
    "reached its posterior when its chains' classifier confidence and ‖z‖²/D agree with the exact means "
    "within 2 standard errors."
)


def _priors_table(priors: dict | None) -> Table | None:
    """The realism of each candidate prior's own draws (repro.evaluate.prior_realism); None when the plan
    has no `-prior` rows or nothing could be measured."""
    if not priors or not priors["realism"]:
        return None
    return Table(
        ["prior", "KID ↓", "precision ↑", "recall ↑", "evaluator agrees with classifier", "the -prior rows"],
        [
            [
                m["prior"] + (" (the paper's)" if m["prior"] == "N(0, I)" else ""),
                f"{m['kid']:.3f}",
                f"{m['precision']:.3f}",
                f"{m['recall']:.3f}",
                f"{m['agreement']:.3f}",
                "✓" if m["chosen"] else "",
            ]
            for m in priors["realism"]
        ],
    )


def _priors_text(priors: dict) -> str:
    first = priors["realism"][0]
    return (
        f"Images G(z) of {first['draws']} codes drawn from each prior (the same noise for every prior), "
        f"against {first['real_images']} real images of every class, in the evaluator's feature space. A "
        "prior draw belongs to no class, so in place of accuracy: how often the evaluator sees the class the "
        "classifier sees. The fitted priors have the same per-unit means and stds; the full one adds the "
        "units' correlations. The -prior rows use the one with the lowest KID: "
        f"{priors['form']} ({priors['source']})."
    )


def _verdict_cell(v: dict) -> str:
    """A setting's verdict, and beside it the verdict of each other reading of a realism claim."""
    others = [f"{name.upper()}: {r['verdict']}" for name, r in v.items() if isinstance(r, dict)]
    return v["verdict"] + (f" ({'; '.join(others)})" if others else "")


def _verdict_table(claims: list[dict]) -> Table:
    settings = list(claims[0]["verdicts"]) if claims else []
    return Table(
        ["#", "claim", *(SETTING_NAMES.get(s, s) for s in settings)],
        [
            [str(c["number"]), c["claim"], *(_verdict_cell(c["verdicts"][s]) for s in settings)]
            for c in claims
        ],
    )


def build_document(r: dict) -> list[Block]:
    figs = r["figures"]
    blocks: list[Block] = [
        Heading(f"Reproduction report: Xu, Acuña & Duvenaud (2016) on model set {r['models']['name']}", 1),
        Para(_settings_text(r)),
        *([Para(f"**Note:** {notice}")] if (notice := r["settings"]["iteration_floor"]["notice"]) else []),
        *([Para(f"**Note:** {notice}")] if (notice := (r.get("reference") or {}).get("notice")) else []),
        *([Para(f"**Note:** {notice}")] if (notice := nonfinite_notice(r)) else []),
        Heading("What this says"),
        Para(
            "Each of the paper's claims, decided by its rule (below) on three settings: the rows that "
            "follow the paper's equations, the authors' released samplers (mala-released, hmc-released in "
            "place of MALA and HMC), and MALA and HMC with a prior fitted to real codes (mala-da-prior, "
            "hmc-da-prior), and the exact posterior itself (importance sampling, no sampler: a claim it "
            "fails too belongs to the model). The claims about realism (1–3) are also read with KID against "
            "real images of the class (in brackets), since one judge can reward images it was never shown. A "
            "setting without the rows a claim needs leaves it not tested."
        ),
        _verdict_table(r["claims"]),
        *([Para(text)] if (text := model_or_sampler(r["claims"])) else []),
    ]
    if "figure2" in figs:
        blocks.append(Figure(figs["figure2"], FIGURE2))
    blocks += [
        Heading("Table 2: realism judge, mean log p(real)"),
        Para(_judge_text(r["models"].get("judge"))),
        Table(
            ["method", "paper", "this run"],
            [[t["method"], f"{t['paper']:.2f}", _stat_cell(t["ours"])] for t in r["table2"]]
            + (
                [[r["reference"]["label"], "—", _stat_cell(r["reference"]["metrics"]["judge_log_p_real"])]]
                if r.get("reference") and "judge_log_p_real" in r["reference"]["metrics"]
                else []
            ),
        ),
    ]
    if "table2" in figs:
        blocks.append(
            Figure(figs["table2"], "The paper's Table 2 next to this run (error bars: standard error).")
        )
    blocks += [
        Heading("The paper's claims"),
        Para(_claims_summary(r["claims"])),
        Table(
            ["#", "claim", "verdict", "rule", "evidence"],
            [[str(c["number"]), c["claim"], c["verdict"], c["rule"], c["evidence"]] for c in r["claims"]],
        ),
        *(
            [Heading("Samplers against the exact posterior"), Para(EXACT_TEXT), exact, versus]
            if (exact := _exact_table(r)) and (versus := _vs_exact_table(r))
            else []
        ),
        *(
            [Heading("Priors: how real their own draws look"), Para(_priors_text(r["priors"])), table]
            if (table := _priors_table(r.get("priors")))
            else []
        ),
        Heading("Sampler variant"),
        Para(r["sampler_variant"]),
        Heading("Image metrics"),
        Para(
            "Mean ± standard error over chains and classes (diversity: over classes). The judge and the "
            "evaluator (an independent classifier the images were not optimised against) score the image as "
            "saved and shown, values clipped to ±120 as DGN-AM saved them; the classifier's confidence and "
            "the saturation measures use the raw generator output."
        ),
        _metric_table(r, IMAGE_METRICS, True),
        Heading("Sampler metrics"),
        Para(
            "Acceptance after warm-up; ESS per gradient and split R-hat (worst over log π and three random "
            "projections of z, per class; ArviZ); iterations to plateau: first iteration covering 90% of the "
            "rise of log π to its final level. MAP rows have no accept step and no sampling diagnostics."
        ),
        _metric_table(r, SAMPLER_METRICS, False),
    ]
    if "metrics" in figs:
        blocks.append(Figure(figs["metrics"], "Metrics per row with standard-error bars."))
    blocks.append(Heading("Figures"))
    captions = {
        "figure3": "Figure 3 analog: every chain of one class, one row per method.",
        "traces": "Traces: log π (MAP: its objective, the raw logit) and running acceptance, one line per "
        "chain, coloured by class.",
        "reference": "Real images of the same classes, for comparison.",
        "guidance": "Guidance study (beyond the paper): MALA with dual averaging on the posterior with the "
        "likelihood raised to β, under N(0, I) and under the fitted prior; class fidelity against diversity "
        "and realism, MAP+clip (DGN-AM) marked with a star. β = 1 is the paper's posterior; larger β trades "
        "diversity and realism for class-specific images.",
    }
    for name, caption in captions.items():
        if name in figs:
            blocks.append(Figure(figs[name], caption))
    blocks += [
        Heading("Row settings"),
        Table(
            ["row", "method", "step sizes", "iterations", "initial step", "options"],
            [
                [
                    row["label"],
                    row["method"] + (" + clip" if row["clip"] else ""),
                    row["tuning"],
                    str(row["steps"]),
                    f"{row['step_size']:g}",
                    json.dumps(row["options"], sort_keys=True),
                ]
                for row in r["rows"]
            ],
        ),
        Para("Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(r["versions"].items())) + "."),
    ]
    return blocks
