"""The paper's DCGAN judge: its file format, its ONNX port against a float64 numpy reference, its batch
statistics, the preprocessing presets, DGN-AM's save path and `repro judge`.

Judge folders are made with the project's own writer (seeded parameters); the real index from ../shared is
read where it is present (the test skips cleanly without it). Agreement with real Theano is checked in
tests/test_dcgan_theano.py against the oracle's golden files.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from repro.cli import main
from repro.convert.dcgan import judge_to_onnx
from repro.dcgan import PARAMS, DcganFiles, JudgeParams, load_judge, random_judge, write_judge
from repro.dcgan.preprocess import authors, standard
from repro.errors import BadInput
from repro.evaluate.judges import DcganJudge, log_sigmoid
from repro.images import bytescale, dgn_am_file, dgn_am_pixels
from repro.runtime.ort import make_session

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "dcgan_imagenet"


@pytest.fixture(scope="module")
def params() -> JudgeParams:
    return random_judge(3, scale=0.05)


@pytest.fixture(scope="module")
def judge_dir(tmp_path_factory, params) -> Path:
    folder = tmp_path_factory.mktemp("judge")
    write_judge(folder, params)
    return folder


# --- the file format -------------------------------------------------------------------------------
def test_writer_and_reader_round_trip(judge_dir, params):
    back = load_judge(judge_dir)
    assert [name for name, _ in PARAMS] == list(back.arrays)
    for name, shape in PARAMS:
        assert back.arrays[name].shape == shape and back.arrays[name].dtype == np.float32
        np.testing.assert_array_equal(back.arrays[name], params.arrays[name])
    assert back.source == judge_dir / "30_discrim_params.jl"


@pytest.mark.skipif(not REFERENCE.exists(), reason="../shared/reference/dcgan_imagenet is not present")
def test_real_index_reads_and_names_the_missing_files(tmp_path):
    from repro.dcgan.read import _filenames

    names = _filenames(REFERENCE / "30_discrim_params.jl")
    assert names == [f"30_discrim_params.jl_{i:02d}.npy" for i in range(1, 18)]
    with pytest.raises(BadInput, match=r"parameter 11 \(w5\) is in .*_11\.npy, which is missing"):
        load_judge(REFERENCE)
    # with the two large files stood in for by seeded values (the reference folder lacks them), it loads
    for name in REFERENCE.iterdir():
        (tmp_path / name.name).symlink_to(name)
    stand_ins = random_judge(0)
    np.save(tmp_path / "30_discrim_params.jl_11.npy", stand_ins.arrays["w5"])
    np.save(tmp_path / "30_discrim_params.jl_14.npy", stand_ins.arrays["w6"])
    loaded = load_judge(tmp_path)
    np.testing.assert_array_equal(loaded.arrays["wy"], np.load(REFERENCE / "30_discrim_params.jl_17.npy"))


def test_index_naming_anything_else_is_refused_unrun(tmp_path):
    class Boom:
        def __reduce__(self):
            return (print, ("this must never run",))

    (tmp_path / "x_discrim_params.jl").write_bytes(pickle.dumps([Boom()], protocol=2))
    with pytest.raises(BadInput, match=r"names (__builtin__|builtins)\.print.*refused without running it"):
        load_judge(tmp_path)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            "transpose w3",
            r"_05\.npy: parameter 5 \(w3\) has shape \(128, 256, 3, 3\), the discriminator expects "
            r"\(256, 128, 3, 3\)",
        ),
        ("delete wy", r"parameter 17 \(wy\) is in .*_17\.npy, which is missing"),
        ("truncate index", r"not a DCGAN parameter index"),
        ("not npy", r"_03\.npy: not a readable \.npy file"),
        ("nan g2", r"parameter 3 \(g2\) must hold finite floats"),
    ],
)
def test_bad_judge_files_name_the_file_and_the_parameter(tmp_path, params, damage, message):
    arrays = dict(params.arrays)
    if damage == "transpose w3":
        arrays["w3"] = arrays["w3"].transpose(1, 0, 2, 3)
    if damage == "nan g2":
        arrays["g2"] = arrays["g2"].copy()
        arrays["g2"][5] = np.nan
    index = write_judge(tmp_path, JudgeParams(arrays))
    if damage == "delete wy":
        (tmp_path / "30_discrim_params.jl_17.npy").unlink()
    if damage == "truncate index":
        index.write_bytes(index.read_bytes()[:100])
    if damage == "not npy":
        (tmp_path / "30_discrim_params.jl_03.npy").write_bytes(b"hello")
    with pytest.raises(BadInput, match=message):
        load_judge(tmp_path)


def test_a_folder_without_one_index_is_bad_input(tmp_path):
    with pytest.raises(BadInput, match="found no .jl index"):
        load_judge(tmp_path)
    with pytest.raises(BadInput, match="no such file or folder"):
        load_judge(tmp_path / "absent")


# --- the network, against a float64 numpy reference ------------------------------------------------
def np_conv_true(x: np.ndarray, w: np.ndarray, stride: int) -> np.ndarray:
    """A true 2-D convolution (the kernel flipped), pad 1, written out as sums over the 3×3 taps."""
    n, c, h, wd = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    oh, ow = (h + 2 - 3) // stride + 1, (wd + 2 - 3) // stride + 1
    out = np.zeros((n, w.shape[0], oh, ow))
    for a in range(3):
        for b in range(3):
            patch = xp[:, :, a : a + stride * oh : stride, b : b + stride * ow : stride]
            out += np.einsum("nchw,oc->nohw", patch, w[:, :, 2 - a, 2 - b])
    return out


def np_judge_logit(params: JudgeParams, x: np.ndarray) -> np.ndarray:
    p = {k: v.astype(np.float64) for k, v in params.arrays.items()}
    h = np.asarray(x, np.float64)
    for i, stride in enumerate((1, 2, 1, 2, 1, 2)):
        h = np_conv_true(h, p["w" if i == 0 else f"w{i + 1}"], stride)
        if i:
            mean = h.mean(axis=(0, 2, 3), keepdims=True)
            var = ((h - mean) ** 2).mean(axis=(0, 2, 3), keepdims=True)
            h = (h - mean) / np.sqrt(var + 1e-8) * p[f"g{i + 1}"][None, :, None, None] + p[f"b{i + 1}"][
                None, :, None, None
            ]
        h = np.where(h > 0, h, 0.2 * h)
    return (h.reshape(len(h), -1) @ p["wy"])[:, 0]


@pytest.mark.parametrize("scale", [255.0, 1.0])
def test_onnx_judge_matches_float64_numpy(params, scale):
    session = make_session(judge_to_onnx(params))
    rng = np.random.default_rng(int(scale))
    x = (rng.uniform(0, 1, (3, 3, 32, 32)) * scale).astype(np.float32)
    for i in range(3):
        ours = session.run(["logit"], {"image": x[i : i + 1]})[0]
        ref = np_judge_logit(params, x[i : i + 1])
        assert abs(ours[0] - ref[0]) <= 1e-5 * max(1.0, abs(ref[0])), (ours, ref)
    both = session.run(["logit"], {"image": x[:2]})[0]
    np.testing.assert_allclose(both, np_judge_logit(params, x[:2]), rtol=1e-5, atol=1e-5)


def test_a_narrower_discriminator_of_the_same_design_loads_and_scores(tmp_path):
    """The embedded set's judge is the paper's design at other widths: same reader, same port, same maths."""
    widths = (8, 8, 16, 16, 32, 32)
    write_judge(tmp_path / "ok", random_judge(4, scale=0.05, widths=widths))
    back = load_judge(tmp_path / "ok")
    assert back.widths == widths and back.arrays["wy"].shape == (32 * 4 * 4, 1)
    x = np.random.default_rng(4).uniform(0, 255, (2, 3, 32, 32)).astype(np.float32)
    session = make_session(judge_to_onnx(back))
    for i in range(2):
        ours = session.run(["logit"], {"image": x[i : i + 1]})[0]
        np.testing.assert_allclose(ours, np_judge_logit(back, x[i : i + 1]), rtol=1e-5, atol=1e-5)
    arrays = dict(back.arrays)
    arrays["w4"] = np.zeros((16, 8, 3, 3), np.float32)  # a kernel that does not fit the widths around it
    write_judge(tmp_path / "bad", JudgeParams(arrays))
    with pytest.raises(
        BadInput,
        match=r"_08\.npy: parameter 8 \(w4\) has shape \(16, 8, 3, 3\), the discriminator expects "
        r"\(16, 16, 3, 3\) \(convolution widths 8/8/16/16/32/32",
    ):
        load_judge(tmp_path / "bad")


def test_kernels_are_flipped(params):
    """A cross-correlation port (no flip) gives other scores: the flip is not a no-op on these weights."""
    x = np.random.default_rng(0).uniform(0, 255, (1, 3, 32, 32)).astype(np.float32)
    unflipped = JudgeParams(
        {k: (v[:, :, ::-1, ::-1].copy() if v.ndim == 4 else v) for k, v in params.arrays.items()}
    )
    ours = make_session(judge_to_onnx(params)).run(["logit"], {"image": x})[0]
    other = make_session(judge_to_onnx(unflipped)).run(["logit"], {"image": x})[0]
    np.testing.assert_allclose(ours, np_judge_logit(params, x), rtol=1e-5, atol=1e-5)
    assert abs(ours[0] - other[0]) > 1e-3


def test_scores_depend_on_the_batch_and_the_judge_scores_one_per_batch(judge_dir, params):
    session = make_session(judge_to_onnx(params))
    x = np.random.default_rng(1).uniform(0, 255, (2, 3, 32, 32)).astype(np.float32)
    pair = session.run(["logit"], {"image": x})[0]
    singles = np.concatenate([session.run(["logit"], {"image": x[i : i + 1]})[0] for i in range(2)])
    assert np.abs(pair - singles).max() > 1e-3  # batch statistics: a batch of two is not two of one
    judge = DcganJudge(DcganFiles(judge_dir))
    np.testing.assert_array_equal(judge.logits(x), singles)


def test_log_sigmoid_is_exact_where_p_rounds_to_one():
    np.testing.assert_allclose(
        log_sigmoid(np.array([0.0, 40.0, -40.0])), [np.log(0.5), -np.exp(-40.0), -40.0]
    )


# --- preprocessing and the save path ---------------------------------------------------------------
def test_authors_preset_keeps_the_top_left_transposes_and_does_not_scale():
    rgb = np.zeros((300, 260, 3), np.uint8)
    rgb[:227, :227] = 200  # the part the authors kept
    rgb[:20, :100, 0] = 10  # a wide red-channel bar at the top: rows 0..19, columns 0..99
    x = authors(rgb)
    assert x.shape == (3, 32, 32) and x.dtype == np.float32 and x.max() <= 255 and x.max() > 150
    small = np.asarray(Image.fromarray(rgb[:227, :227]).resize((32, 32), Image.BILINEAR))
    np.testing.assert_array_equal(x, small.T)  # (3, W, H): height and width swapped
    assert x[0, 5, 0] < 50 and x[0, 0, 5] > 150  # the bar runs along axis 1 now, not axis 2


def test_standard_preset_takes_the_centre_and_scales_to_unit_range():
    rgb = np.full((64, 96, 3), 255, np.uint8)
    rgb[:, 16:80] = 0  # the central 64×64 square is black, the sides white
    x = standard(rgb)
    assert x.shape == (3, 32, 32)
    np.testing.assert_array_equal(x, -1.0)


def test_dgn_am_save_path_stretches_each_image_like_imsave():
    img = np.zeros((3, 8, 8))
    img[0] = 60.0  # blue in BGR: becomes the last RGB channel
    img[2, :4] = -200.0  # red, beyond the clip
    pixels = dgn_am_pixels(img)
    unit = (np.clip(img[::-1], -120, 120) + 120) / 240
    expected = ((unit - unit.min()) * 255 / (unit.max() - unit.min()) + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(pixels, expected.transpose(1, 2, 0))
    assert pixels.min() == 0 and pixels.max() == 255  # stretched to its own range
    assert bytescale(np.full((2, 2), 7.0)).tolist() == [[0, 0], [0, 0]]  # flat: no division by zero
    for fmt in ("jpeg", "png"):
        decoded = np.asarray(Image.open(__import__("io").BytesIO(dgn_am_file(img, fmt))).convert("RGB"))
        assert decoded.shape == (8, 8, 3)
        if fmt == "png":
            np.testing.assert_array_equal(decoded, pixels)


# --- repro judge -----------------------------------------------------------------------------------
def test_judge_command_scores_files(judge_dir, params, tmp_path, capsys):
    rng = np.random.default_rng(5)
    paths = []
    for i in range(2):
        path = tmp_path / f"img{i}.png"
        Image.fromarray(rng.integers(0, 256, (240, 250, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    assert main(["judge", "--judge", str(judge_dir), "--json", *paths]) == 0
    rows = json.loads(capsys.readouterr().out)
    session = make_session(judge_to_onnx(params))
    for row, path in zip(rows, paths, strict=True):
        x = authors(np.asarray(Image.open(path).convert("RGB")))[None]
        logit = session.run(["logit"], {"image": x})[0][0]
        assert row["image"] == path
        assert row["log_p_real"] == pytest.approx(float(log_sigmoid(logit)), abs=1e-9)
        assert row["p_real"] == pytest.approx(1 / (1 + np.exp(-logit)), rel=1e-6)
    assert main(["judge", "--judge", str(judge_dir), "--preprocess", "standard", paths[0]]) == 0
    line = capsys.readouterr().out.strip()
    assert line.endswith(paths[0]) and len(line.split()) == 3


def test_judge_command_bad_input(judge_dir, tmp_path, capsys):
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    for args, named in (
        ([str(text)], str(text)),
        ([str(tmp_path / "absent.png")], "absent.png"),
    ):
        assert main(["judge", "--judge", str(judge_dir), *args]) == 2
        err = capsys.readouterr().err.strip()
        assert named in err and len(err.splitlines()) == 1
    bad = tmp_path / "bad-judge"
    arrays = dict(random_judge(0).arrays)
    arrays["wy"] = arrays["wy"][:100]
    write_judge(bad, JudgeParams(arrays))
    image = tmp_path / "x.png"
    Image.new("RGB", (40, 40)).save(image)
    assert main(["judge", "--judge", str(bad), str(image)]) == 2
    err = capsys.readouterr().err
    assert "_17.npy" in err and "(100, 1)" in err and "(8192, 1)" in err
