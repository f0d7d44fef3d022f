"""The training tool's nets mean in Caffe what they meant in torch.

tools/embedded describes each net once and derives both the torch module and the prototxt; here every
architecture, with seeded random weights and non-trivial batch-norm statistics, is written as Caffe files,
read back by repro.caffe, converted by repro.convert and run by ONNX Runtime, and compared with torch.
"""

import numpy as np
import pytest
import torch
from torch import nn

from repro import caffe
from tools.embedded import architectures as arch
from tools.embedded.export import TOLERANCE, OrtNet, write_caffe
from tools.embedded.layers import ChannelLRN, prototxt

ARCHS = {
    "classifier": (arch.classifier, ["fc8", "fc6", "prob"]),
    "evaluator": (arch.evaluator, ["fc", "gap"]),
    "generator": (arch.generator, ["deconv0"]),
    "judge": (arch.judge, ["p_real", "conv2"]),
}


def test_channel_lrn_is_torch_local_response_norm():
    x = torch.randn(3, 20, 5, 5) * 40
    for size in (3, 5):
        ref = nn.LocalResponseNorm(size, alpha=1e-3, beta=0.75, k=2.0)(x)
        assert torch.allclose(ChannelLRN(20, size, 1e-3, 0.75, 2.0)(x), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", sorted(ARCHS))
def test_written_caffe_net_matches_torch(name, tmp_path):
    make, outputs = ARCHS[name]
    torch.manual_seed(0)
    chain = make()
    for m in chain.modules():  # make batch norm and Scale do something
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
        if hasattr(m, "weight") and m.__class__.__name__ == "ScaleShift":
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    chain.eval()
    shape = chain.input_shape[1:]
    rng = np.random.default_rng(1)
    scale = 1.0 if name == "generator" else 60.0
    x = (rng.standard_normal((3, *shape)) * scale).astype(np.float32)
    paths = write_caffe(chain, tmp_path, name)
    written = caffe.load_net(paths[0]).layers
    described = caffe.parse_net_text(prototxt(chain)).layers
    assert [(la.name, la.type, la.bottoms, la.tops) for la in written] == [
        (la.name, la.type, la.bottoms, la.tops) for la in described
    ]
    got = OrtNet(*paths, chain.input_name, outputs)(x)
    with torch.no_grad():
        ref = chain(torch.from_numpy(x), tuple(outputs))
    for blob in outputs:
        r = ref[blob].numpy()
        assert got[blob].shape == r.shape
        err = np.abs(got[blob] - r).max() / np.abs(r).max()
        assert err <= TOLERANCE, f"{name}/{blob}: relative error {err:.2e}"
