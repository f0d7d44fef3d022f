"""repro: class-conditional image synthesis by gradient-based inference on converted Caffe models."""

__version__ = "0.1.0"
