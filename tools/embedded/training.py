"""The training loops: classifiers and the fc6 generator (Dosovitskiy & Brox losses); the judge's is in
dcgan_judge.py.

All work in the Caffe input space (BGR, mean-subtracted, 0–255), on float32 CPU tensors, seeded per stage so a
stage gives the same weights whether it runs alone or after the others.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from tools.embedded.architectures import CROP, adversary
from tools.embedded.layers import CaffeChain

OFFSET = (64 - CROP) // 2
FEATURE_BLOB = ("conv1", "conv2", "conv3", "fc6")  # the generator's feature loss (D&B used AlexNet conv5)


def centre_crop(x: torch.Tensor) -> torch.Tensor:
    return x[:, :, OFFSET : OFFSET + CROP, OFFSET : OFFSET + CROP]


def random_crop(x: torch.Tensor, g: torch.Generator, flip: bool) -> torch.Tensor:
    """Per-batch random offset in 0..8 and optionally a random horizontal flip: cheap augmentation."""
    oy, ox = (int(v) for v in torch.randint(0, 64 - CROP + 1, (2,), generator=g))
    x = x[:, :, oy : oy + CROP, ox : ox + CROP]
    return x.flip(3) if flip and torch.rand((), generator=g) < 0.5 else x


def shuffled_batches(n: int, batch: int, g: torch.Generator) -> list[torch.Tensor]:
    """One epoch's index batches in `g`'s order; the short remainder is dropped so every step sees `batch`."""
    order = torch.randperm(n, generator=g)
    return [order[i : i + batch] for i in range(0, n - batch + 1, batch)]


def _cosine(opt, step: int, total: int, lr: float) -> None:
    for group in opt.param_groups:
        group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / total))


def progress_bar(total: int, desc: str) -> tqdm:
    """On stderr and refreshed every 2 s: a training log stays readable and the bar costs nothing."""
    return tqdm(total=total, desc=desc, file=sys.stderr, leave=False, mininterval=2.0)


@torch.no_grad()
def predict(chain: CaffeChain, x: torch.Tensor, blob: str, batch: int = 500) -> torch.Tensor:
    chain.eval()
    return torch.cat([chain.blob(centre_crop(x[i : i + batch]), blob) for i in range(0, len(x), batch)])


def accuracy(chain: CaffeChain, x: torch.Tensor, y: torch.Tensor, logits: str) -> float:
    return float((predict(chain, x, logits).argmax(1) == y).float().mean())


def train_classifier(
    chain: CaffeChain,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    logits: str,
    epochs: int,
    seed: int,
    lr: float = 2e-3,
    batch: int = 64,
    flip: bool = True,
) -> CaffeChain:
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    first = chain.mods[0][-1] if isinstance(chain.mods[0], nn.Sequential) else chain.mods[0]
    with torch.no_grad():  # inputs are 0–255 scale: start the first layer's outputs at O(1)
        first.weight.mul_(1 / 60)
        for spec, after, mod in zip(chain.specs, chain.specs[1:], chain.mods, strict=False):
            if spec.type == "InnerProduct" and after.type == "ReLU":
                mod[1].bias.fill_(0.1)  # start the units alive, as AlexNet's positive biases did
    opt = torch.optim.AdamW(chain.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * (len(x) // batch)
    bar, step = progress_bar(steps, chain.net_name), 0
    for _ in range(epochs):
        chain.train()
        for idx in shuffled_batches(len(x), batch, g):
            _cosine(opt, step, steps, lr)
            loss = F.cross_entropy(chain.blob(random_crop(x[idx], g, flip), logits), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    bar.close()
    chain.eval()
    return chain


def normalise_code_scale(
    chain: CaffeChain, x: torch.Tensor, code: str, next_ip: str, target_std: float
) -> float:
    """Rescale fc6 (and undo it in fc7) so the mean per-unit std of the code is `target_std`.

    ReLU is positively homogeneous, so the classifier's function is unchanged; only the code's scale moves,
    to CaffeNet's (its 3x bounds average 11.85, i.e. std ≈ 3.95), which keeps the N(0, I) code prior and the
    samplers' step sizes in the regime of the paper.
    """
    std = float(predict(chain, x, code).std(0).mean())
    a = target_std / std
    ip_code = chain.mods[[s.name for s in chain.specs].index(code)][1]
    ip_next = chain.mods[[s.name for s in chain.specs].index(next_ip)][1]
    with torch.no_grad():
        ip_code.weight.mul_(a)
        ip_code.bias.mul_(a)
        ip_next.weight.div_(a)
    return a


# ---------------------------------------------------------------------------------------------- generator


def train_generator(
    gen: CaffeChain,
    cls: CaffeChain,
    x: torch.Tensor,
    codes: torch.Tensor,
    *,
    epochs: int,
    seed: int,
    lr: float = 1e-3,
    lr_d: float = 2e-4,
    batch: int = 32,
    w_img: float = 1.0,
    w_feat: float = 1.0,
    w_adv: float = 0.05,
    feature_blobs: tuple[str, ...] = FEATURE_BLOB,
    ramp: float = 0.2,
    pause_ratio: float = 0.1,
    adv_width: int = 16,
    betas: tuple[float, float] = (0.5, 0.999),
):
    """Dosovitskiy & Brox (DeePSiM): image loss + feature loss (classifier features) + adversarial loss.

    Each loss is normalised by the data's own scale (pixel variance, each feature blob's energy) so the
    weights read as relative importances. The feature loss is taken on several classifier layers: the
    early, spatial ones (conv1, conv2) carry edges and layout, the deep ones (conv3, fc6) the class, so the
    pixel term no longer has to define the picture alone; with conv3 only, the pixel term won and the
    reconstructions were the blurred average of what a code could show. The adversary is the generator's
    own, trained alongside and then discarded; it sees the image with its code, as DeePSiM's did.

    Balancing, as DeePSiM did: the discriminator's step is skipped while it wins too clearly (its loss
    below `pause_ratio` times the generator's adversarial loss, both smoothed), because a saturated
    discriminator gives the generator no useful gradient. The adversarial weight ramps in over the first
    `ramp` of training so reconstruction settles before the adversary pulls.
    """
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    cls.eval()
    for p in cls.parameters():
        p.requires_grad_(False)
    pix_var = float(x.var())
    probe = cls(centre_crop(x[:1000]), feature_blobs)
    energy = {b: float(probe[b].square().mean()) for b in feature_blobs}
    disc = adversary(adv_width)
    opt_g = torch.optim.Adam(gen.parameters(), lr=lr, betas=betas)
    opt_d = torch.optim.Adam(disc.parameters(), lr=lr_d, betas=(0.5, 0.999))
    steps = epochs * (len(x) // batch)
    bar, step = progress_bar(steps, gen.net_name), 0
    history = []
    d_avg, g_avg = math.log(4), math.log(2)  # smoothed losses, started at chance
    for _ in range(epochs):
        gen.train()
        disc.train()
        for idx in shuffled_batches(len(x), batch, g):
            _cosine(opt_g, step, steps, lr)
            real, code = x[idx], codes[idx]
            fake = gen.blob(code, "deconv0")
            d_real, d_fake = disc(real / 64, code), disc(fake.detach() / 64, code)
            loss_d = F.binary_cross_entropy_with_logits(
                d_real, torch.ones_like(d_real)
            ) + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
            d_avg = 0.95 * d_avg + 0.05 * loss_d.item()
            if d_avg >= pause_ratio * g_avg:
                opt_d.zero_grad()
                loss_d.backward()
                opt_d.step()
            loss_img = F.mse_loss(fake, real) / pix_var
            with torch.no_grad():
                target = cls(centre_crop(real), feature_blobs)
            got = cls(centre_crop(fake), feature_blobs)
            loss_feat = sum(F.mse_loss(got[b], target[b]) / energy[b] for b in feature_blobs) / len(
                feature_blobs
            )
            d_out = disc(fake / 64, code)
            loss_adv = F.binary_cross_entropy_with_logits(d_out, torch.ones_like(d_out))
            g_avg = 0.95 * g_avg + 0.05 * loss_adv.item()
            r = min(1.0, step / (ramp * steps)) if ramp > 0 else 1.0
            loss = w_img * loss_img + w_feat * loss_feat + r * w_adv * loss_adv
            opt_g.zero_grad()
            loss.backward()
            opt_g.step()
            step += 1
            bar.update()
            history.append((loss_img.item(), loss_feat.item(), loss_adv.item(), loss_d.item()))
            bar.set_postfix(
                img=f"{loss_img.item():.3f}", feat=f"{loss_feat.item():.3f}", d=f"{d_avg:.2f}", refresh=False
            )
    bar.close()
    for p in cls.parameters():
        p.requires_grad_(True)
    gen.eval()
    return gen, np.asarray(history)
