"""Write the trained nets as Caffe files, check them through the normal read path, measure, and record.

The check that matters for the shipped set: what ONNX Runtime computes from the written Caffe files (read by
repro.caffe, converted by repro.convert) equals what the torch modules computed when they were trained. All
metrics in the manifest are then measured through that same ONNX Runtime path, so they describe the files.
The judge is written in dcgan_code's format and read back, checked and scored by repro.evaluate.judges, the
code that scores the paper's judge, with the preprocessing the paper's scoring used.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import onnx
import torch

from repro import caffe
from repro.atomic import write_text
from repro.convert import to_onnx
from repro.data.procedural import CLASS_NAMES, from_caffe_input
from repro.dcgan import DcganFiles, judge_files, write_judge
from repro.evaluate.judges import DcganJudge, log_sigmoid
from repro.images import grid, save_png
from repro.runtime.ort import make_session
from tools.embedded import dcgan_judge
from tools.embedded.architectures import CODE, CROP
from tools.embedded.layers import CaffeChain, caffe_blobs, caffe_net
from tools.embedded.quality import detail_ratio
from tools.embedded.training import OFFSET

TOLERANCE = 1e-4  # max |ORT − torch| / max |torch|, per output blob
BOUNDS_FILE = "fc6_bounds_3x.txt"

ROLES = {  # net → (input blob, blobs checked and recorded in the manifest)
    "classifier": ("data", {"logits": "fc8", "features": "fc6", "prob": "prob"}),
    "evaluator": ("data", {"logits": "fc", "features": "gap"}),
    "generator": ("feat", {"output": "deconv0"}),
}
JUDGE_FOLDER = "judge"
JUDGE_ENTRY = {"preprocess": "authors", "file_format": "jpeg"}  # what the paper's scoring did


def write_caffe(chain: CaffeChain, folder: Path, name: str) -> tuple[Path, Path]:
    """The chain's Caffe net, shaped by repro.caffe, weights copied in, written as V2 by repro.caffe."""
    net = caffe_net(chain)
    for blob, shape in chain.shapes.items():
        if tuple(net.shapes[blob]) != tuple(shape):
            raise RuntimeError(f"{name}: blob {blob} is {net.shapes[blob]} in Caffe but {shape} in torch")
    for spec, mod in zip(chain.specs, chain.mods, strict=True):
        net.layer(spec.name).blobs = caffe_blobs(spec, mod)
    paths = folder / f"{name}.prototxt", folder / f"{name}.caffemodel"
    caffe.write_net(net, *paths)
    return paths


class OrtNet:
    """A written net read back through repro.caffe → repro.convert → ONNX Runtime."""

    def __init__(self, prototxt_path: Path, caffemodel_path: Path, input_blob: str, outputs: list[str]):
        net = caffe.load_net(prototxt_path, caffemodel_path)
        model = to_onnx(net, outputs, dynamic_batch=True)
        onnx.checker.check_model(model)
        self.session = make_session(model, threads=2)
        self.input_blob, self.outputs = input_blob, outputs

    def __call__(self, x: np.ndarray, batch: int = 250) -> dict[str, np.ndarray]:
        parts = [
            self.session.run(
                self.outputs, {self.input_blob: np.ascontiguousarray(x[i : i + batch], np.float32)}
            )
            for i in range(0, len(x), batch)
        ]
        return {name: np.concatenate([p[k] for p in parts]) for k, name in enumerate(self.outputs)}


def _crop(x: np.ndarray) -> np.ndarray:
    return x[:, :, OFFSET : OFFSET + CROP, OFFSET : OFFSET + CROP]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check(name: str, chain: CaffeChain, ort_net: OrtNet, inputs: np.ndarray) -> dict[str, float]:
    chain.eval()
    with torch.no_grad():
        ref = {k: v.numpy() for k, v in chain(torch.from_numpy(inputs), tuple(ort_net.outputs)).items()}
    got = ort_net(inputs)
    errors = {}
    for blob in ort_net.outputs:
        errors[blob] = float(np.abs(got[blob] - ref[blob]).max() / np.abs(ref[blob]).max())
        print(
            f"[verify] {name:<10} {blob:<8} ORT vs torch: max rel err {errors[blob]:.2e} "
            f"(tolerance {TOLERANCE:.0e}) on {len(inputs)} inputs",
            flush=True,
        )
        if not errors[blob] <= TOLERANCE:
            raise RuntimeError(f"{name}: blob {blob} differs between ORT and torch by {errors[blob]:.3g}")
    return errors


def _preview(path: Path, tiles: list[np.ndarray], columns: int, **labels) -> None:
    save_png(path, grid(tiles, columns, **labels))


def _check_judge(disc: torch.nn.Module, judge: DcganJudge, pictures: np.ndarray) -> float:
    """The written judge, as repro scores it, against the torch module, one image per batch as scored."""
    inputs = dcgan_judge.unit_images(pictures).numpy()
    with torch.no_grad():
        ref = np.concatenate([disc(torch.from_numpy(inputs[i : i + 1])).numpy() for i in range(len(inputs))])
    got = judge.logits(inputs)
    err = float(np.abs(got - ref).max() / np.abs(ref).max())
    print(
        f"[verify] judge      logit    repro vs torch: max rel err {err:.2e} (tolerance {TOLERANCE:.0e}) "
        f"on {len(inputs)} inputs",
        flush=True,
    )
    if not err <= TOLERANCE:
        raise RuntimeError(f"judge: logits differ between repro's DCGAN port and torch by {err:.3g}")
    return err


def _judge_scores(judge_dir: Path, kinds: dict) -> dict:
    """Mean p(real) and log p(real) per kind of image, under each preprocessing preset.

    Pictures (uint8 RGB) are scored as the files they are; generator outputs through DGN-AM's save path,
    as the report scores them."""
    out = {}
    for preset in ("authors", "standard"):
        judge = DcganJudge(DcganFiles(judge_dir, preset, JUDGE_ENTRY["file_format"]))
        log_p = {}
        for kind, (form, images) in kinds.items():
            if form == "pictures":
                log_p[kind] = log_sigmoid(judge.score_rgb(list(images)))
            else:
                log_p[kind] = judge.log_p_real(images)
        out[preset] = {
            "mean_p_real": {k: float(np.exp(v).mean()) for k, v in log_p.items()},
            "mean_log_p_real": {k: float(v.mean()) for k, v in log_p.items()},
        }
    return out


def export_set(
    out: Path,
    *,
    nets: dict,
    judge: dict,
    data: dict,
    info: dict,
    training: dict,
    timings: dict,
    started: float,
) -> None:
    """`judge`: {"discriminator", "generator" (its DCGAN opponent), "stem" (the index's name)}."""
    out.mkdir(parents=True, exist_ok=True)
    mean = data["mean_bgr"]
    xh, yh = data["xh"].numpy(), data["yh"].numpy()
    held_rgb = data["held_rgb"]
    rng = np.random.default_rng(5)

    files, ort_nets, verify = {}, {}, {}
    for name, chain in nets.items():
        input_blob, blobs = ROLES[name]
        files[name] = write_caffe(chain, out, name)
        ort_nets[name] = OrtNet(*files[name], input_blob, list(blobs.values()))
    judge_dir = out / JUDGE_FOLDER
    write_judge(judge_dir, judge["discriminator"].params(), stem=judge["stem"])
    probe_codes = np.concatenate(
        [data["codes_h"][:8].numpy(), rng.standard_normal((8, CODE)).astype(np.float32)]
    )
    probe_images = np.concatenate([xh[:12], (rng.standard_normal((4, 3, 64, 64)) * 60).astype(np.float32)])
    for name, inputs in [
        ("classifier", _crop(probe_images)),
        ("evaluator", _crop(probe_images)),
        ("generator", probe_codes),
    ]:
        verify[name] = _check(name, nets[name], ort_nets[name], inputs)
    noise_rgb = dcgan_judge.noise_pictures(len(xh), seed=6)
    verify["judge"] = {
        "logit": _check_judge(
            judge["discriminator"],
            DcganJudge(DcganFiles(judge_dir, **JUDGE_ENTRY)),
            np.concatenate([held_rgb[:12], noise_rgb[:4]]),
        )
    }

    # ---- metrics, all through repro's read path on the written files
    cls_out = ort_nets["classifier"](_crop(xh))
    ev_out = ort_nets["evaluator"](_crop(xh))
    codes_h = cls_out["fc6"]
    recon = ort_nets["generator"](codes_h)["deconv0"]
    mse = float(np.mean((recon - xh) ** 2))
    pixel_var = float(np.mean(xh.var(axis=0)))  # variance around the per-pixel mean image
    recon_ev = ort_nets["evaluator"](_crop(recon))["fc"].argmax(1)
    z = rng.standard_normal((len(xh), CODE)).astype(np.float32)
    random_imgs = ort_nets["generator"](z)["deconv0"]
    ub = 3 * data["codes"].numpy().std(0)
    clipped = (rng.uniform(0, 1, (len(xh), CODE)) * ub).astype(np.float32)
    clipped_imgs = ort_nets["generator"](clipped)["deconv0"]
    dcgan_rgb = dcgan_judge.samples(judge["generator"], len(xh), seed=5)
    judge_scores = _judge_scores(
        judge_dir,
        {
            "real_heldout": ("pictures", held_rgb),
            "reconstructions": ("generator", recon),
            "generator_random_codes": ("generator", random_imgs),
            "generator_uniform_clipped_codes": ("generator", clipped_imgs),
            "dcgan_samples": ("pictures", dcgan_rgb),
            "noise": ("pictures", noise_rgb),
        },
    )

    # ---- bounds, previews
    bounds_path = out / BOUNDS_FILE
    write_text(bounds_path, " ".join(f"{v:.4f}" for v in ub) + "\n")
    previews = {
        "dataset": out / "dataset_preview.png",
        "reconstructions": out / "reconstructions.png",
        "generator_samples": out / "generator_samples.png",
        "dcgan_samples": out / "dcgan_samples.png",
    }
    per_class = [[i for i in range(len(yh)) if yh[i] == c][:10] for c in range(len(CLASS_NAMES))]
    _preview(previews["dataset"], [held_rgb[i] for row in per_class for i in row], 10, row_labels=CLASS_NAMES)
    rec_rgb = from_caffe_input(recon, mean)
    _preview(
        previews["reconstructions"],
        [t for row in per_class for i in row[:5] for t in (held_rgb[i], rec_rgb[i])],
        10,
        row_labels=CLASS_NAMES,
    )
    _preview(
        previews["generator_samples"],
        list(from_caffe_input(np.concatenate([random_imgs[:30], clipped_imgs[:30]]), mean)),
        10,
    )
    save_png(previews["dcgan_samples"], grid(list(dcgan_rgb[:60]), 10), scale=2)

    metrics = {
        "classifier_heldout_accuracy": float((cls_out["fc8"].argmax(1) == yh).mean()),
        "evaluator_heldout_accuracy": float((ev_out["fc"].argmax(1) == yh).mean()),
        "evaluator_agreement_with_classifier": float(
            (ev_out["fc"].argmax(1) == cls_out["fc8"].argmax(1)).mean()
        ),
        "generator_reconstruction_mse": mse,
        "generator_reconstruction_rmse": float(np.sqrt(mse)),
        "heldout_pixel_variance": pixel_var,
        "generator_reconstruction_relative_mse": mse / pixel_var,
        "generator_reconstruction_detail_ratio": detail_ratio(recon, xh),
        "evaluator_accuracy_on_reconstructions": float((recon_ev == yh).mean()),
        "judge_mean_p_real": judge_scores["authors"]["mean_p_real"],
        "judge_mean_log_p_real": judge_scores["authors"]["mean_log_p_real"],
        "judge_standard_preprocess": judge_scores["standard"],
        "fc6_std_mean": float(data["codes"].numpy().std(0).mean()),
        "fc6_dead_units": int((ub == 0).sum()),
        "verify_max_rel_err": verify,
        "heldout_images": len(xh),
    }
    for k, v in metrics.items():
        print(f"[metric] {k}: {json.dumps(v)}", flush=True)

    entries = {
        "generator": {"input": "feat", "output": "deconv0", "code_size": CODE},
        "classifier": {
            "input": "data",
            "logits": "fc8",
            "features": "fc6",
            "prob": "prob",
            "input_size": CROP,
        },
        "evaluator": {"input": "data", "logits": "fc", "features": "gap", "input_size": CROP},
    }
    manifest = {
        "name": "embedded",
        "description": "Small nets trained by tools/train_embedded.py on repro.data.procedural (10 classes)",
    }
    for name, entry in entries.items():
        manifest[name] = {"prototxt": files[name][0].name, "caffemodel": files[name][1].name, **entry}
    manifest["judge"] = {"dcgan": JUDGE_FOLDER, **JUDGE_ENTRY}
    judge_paths = judge_files(judge_dir)
    all_files = [p for pair in files.values() for p in pair] + judge_paths + [bounds_path, *previews.values()]
    manifest.update(
        {
            "class_names": list(CLASS_NAMES),
            "crop": {"size": CROP, "offset": OFFSET},
            "image_size": 64,
            "clip_bounds": BOUNDS_FILE,
            "clip_bounds_rule": "3 × std of each fc6 unit over the training images (DGN-AM act_range/3x)",
            "mean_bgr": [round(m, 6) for m in mean],
            "image_space": "BGR minus mean_bgr, 0–255 scale (generator output = classifier input)",
            "map_lr": 8.0,
            "previews": {k: p.name for k, p in previews.items()},
            "sha256": {p.relative_to(out).as_posix(): _sha256(p) for p in all_files},
            "file_bytes": {p.relative_to(out).as_posix(): p.stat().st_size for p in all_files},
            "training": {
                **training,
                "seconds": {**timings, "total_before_manifest": round(time.perf_counter() - started, 1)},
            },
            "train_info": info,
            "metrics": metrics,
            "verify_tolerance": TOLERANCE,
        }
    )
    write_text(out / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    print(f"[export] wrote {out / 'manifest.json'}", flush=True)
