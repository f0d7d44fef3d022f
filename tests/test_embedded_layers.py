"""The training tool's nets mean in Caffe what they meant in torch.

tools/embedded describes each net once and derives both the torch module and the prototxt; here every
architecture, with seeded random weights and non-trivial batch-norm statistics, is written as Caffe files,
read back by repro.caffe, converted by repro.convert and run by ONNX Runtime, and compared with torch. The
judge is written in dcgan_code's format instead and read back by repro.dcgan, as the paper's judge is.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from repro import caffe
from repro.dcgan import DcganFiles, load_judge, write_judge
from repro.evaluate.judges import DcganJudge
from tools.embedded import architectures as arch
from tools.embedded import dcgan_judge
from tools.embedded.export import TOLERANCE, OrtNet, write_caffe
from tools.embedded.layers import ChannelLRN, caffe_net

ARCHS = {
    "classifier": (arch.classifier, ["fc8", "fc6", "prob"]),
    "evaluator": (arch.evaluator, ["fc", "gap"]),
    "generator": (arch.generator, ["deconv0"]),
}
EMBEDDED = Path(__file__).resolve().parents[1] / "models" / "embedded"


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
    described = caffe_net(chain).layers
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


def _layers(net):
    return [(la.name, la.type, la.bottoms, la.tops, la.params) for la in net.layers]


# one numeric setting per net, checked by value too: (layer, parameter message, field, committed value)
SETTING = {
    "classifier": ("norm1", "lrn_param", "local_size", 5),
    "evaluator": ("pool1", "pooling_param", "kernel_size", 2),
    "generator": ("relu_defc7", "relu_param", "negative_slope", 0.3),
}


@pytest.mark.parametrize("name", sorted(ARCHS))
def test_written_prototxt_means_the_committed_one(name):
    """The shipped prototxts came from an earlier writer; repro.caffe's, read back, must give those files
    read back (every layer, blob and setting), or re-exporting would silently change the set."""
    if not (EMBEDDED / "manifest.json").exists():
        pytest.skip("no embedded model set")
    entry = json.loads((EMBEDDED / "manifest.json").read_text())[name]
    committed = caffe.load_net(EMBEDDED / entry["prototxt"])
    chain = ARCHS[name][0]()
    written = caffe.parse_net_text(caffe.net_to_prototxt(caffe_net(chain)))
    assert written.name == committed.name and written.shapes == committed.shapes
    assert _layers(written) == _layers(committed)

    layer, message, field, value = SETTING[name]
    for net in (written, committed):
        assert getattr(getattr(net.layer(layer).params, message), field) == pytest.approx(value)
    next(s for s in chain.specs if s.name == layer).params[field] = value + 2
    wrong = caffe.parse_net_text(caffe.net_to_prototxt(caffe_net(chain)))
    assert _layers(wrong) != _layers(committed)  # a setting written wrongly is caught


def test_written_dcgan_judge_scores_what_torch_computed(tmp_path):
    """torch's cross-correlation with batch statistics, written with flipped kernels, read by the Theano-
    semantics port: the same logits at batch 1 (how the judge scores), for the quartered widths."""
    torch.manual_seed(0)
    disc = dcgan_judge.Discriminator()
    with torch.no_grad():
        for norm in disc.norms:  # make the batchnorm scale and shift do something
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.5, 0.5)
    index = write_judge(tmp_path, disc.params(), stem="7_discrim_params")
    assert load_judge(index).widths == dcgan_judge.WIDTHS
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        ref = torch.cat([disc(x[i : i + 1]) for i in range(4)]).numpy()
        batch = disc(x).numpy()
    got = DcganJudge(DcganFiles(tmp_path)).logits(x.numpy())
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
    assert np.abs(batch - ref).max() > 1e-3  # batch statistics: the batch it is scored in matters
