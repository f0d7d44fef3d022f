import numpy as np
import pytest

from repro.data.procedural import (
    CLASS_NAMES,
    channel_mean_bgr,
    from_caffe_input,
    make_dataset,
    render,
    to_caffe_input,
)


@pytest.fixture(scope="module")
def small_set():
    return make_dataset(12, seed=3)


def test_same_seed_same_images_other_seed_other_images(small_set):
    images, labels = small_set
    again, labels_again = make_dataset(12, seed=3)
    other, _ = make_dataset(12, seed=4)
    assert np.array_equal(images, again) and np.array_equal(labels, labels_again)
    assert not np.array_equal(images, other)
    assert np.mean(images != other) > 0.5


def test_a_smaller_set_is_a_prefix_of_a_larger_one(small_set):
    images, labels = small_set
    prefix, prefix_labels = make_dataset(5, seed=3)
    assert np.array_equal(prefix, images[:50]) and np.array_equal(prefix_labels, labels[:50])


def test_shapes_dtypes_and_balance(small_set):
    images, labels = small_set
    assert images.shape == (120, 64, 64, 3) and images.dtype == np.uint8
    assert labels.shape == (120,) and labels.dtype == np.int64
    assert np.array_equal(np.bincount(labels, minlength=10), np.full(10, 12))
    assert len(CLASS_NAMES) == 10 and len(set(CLASS_NAMES)) == 10
    img = render(0, np.random.default_rng(0))
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8


def test_images_use_the_value_range(small_set):
    images, _ = small_set
    per_image_range = images.reshape(len(images), -1).max(1).astype(int) - images.reshape(
        len(images), -1
    ).min(1)
    assert per_image_range.min() > 60  # no blank or washed-out frames


def test_within_class_diversity(small_set):
    """Mean pairwise RMS pixel distance within every class is large, and no two images are near-copies."""
    images, labels = small_set
    for c, name in enumerate(CLASS_NAMES):
        x = images[labels == c].reshape(12, -1).astype(np.float64)
        d = np.sqrt(((x[:, None] - x[None]) ** 2).mean(-1))[np.triu_indices(12, 1)]
        assert d.mean() > 35, f"{name}: mean within-class RMS distance {d.mean():.1f}"
        assert d.min() > 8, f"{name}: two images only {d.min():.1f} apart"


def test_caffe_input_is_bgr_mean_subtracted_and_invertible(small_set):
    images, _ = small_set
    mean = channel_mean_bgr(images)
    expected = images.astype(np.float64).mean(axis=(0, 1, 2))[::-1]
    assert np.allclose(mean, expected)
    x = to_caffe_input(images, mean)
    assert x.shape == (120, 3, 64, 64) and x.dtype == np.float32
    assert np.allclose(x[:, 0], images[..., 2] - mean[0])  # channel 0 is blue
    assert np.allclose(x[:, 2], images[..., 0] - mean[2])  # channel 2 is red
    assert np.allclose(x.mean(axis=(0, 2, 3)), 0, atol=1e-3)
    assert np.array_equal(from_caffe_input(x, mean), images)


def test_bad_class_index_is_refused():
    with pytest.raises(ValueError, match="out of range"):
        render(10, np.random.default_rng(0))
