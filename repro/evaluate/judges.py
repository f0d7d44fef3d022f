"""Realism judges: what scores log p(real) for Table 2, one kind per judge file format.

The paper's judge is the DCGAN discriminator of repro.dcgan, which scored the image *files* DGN-AM saved;
so a generator output goes through DGN-AM's save path (`repro.images.dgn_am_file`, JPEG as its ".jpg" names
made `imsave` write, or PNG), is read back, and is preprocessed by a named preset before it is scored. A
Caffe judge (the embedded set's) scores the saved image's values directly. Both score one image per call:
the DCGAN judge's batch statistics make a score depend on its batch, and the authors used batches of one.
`JUDGES` maps each judge description to its class.
"""

from __future__ import annotations

import numpy as np

from repro.convert.cache import NetFiles
from repro.dcgan import DcganFiles, judge_input, load_judge
from repro.dcgan.preprocess import decode_rgb
from repro.errors import BadInput
from repro.evaluate.sessions import caffe_session, centre_crop
from repro.images import FILE_FORMATS, dgn_am_file


def log_sigmoid(logit: np.ndarray) -> np.ndarray:
    """log p(real) from the judge's logit without the round trip through p (exact where p rounds to 1)."""
    return -np.logaddexp(0.0, -np.asarray(logit, np.float64))


class DcganJudge:
    def __init__(self, files: DcganFiles):
        from repro.convert.dcgan import judge_to_onnx
        from repro.dcgan.preprocess import PRESETS
        from repro.runtime.ort import make_session

        if files.preprocess not in PRESETS:
            raise BadInput(
                f"judge preprocessing: expected one of {', '.join(PRESETS)}, got {files.preprocess!r}"
            )
        if files.file_format not in FILE_FORMATS:
            raise BadInput(
                f"judge file format: expected one of {', '.join(FILE_FORMATS)}, got {files.file_format!r}"
            )
        self.files = files
        self.params = load_judge(files.index)
        self._session = make_session(judge_to_onnx(self.params))

    def describe(self) -> dict:
        f = self.files
        return {
            "kind": "dcgan",
            "index": str(self.params.source),
            "preprocess": f.preprocess,
            "file_format": f.file_format,
        }

    def logits(self, inputs: np.ndarray) -> np.ndarray:
        """Judge inputs [N, 3, 32, 32] (already preprocessed) → logits [N], one image per batch."""
        x = np.ascontiguousarray(inputs, dtype=np.float32)
        return np.concatenate(
            [self._session.run(["logit"], {"image": x[i : i + 1]})[0] for i in range(len(x))]
        )

    def score_rgb(self, images_rgb: list[np.ndarray]) -> np.ndarray:
        """uint8 RGB pictures (as read from their files) → logits [N]."""
        return self.logits(np.stack([judge_input(rgb, self.files.preprocess) for rgb in images_rgb]))

    def log_p_real(self, images_bgr: np.ndarray) -> np.ndarray:
        """Generator outputs [N, 3, H, W] → log p(real) of the files DGN-AM would have saved."""
        fmt = self.files.file_format
        pictures = [decode_rgb(dgn_am_file(img, fmt), f"<saved {fmt}>") for img in images_bgr]
        return log_sigmoid(self.score_rgb(pictures))


class CaffeJudge:
    """A Caffe net with one output whose last value is p(real), fed the saved image's centre crop."""

    def __init__(self, files: NetFiles):
        self.files = files
        self._in, self._out = files.blobs["input"], files.blobs["output"]
        self._session = caffe_session(files, [self._out])
        self._size = self._session.get_inputs()[0].shape[2]

    def describe(self) -> dict:
        return {"kind": "caffe", "prototxt": str(self.files.prototxt)}

    def log_p_real(self, images: np.ndarray) -> np.ndarray:
        x = centre_crop(images, self._size)
        p = np.concatenate(
            [self._session.run([self._out], {self._in: x[i : i + 1]})[0] for i in range(len(x))]
        )
        return np.log(np.clip(p.reshape(len(x), -1)[:, -1].astype(np.float64), 1e-12, 1.0))


JUDGES = {DcganFiles: DcganJudge, NetFiles: CaffeJudge}


def make_judge(files: DcganFiles | NetFiles) -> DcganJudge | CaffeJudge:
    return JUDGES[type(files)](files)
