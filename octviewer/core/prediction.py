"""Results of running a model on one volume: frozen, plain NumPy, GUI- and torch-free."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Visual-field indices: unit, clinical range used for the network's sigmoid scaling, normal range.
VF_INDICES = {
    "vfi": {"unit": "%", "range": (0.0, 100.0), "normal": (97.0, 100.0), "label": "VFI"},
    "md": {"unit": "dB", "range": (-35.0, 5.0), "normal": (-2.0, 2.0), "label": "MD"},
    "psd": {"unit": "dB", "range": (0.0, 20.0), "normal": (0.0, 2.5), "label": "PSD"},
}


@dataclass(frozen=True)
class BatchResult:
    """What one batch of B-scans produced; streamed to the viewer as it arrives."""

    indices: np.ndarray  # (k,) B-scan indices
    probability: np.ndarray  # (k,)
    vf: dict[str, np.ndarray]  # name -> (k,) in clinical units
    cam: np.ndarray  # (k, h, w) feature-map resolution, class-logit units


@dataclass(frozen=True)
class Prediction:
    """Per-B-scan and per-volume outputs of one model on one volume.

    ``cam`` stays at the network's feature-map resolution (7 x 7 for a 224 input): upsampling to
    the B-scan happens where it is drawn, which keeps the result small and quick to copy.
    """

    bscan_probability: np.ndarray  # (n,)
    bscan_vf: dict[str, np.ndarray]  # name -> (n,)
    cam: np.ndarray  # (n, h, w)
    probability: float  # volume ("image") level: mean of B-scan probabilities
    vf: dict[str, float]  # volume level means, clinical units
    threshold: float
    model_name: str
    synthetic_model: bool = False
    device: str = "cpu"
    seconds: float = 0.0
    notes: tuple[str, ...] = field(default=())

    @property
    def decision(self) -> str:
        return "glaucoma" if self.probability >= self.threshold else "normal"

    @property
    def n_bscans(self) -> int:
        return len(self.bscan_probability)
