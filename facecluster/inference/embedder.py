"""Face embeddings with the bundled dlib ResNet v1 network (ONNX): 128-D, L2-normalised."""

from __future__ import annotations

import numpy as np

from facecluster.inference.runtime import open_session

MODEL_FILE = "dlib_resnet_v1.onnx"
EMBEDDING_SIZE = 128
BATCH_SIZE = 32


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Scale each row to unit Euclidean length."""
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class FaceEmbedder:
    """Maps aligned 150 x 150 RGB chips to unit vectors whose distance measures identity."""

    def __init__(self, device: str = "auto", flip: bool = True) -> None:
        self.session, self.runtime = open_session(MODEL_FILE, device)
        self.flip = flip

    def raw(self, chips: np.ndarray) -> np.ndarray:
        """The network's own output (dlib's descriptor) for N x 150 x 150 x 3 uint8 chips."""
        outputs = [
            self.session.run(None, {"chips": chips[start : start + BATCH_SIZE].astype(np.float32)})[0]
            for start in range(0, len(chips), BATCH_SIZE)
        ]
        return np.concatenate(outputs) if outputs else np.zeros((0, EMBEDDING_SIZE), np.float32)

    def embed(self, chips: np.ndarray) -> np.ndarray:
        """Unit embeddings; with ``flip`` the chip and its mirror image are averaged first."""
        chips = np.asarray(chips, dtype=np.uint8)
        if chips.ndim == 3:
            chips = chips[None]
        vectors = self.raw(chips)
        if self.flip and len(chips):
            vectors = vectors + self.raw(np.ascontiguousarray(chips[:, :, ::-1]))
        return l2_normalise(vectors.astype(np.float32))
