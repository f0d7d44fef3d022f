"""The embedded set's realism judge, made the way the paper's was: Radford et al.'s 32×32 DCGAN discriminator,
trained by dcgan_code's recipe against a DCGAN generator on the set's images, stored in dcgan_code's format.

The paper's judge is the discriminator of dcgan_code's ImageNet model (repro.dcgan.params): six 3×3
convolutions with strides 1,2,1,2,1,2, leaky ReLU 0.2, batch-statistics batchnorm after all but the first, a
bias-free read-out. This one has the same layers at a quarter of the widths, so that it ships in git, and is
written with repro.dcgan.write_judge, so the embedded report loads and scores it through the very code that
loads and scores the paper's (repro.dcgan.read, repro.convert.dcgan, the `authors` preprocessing).

dcgan_code trains on `X / 127.5 − 1` in the images' own orientation, with Adam (2e-4, β1 0.5), real and
generated images in separate batches (so each has its own batch statistics), binary cross-entropy and no
running statistics; all of that is kept. Two stabilisers are added, because with minutes of CPU instead of
days of GPU the discriminator otherwise wins within a few hundred steps and its opponent collapses to one
noise pattern (seen at 3 epochs: every sample the same texture, d loss 0.002), leaving a judge that has only
learned to reject that pattern: one-sided label smoothing (real = 0.9) and instance noise on both inputs,
annealed to zero by 70 % of training, so the judge is trained on clean images at the end.

Theano's `dnn_conv` flips its kernels, torch's Conv2d does not: the written kernels are the trained ones
flipped, so the Theano-semantics port computes this net.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from repro.dcgan import JudgeParams
from repro.dcgan.params import CONV_NAMES, IMAGE_SIZE, STRIDES
from repro.dcgan.preprocess import standard
from tools.embedded.training import progress_bar, shuffled_batches

WIDTHS = (32, 32, 64, 64, 128, 128)  # the paper's 128/128/256/256/512/512, quartered
Z = 64
EPSILON = 1e-8  # dcgan_code lib/ops.py batchnorm
LEAK = 0.2


class Discriminator(nn.Module):
    def __init__(self, widths: tuple[int, ...] = WIDTHS):
        super().__init__()
        channels = (3, *widths)
        self.convs = nn.ModuleList(
            nn.Conv2d(channels[i], channels[i + 1], 3, s, 1, bias=False) for i, s in enumerate(STRIDES)
        )
        self.norms = nn.ModuleList(
            nn.BatchNorm2d(c, eps=EPSILON, track_running_stats=False) for c in widths[1:]
        )
        side = IMAGE_SIZE // int(np.prod(STRIDES))
        self.readout = nn.Linear(widths[-1] * side * side, 1, bias=False)
        for conv in self.convs:
            nn.init.normal_(conv.weight, 0.0, 0.02)
        for norm in self.norms:
            nn.init.normal_(norm.weight, 1.0, 0.02)
            nn.init.zeros_(norm.bias)
        nn.init.normal_(self.readout.weight, 0.0, 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images [N, 3, 32, 32] in the net's input space → logits [N]."""
        for i, conv in enumerate(self.convs):
            x = conv(x)
            if i:
                x = self.norms[i - 1](x)
            x = F.leaky_relu(x, LEAK)
        return self.readout(x.flatten(1))[:, 0]

    def params(self) -> JudgeParams:
        """The parameters as dcgan_code stores them: kernels flipped for Theano's true convolution."""
        arrays = {}
        for i, name in enumerate(CONV_NAMES):
            arrays[name] = self.convs[i].weight.detach().flip(2, 3).numpy().copy()
            if i:
                arrays[f"g{i + 1}"] = self.norms[i - 1].weight.detach().numpy().copy()
                arrays[f"b{i + 1}"] = self.norms[i - 1].bias.detach().numpy().copy()
        arrays["wy"] = self.readout.weight.detach().numpy().T.copy()
        return JudgeParams({k: v.astype(np.float32) for k, v in arrays.items()})


def generator() -> nn.Module:
    """The judge's opponent: z → 3×32×32 in [−1, 1] (tanh), dcgan_code's generator pattern; not shipped."""
    return nn.Sequential(
        nn.Linear(Z, 128 * 4 * 4),
        nn.Unflatten(1, (128, 4, 4)),
        nn.BatchNorm2d(128),
        nn.ReLU(),
        nn.ConvTranspose2d(128, 64, 4, 2, 1),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.ConvTranspose2d(64, 32, 4, 2, 1),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.ConvTranspose2d(32, 3, 4, 2, 1),
        nn.Tanh(),
    )


def unit_images(rgb: np.ndarray) -> torch.Tensor:
    """uint8 [N, H, W, 3] RGB → [N, 3, 32, 32] in [−1, 1]: dcgan_code's training input (`standard`)."""
    return torch.from_numpy(np.stack([standard(img) for img in rgb]))


def unit_to_rgb(u: torch.Tensor) -> np.ndarray:
    """[N, 3, 32, 32] in [−1, 1] → uint8 [N, 32, 32, 3] pictures."""
    x = (u.detach().numpy().transpose(0, 2, 3, 1) + 1.0) * 127.5
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def train(
    real_rgb: np.ndarray,
    *,
    epochs: int,
    seed: int,
    batch: int = 64,
    lr: float = 2e-4,
    smooth: float = 0.9,
    noise: float = 0.1,
):
    """→ (discriminator, generator, history [steps, 2] of (d loss, g loss))."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    x = unit_images(real_rgb)
    disc, gen = Discriminator(), generator()
    opt_d = torch.optim.Adam(disc.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(gen.parameters(), lr=lr, betas=(0.5, 0.999))
    steps = epochs * (len(x) // batch)
    bar = progress_bar(steps, "dcgan_judge")
    history = []
    for _ in range(epochs):
        for idx in shuffled_batches(len(x), batch, g):
            sigma = noise * max(0.0, 1 - len(history) / (0.7 * steps))

            def d(images, sigma=sigma):
                return disc(images + sigma * torch.randn(images.shape, generator=g))

            fake = gen(torch.randn(batch, Z, generator=g))
            d_real, d_fake = d(x[idx]), d(fake.detach())
            loss_d = F.binary_cross_entropy_with_logits(
                d_real, torch.full_like(d_real, smooth)
            ) + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()
            d_fake = d(fake)
            loss_g = F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))
            opt_g.zero_grad()
            loss_g.backward()
            opt_g.step()
            bar.update()
            history.append((loss_d.item(), loss_g.item()))
            bar.set_postfix(d=f"{loss_d.item():.3f}", g=f"{loss_g.item():.3f}", refresh=False)
    bar.close()
    gen.eval()
    return disc.eval(), gen, np.asarray(history)


@torch.no_grad()
def samples(gen: nn.Module, n: int, seed: int) -> np.ndarray:
    """uint8 [n, 32, 32, 3] pictures from the trained opponent."""
    gen.eval()
    return unit_to_rgb(gen(torch.randn(n, Z, generator=torch.Generator().manual_seed(seed))))


def noise_pictures(n: int, seed: int) -> np.ndarray:
    """uint8 [n, 64, 64, 3] pictures of nothing: white noise and smooth colour fields around mid-grey."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, 64, 64, 3), np.float64)
    for i in range(n):
        if i % 2:
            out[i] = rng.normal(0, 1, (64, 64, 3))
        else:
            res = int(rng.integers(2, 17))
            field = torch.from_numpy(rng.normal(0, 1, (1, 3, res, res)))
            smooth = F.interpolate(field, size=64, mode="bilinear", align_corners=False)[0].numpy()
            out[i] = (smooth / smooth.std()).transpose(1, 2, 0)
    strength = rng.uniform(10, 90, (n, 1, 1, 1))
    return np.clip(np.round(128 + strength * out), 0, 255).astype(np.uint8)
