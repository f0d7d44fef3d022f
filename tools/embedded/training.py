"""The training loops: classifiers, the fc6 generator (Dosovitskiy & Brox losses) and the DCGAN judge.

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

from tools.embedded.architectures import CROP, DCGAN_Z, JUDGE_SCALE, adversary, dcgan_generator
from tools.embedded.layers import CaffeChain

OFFSET = (64 - CROP) // 2
FEATURE_BLOB = "conv3"  # the classifier features of the generator's feature loss (D&B used AlexNet conv5)


def centre_crop(x: torch.Tensor) -> torch.Tensor:
    return x[:, :, OFFSET : OFFSET + CROP, OFFSET : OFFSET + CROP]


def random_crop(x: torch.Tensor, g: torch.Generator, flip: bool) -> torch.Tensor:
    """Per-batch random offset in 0..8 and optionally a random horizontal flip: cheap augmentation."""
    oy, ox = (int(v) for v in torch.randint(0, 64 - CROP + 1, (2,), generator=g))
    x = x[:, :, oy : oy + CROP, ox : ox + CROP]
    return x.flip(3) if flip and torch.rand((), generator=g) < 0.5 else x


def _batches(n: int, batch: int, g: torch.Generator):
    order = torch.randperm(n, generator=g)
    return [order[i : i + batch] for i in range(0, n - batch + 1, batch)]


def _cosine(opt, step: int, total: int, lr: float) -> None:
    for group in opt.param_groups:
        group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / total))


def _bar(total: int, desc: str):
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
    bar, step = _bar(steps, chain.net_name), 0
    for _ in range(epochs):
        chain.train()
        for idx in _batches(len(x), batch, g):
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
    batch: int = 32,
    w_feat: float = 0.1,
    w_adv: float = 0.001,
):
    """Dosovitskiy & Brox: image loss + feature loss (classifier conv features) + adversarial loss.

    Losses are normalised by the data's own scale (pixel variance, feature energy) so the weights read as
    relative importances. The adversary is the generator's own, trained alongside and then discarded. The
    weights are small because with a few minutes of CPU the image term is what the generator can still
    learn: a larger feature or adversarial weight traded held-out pixel error for checkerboard texture.
    """
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    cls.eval()
    for p in cls.parameters():
        p.requires_grad_(False)
    pix_var = float(x.var())
    feat_energy = float(predict(cls, x[:1000], FEATURE_BLOB).square().mean())
    disc = adversary()
    opt_g = torch.optim.Adam(gen.parameters(), lr=lr, betas=(0.9, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=2e-4, betas=(0.5, 0.999))
    steps = epochs * (len(x) // batch)
    bar, step = _bar(steps, gen.net_name), 0
    history = []
    for _ in range(epochs):
        gen.train()
        for idx in _batches(len(x), batch, g):
            _cosine(opt_g, step, steps, lr)
            real = x[idx]
            fake = gen.blob(codes[idx], "deconv0")
            # adversary step on detached samples; scaled to ≈unit range for the small discriminator
            d_real, d_fake = disc(real / 64), disc(fake.detach() / 64)
            loss_d = F.binary_cross_entropy_with_logits(
                d_real, torch.ones_like(d_real)
            ) + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()
            loss_img = F.mse_loss(fake, real) / pix_var
            with torch.no_grad():
                target = cls.blob(centre_crop(real), FEATURE_BLOB)
            loss_feat = F.mse_loss(cls.blob(centre_crop(fake), FEATURE_BLOB), target) / feat_energy
            d_out = disc(fake / 64)
            loss_adv = F.binary_cross_entropy_with_logits(d_out, torch.ones_like(d_out))
            ramp = min(1.0, step / (0.2 * steps))  # let reconstruction settle before the adversary pulls
            loss = loss_img + w_feat * loss_feat + ramp * w_adv * loss_adv
            opt_g.zero_grad()
            loss.backward()
            opt_g.step()
            step += 1
            bar.update()
            history.append((loss_img.item(), loss_feat.item(), loss_adv.item(), loss_d.item()))
            bar.set_postfix(img=f"{loss_img.item():.3f}", feat=f"{loss_feat.item():.3f}", refresh=False)
    bar.close()
    for p in cls.parameters():
        p.requires_grad_(True)
    gen.eval()
    return gen, np.asarray(history)


@torch.no_grad()
def generate(gen: CaffeChain, codes: torch.Tensor, batch: int = 500) -> torch.Tensor:
    gen.eval()
    return torch.cat([gen.blob(codes[i : i + batch], "deconv0") for i in range(0, len(codes), batch)])


# ---------------------------------------------------------------------------------------------- DCGAN judge

DCGAN_RANGE = 1.25  # tanh × this covers the mean-subtracted pixel range (≈[-125, 150] / 127.5)


def dcgan_to_image(u: torch.Tensor) -> torch.Tensor:
    """DCGAN output (3×32×32, judge units) → the judge's input space (3×64×64 Caffe space).

    Nearest ×2 upsampling is undone exactly by the judge's 2×2 average pool.
    """
    return F.interpolate(u * DCGAN_RANGE, scale_factor=2, mode="nearest") / JUDGE_SCALE


def noise_images(n: int, g: torch.Generator) -> torch.Tensor:
    """Images of nothing, in the Caffe input space: white noise and smooth random colour fields, of random
    strength. A discriminator never shown such inputs may score them as real; the judge must not."""
    strength = torch.empty(n, 1, 1, 1).uniform_(10, 90, generator=g)
    white = torch.randn(n, 3, 64, 64, generator=g)
    res = int(torch.randint(2, 17, (), generator=g))
    smooth = F.interpolate(
        torch.randn(n, 3, res, res, generator=g), size=64, mode="bilinear", align_corners=False
    )
    pick = (torch.rand(n, 1, 1, 1, generator=g) < 0.5).float()
    return strength * (pick * white + (1 - pick) * smooth / smooth.std((1, 2, 3), keepdim=True))


def train_judge(
    judge: CaffeChain,
    x: torch.Tensor,
    *,
    epochs: int,
    seed: int,
    batch: int = 64,
    lr: float = 2e-4,
    calibration_steps: int = 300,
):
    """A DCGAN on the data set; its discriminator, calibrated, becomes the judge.

    Adversarial phase, standard DCGAN (separate real and fake batches), with one-sided label smoothing (0.9)
    and annealed instance noise to keep the discriminator from winning outright, which on this little compute
    otherwise leaves the generator stuck in noise-like modes. Calibration phase: the generator frozen, the
    discriminator alone learns real vs (its generator's samples + noise images) on mixed batches, and its
    batch-norm statistics are then averaged over that same mixture, so the exported net (use_global_stats)
    computes the function that was trained. The judge never sees the fc6 generator's output.
    """
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    gen = dcgan_generator()
    opt_d = torch.optim.Adam(judge.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(gen.parameters(), lr=lr, betas=(0.5, 0.999))
    steps = epochs * (len(x) // batch)
    bar, step = _bar(steps + calibration_steps, judge.net_name), 0
    history = []
    for _ in range(epochs):
        judge.train()
        gen.train()
        for idx in _batches(len(x), batch, g):
            sigma = 0.1 / JUDGE_SCALE * max(0.0, 1 - step / (0.7 * steps))

            def d(images, sigma=sigma):
                return judge.blob(images + sigma * torch.randn(images.shape, generator=g), "logit")

            real = x[idx]
            fake = dcgan_to_image(gen(torch.randn(batch, DCGAN_Z, generator=g)))
            d_real, d_fake = d(real), d(fake.detach())
            loss_d = F.binary_cross_entropy_with_logits(
                d_real, torch.full_like(d_real, 0.9)
            ) + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()
            d_fake = d(fake)
            loss_g = F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))
            opt_g.zero_grad()
            loss_g.backward()
            opt_g.step()
            step += 1
            bar.update()
            history.append((loss_d.item(), loss_g.item()))
            bar.set_postfix(d=f"{loss_d.item():.3f}", g=f"{loss_g.item():.3f}", refresh=False)
    gen.eval()
    for p in gen.parameters():
        p.requires_grad_(False)
    opt_c = torch.optim.Adam(judge.parameters(), lr=lr / 2, betas=(0.5, 0.999))
    judge.train()
    for _ in range(calibration_steps):
        images, target = _calibration_batch(x, gen, g, batch)
        loss_c = F.binary_cross_entropy_with_logits(judge.blob(images, "logit"), target)
        opt_c.zero_grad()
        loss_c.backward()
        opt_c.step()
        bar.update()
        bar.set_postfix(calibration=f"{loss_c.item():.3f}", refresh=False)
    bar.close()
    _recalibrate_batchnorm(judge, x, gen, g, batch)
    judge.eval()
    return judge, gen, np.asarray(history)


@torch.no_grad()
def _calibration_batch(x: torch.Tensor, gen: nn.Module, g: torch.Generator, batch: int):
    """Half real images, a quarter DCGAN samples, a quarter noise images, with labels 1 / 0 / 0."""
    half, quarter = batch // 2, batch // 4
    real = x[torch.randint(0, len(x), (half,), generator=g)]
    fake = dcgan_to_image(gen(torch.randn(quarter, DCGAN_Z, generator=g)))
    noise = noise_images(batch - half - quarter, g)
    target = torch.cat([torch.ones(half, 1), torch.zeros(batch - half, 1)])
    return torch.cat([real, fake, noise]), target


@torch.no_grad()
def _recalibrate_batchnorm(
    judge: CaffeChain, x: torch.Tensor, gen: nn.Module, g: torch.Generator, batch: int
):
    """Replace the running averages by exact averages over 20 calibration batches."""
    for m in judge.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average
    judge.train()
    for _ in range(20):
        judge.blob(_calibration_batch(x, gen, g, batch)[0], "logit")


@torch.no_grad()
def judge_scores(judge: CaffeChain, x: torch.Tensor, batch: int = 500) -> torch.Tensor:
    judge.eval()
    return torch.cat([judge.blob(x[i : i + batch], "p_real") for i in range(0, len(x), batch)])[:, 0]
