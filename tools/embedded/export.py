"""Write the trained nets as Caffe files, check them through the normal read path, measure, and record.

The check that matters for the shipped set: what ONNX Runtime computes from the written Caffe files (read by
repro.caffe, converted by repro.convert) equals what the torch modules computed when they were trained. All
metrics in the manifest are then measured through that same ONNX Runtime path, so they describe the files.
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
from repro.images import grid, save_png
from repro.runtime.ort import make_session
from tools.embedded.architectures import CODE, CROP, DCGAN_Z
from tools.embedded.layers import CaffeChain, caffe_blobs, prototxt
from tools.embedded.training import OFFSET, dcgan_to_image

TOLERANCE = 1e-4  # max |ORT − torch| / max |torch|, per output blob
BOUNDS_FILE = "fc6_bounds_3x.txt"

ROLES = {  # net → (input blob, blobs checked and recorded in the manifest)
    "classifier": ("data", {"logits": "fc8", "features": "fc6", "prob": "prob"}),
    "evaluator": ("data", {"logits": "fc", "features": "gap"}),
    "generator": ("feat", {"output": "deconv0"}),
    "judge": ("data", {"output": "p_real"}),
}


def write_caffe(chain: CaffeChain, folder: Path, name: str) -> tuple[Path, Path]:
    """Prototxt from the chain's description, parsed by repro.caffe, weights copied in, written as V2."""
    text = prototxt(chain)
    net = caffe.parse_net_text(text, source=f"<{name}>")
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


def export_set(
    out: Path,
    *,
    nets: dict,
    dcgan_generator,
    data: dict,
    info: dict,
    training: dict,
    timings: dict,
    started: float,
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    mean = data["mean_bgr"]
    xh, yh = data["xh"].numpy(), data["yh"].numpy()
    rng = np.random.default_rng(5)

    files, ort_nets, verify = {}, {}, {}
    for name, chain in nets.items():
        input_blob, blobs = ROLES[name]
        files[name] = write_caffe(chain, out, name)
        ort_nets[name] = OrtNet(*files[name], input_blob, list(blobs.values()))
    probe_codes = np.concatenate(
        [data["codes_h"][:8].numpy(), rng.standard_normal((8, CODE)).astype(np.float32)]
    )
    probe_images = np.concatenate([xh[:12], (rng.standard_normal((4, 3, 64, 64)) * 60).astype(np.float32)])
    for name, inputs in [
        ("classifier", _crop(probe_images)),
        ("evaluator", _crop(probe_images)),
        ("generator", probe_codes),
        ("judge", probe_images),
    ]:
        verify[name] = _check(name, nets[name], ort_nets[name], inputs)

    # ---- metrics, all through ONNX Runtime on the written files
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
    noise = (rng.standard_normal(xh.shape) * np.sqrt(pixel_var)).astype(np.float32)
    with torch.no_grad():
        dcgan_generator.eval()
        dcgan_imgs = dcgan_to_image(
            dcgan_generator(torch.randn(len(xh), DCGAN_Z, generator=torch.Generator().manual_seed(5)))
        ).numpy()
    judge = ort_nets["judge"]
    scores = {
        k: judge(v)["p_real"][:, 0]
        for k, v in [
            ("real_heldout", xh),
            ("reconstructions", recon),
            ("generator_random_codes", random_imgs),
            ("generator_uniform_clipped_codes", clipped_imgs),
            ("dcgan_samples", dcgan_imgs),
            ("noise", noise),
        ]
    }

    # ---- bounds, previews
    bounds_path = out / BOUNDS_FILE
    write_text(bounds_path, " ".join(f"{v:.4f}" for v in ub) + "\n")
    previews = {
        "dataset": out / "dataset_preview.png",
        "reconstructions": out / "reconstructions.png",
        "generator_samples": out / "generator_samples.png",
        "dcgan_samples": out / "dcgan_samples.png",
    }
    held_rgb = data["held_rgb"]
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
    _preview(previews["dcgan_samples"], list(from_caffe_input(dcgan_imgs[:60], mean)), 10)

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
        "evaluator_accuracy_on_reconstructions": float((recon_ev == yh).mean()),
        "judge_mean_p_real": {k: float(v.mean()) for k, v in scores.items()},
        "judge_mean_log_p_real": {k: float(np.log(np.maximum(v, 1e-30)).mean()) for k, v in scores.items()},
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
        "judge": {"input": "data", "output": "p_real", "input_size": 64},
        "evaluator": {"input": "data", "logits": "fc", "features": "gap", "input_size": CROP},
    }
    manifest = {
        "name": "embedded",
        "description": "Small nets trained by tools/train_embedded.py on repro.data.procedural (10 classes)",
    }
    for name, entry in entries.items():
        manifest[name] = {"prototxt": files[name][0].name, "caffemodel": files[name][1].name, **entry}
    all_files = [p for pair in files.values() for p in pair] + [bounds_path, *previews.values()]
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
            "sha256": {p.name: _sha256(p) for p in all_files},
            "file_bytes": {p.name: p.stat().st_size for p in all_files},
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
