"""The one preprocessing path, shared by the Predictor and the trainer, named in the model file.

2D models (``bscan_triplet_v1``): each B-scan with its two neighbours as three channels (edge
B-scans repeat themselves), resized with antialiasing to ``size`` x ``size``, scaled to [0, 1] by
the volume's own min and max, quantised to 8 bits (so the trainer's uint8 cache holds exactly what
the network sees), then normalised with the backbone's ImageNet mean and std.

3D models (``volume_area_v1``): the whole volume area-resampled to ``volume_shape``, scaled the
same way, one channel normalised with mean 0.5 and std 0.25.

Everything runs on the tensor's device, so on a GPU the raw uint8 cube is copied once and
resized there.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..core import OctVolume

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@functools.lru_cache(maxsize=16)
def _stats(mean: tuple, std: tuple, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std as (1, 3, 1, 1) tensors on ``device``, made once (not one small copy per batch)."""
    with torch.inference_mode(False):
        return (torch.tensor(mean, dtype=torch.float32, device=device).view(1, 3, 1, 1),
                torch.tensor(std, dtype=torch.float32, device=device).view(1, 3, 1, 1))


@dataclass(frozen=True)
class Preprocess:
    name: str = "bscan_triplet_v1"
    size: int = 224
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    volume_shape: tuple[int, int, int] = (64, 128, 64)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Preprocess:
        """Unchecked: model files go through ``meta.ModelMeta``, which checks every field's bounds."""
        if d.get("name") not in ("bscan_triplet_v1", "volume_area_v1"):
            raise ValueError(f"unknown preprocessing {d.get('name')!r}")
        return cls(name=d["name"], size=int(d["size"]), mean=tuple(d["mean"]), std=tuple(d["std"]),
                   volume_shape=tuple(d["volume_shape"]))

    @property
    def is_3d(self) -> bool:
        return self.name == "volume_area_v1"

    # -- shared steps -------------------------------------------------------------------------
    @staticmethod
    def display_tensor(volume: OctVolume, device="cpu") -> torch.Tensor:
        """The volume's 8-bit display values on ``device`` (one host-to-device copy)."""
        display = np.ascontiguousarray(volume.display())
        with warnings.catch_warnings():  # read-only arrays are fine: the tensor is never written
            warnings.simplefilter("ignore", UserWarning)
            return torch.from_numpy(display).to(device, non_blocking=True)

    @staticmethod
    def intensity_range(display: torch.Tensor) -> tuple[float, float]:
        lo, hi = float(display.min()), float(display.max())
        return lo, max(hi, lo + 1.0)

    @staticmethod
    def intensity_range_tensor(display: torch.Tensor):
        """The same range without a device synchronisation: floats on the CPU, 0-d tensors elsewhere."""
        if display.device.type == "cpu":
            return Preprocess.intensity_range(display)
        lo, hi = torch.aminmax(display)
        lo = lo.float()
        return lo, torch.maximum(hi.float(), lo + 1.0)

    def resize_bscans(self, bscans: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
        """(k, H, W) uint8 B-scans -> (k, size, size) uint8, scaled by the volume's range.

        On the CPU the resize runs on uint8 (PyTorch's vectorised kernel, 2.7x faster than on
        floats); elsewhere on floats. The two differ by under one grey level before quantisation.
        """
        size = (self.size, self.size)
        if bscans.device.type == "cpu" and bscans.dtype == torch.uint8:
            x = F.interpolate(bscans[:, None], size=size, mode="bilinear", antialias=True, align_corners=False)
        else:
            x = F.interpolate(bscans.float()[:, None], size=size, mode="bilinear", antialias=True, align_corners=False)
        x = (x[:, 0].float() - lo) * (255.0 / (hi - lo))
        return x.clamp_(0, 255).round_().to(torch.uint8)

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """Batch in [0, 1] -> network input: (B, 3, S, S) with the backbone's mean and std in
        channels_last, or (B, D, H, W) -> (B, 1, D, H, W) for 3D models. The trainer calls this
        after its augmentation, so both paths normalise identically."""
        if self.is_3d:
            return (x[:, None] - 0.5) / 0.25
        mean, std = _stats(self.mean, self.std, x.device)
        return ((x - mean) / std).contiguous(memory_format=torch.channels_last)

    def assemble(self, resized: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Stack ``resized[rows]`` ((B, 3) row indices) into normalised (B, 3, S, S) network input."""
        return self.normalise(resized[rows].float().div_(255.0))

    @staticmethod
    def neighbours(indices: torch.Tensor, n_bscans: int) -> torch.Tensor:
        """(B,) B-scan indices -> (B, 3) previous/self/next, edges repeated."""
        return torch.stack([(indices - 1).clamp(min=0), indices, (indices + 1).clamp(max=n_bscans - 1)], dim=1)

    # -- whole steps ------------------------------------------------------------------------
    def bscan_inputs(self, display: torch.Tensor, indices: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
        """Network input for some B-scans of a volume, resizing only the B-scans needed."""
        rows = self.neighbours(indices, display.shape[0])
        needed, inverse = torch.unique(rows, return_inverse=True)
        return self.assemble(self.resize_bscans(display[needed], lo, hi), inverse)

    def resample_volume(self, display: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
        """(n, H, W) uint8 -> (D, H', W') uint8, area-resampled and scaled by the volume's range."""
        x = F.interpolate(display.float()[None, None], size=self.volume_shape, mode="area")[0, 0]
        return ((x - lo) * (255.0 / (hi - lo))).clamp_(0, 255).round_().to(torch.uint8)

    def assemble_volumes(self, resampled: torch.Tensor) -> torch.Tensor:
        """(B, D, H, W) uint8 -> (B, 1, D, H, W) normalised 3D input."""
        return self.normalise(resampled.float() / 255.0)
