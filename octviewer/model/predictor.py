"""Predictor: OctVolume in, Prediction out, batched, streaming, cancellable, Qt-free.

The B-scan the reader is looking at is analysed first, alone, so its probability and CAM arrive
within one network call; the rest follow in batches, each streamed through ``on_batch``. The raw
uint8 volume is copied to the device once and only the B-scans a batch needs are resized there.
CAMs come out of the same forward pass at feature-map size (7 x 7): no backward pass, and a tiny
copy back to the host.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np
import torch

from ..core import VF_INDICES, BatchResult, OctVolume, Prediction
from .cam import cell_weights
from .model_file import LoadedModel, load_model
from .networks import VARIANTS


class ScanNotSupported(Exception):
    """The model was not made for this kind of scan; the reason is shown to the reader."""


class Cancelled(Exception):
    """The caller asked the analysis to stop."""


def select_device(preference: str = "auto") -> torch.device:
    """CUDA, then Apple MPS, then CPU; or exactly what was asked for, if available."""
    if preference in ("auto", None, ""):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(preference)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("CUDA was requested but no CUDA GPU is available")
    return device


def unscale_vf(name: str, scaled: np.ndarray) -> np.ndarray:
    lo, hi = VF_INDICES[name]["range"]
    return lo + np.asarray(scaled, dtype=np.float32) * (hi - lo)


def scale_vf(name: str, value) -> np.ndarray:
    lo, hi = VF_INDICES[name]["range"]
    return np.clip((np.asarray(value, dtype=np.float32) - lo) / (hi - lo), 0.0, 1.0)


class Predictor:
    def __init__(self, model: LoadedModel | str, device: str = "auto", batch_size: int | None = None,
                 bf16: bool | None = None):
        self.device = select_device(device)
        self.model = load_model(model, self.device) if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__") \
            else model
        self.model.network.to(self.device).eval()
        if not self.model.preprocess.is_3d:
            self.model.network.to(memory_format=torch.channels_last)
        self._variant = VARIANTS[self.model.architecture]
        self.batch_size = batch_size or (64 if self.device.type == "cuda" else 8)
        # bf16 autocast only where it is fast and close to fp32: CUDA. On CPUs without native bf16
        # it measured 4x slower than fp32.
        self.bf16 = (self.device.type == "cuda") if bf16 is None else bf16

    # -- checks -----------------------------------------------------------------------------
    def check(self, volume: OctVolume) -> None:
        meta = self.model.meta
        if volume.scan_pattern not in meta.get("scan_patterns", ["volume"]):
            raise ScanNotSupported(
                f"The model '{self.model.name}' was trained on {', '.join(meta.get('scan_patterns', ['volume']))} "
                f"scans; this is a {volume.scan_pattern} scan, so it is shown but not analysed.")
        if volume.n_bscans < int(meta.get("min_bscans", 1)):
            raise ScanNotSupported(f"The model needs at least {meta['min_bscans']} B-scans; this scan has "
                                   f"{volume.n_bscans}.")

    # -- running ----------------------------------------------------------------------------
    def _forward(self, x: torch.Tensor) -> dict:
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            return self.model.network(x)

    def predict(self, volume: OctVolume, first: int | None = None,
                on_batch: Callable[[BatchResult], None] | None = None,
                progress: Callable[[int, int], None] | None = None,
                cancel: threading.Event | Callable[[], bool] | None = None) -> Prediction:
        self.check(volume)
        started = time.perf_counter()
        is_cancelled = (cancel.is_set if isinstance(cancel, threading.Event) else cancel) or (lambda: False)
        pre = self.model.preprocess
        vf_names = self.model.vf_names
        n = volume.n_bscans
        display = pre.display_tensor(volume, self.device)
        lo, hi = pre.intensity_range(display)

        if pre.is_3d:
            if is_cancelled():
                raise Cancelled()
            out = self._forward(pre.assemble_volumes(pre.resample_volume(display, lo, hi)[None]))
            prob = float(torch.sigmoid(out["logit"].float())[0])
            cam3d = out["cam"].float()[0].cpu().numpy()  # (d, h, w) -> one map per B-scan, stride-aware
            along = cell_weights(cam3d.shape[0], n, pre.volume_shape[0], self._variant.cam_stride[0],
                                 self._variant.cam_offset[0])
            cam = np.einsum("nd,dhw->nhw", along, cam3d).astype(np.float32)
            probs = np.full(n, prob, np.float32)
            result = BatchResult(np.arange(n), probs, {}, cam)
            if on_batch:
                on_batch(result)
            if progress:
                progress(n, n)
            return self._finish(probs, {}, cam, started, ("3-D model: one probability for the whole volume",))

        order = np.arange(n)
        batches = []
        if first is not None and 0 <= first < n:
            order = np.concatenate([[first], np.delete(order, first)])
            batches.append(order[:1])
            order = order[1:]
        batches += [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]

        probs = np.full(n, np.nan, np.float32)
        vf_scaled = np.full((n, len(vf_names)), np.nan, np.float32)
        cam = None
        done = 0
        # each B-scan is resized once, although it is a neighbour in up to three inputs
        resized = torch.empty((n, pre.size, pre.size), dtype=torch.uint8, device=self.device)
        have = np.zeros(n, bool)
        for idx in batches:
            if is_cancelled():
                raise Cancelled()
            indices = torch.as_tensor(idx, device=self.device)
            rows = pre.neighbours(indices, n)
            needed = np.unique(rows.cpu().numpy())
            missing = needed[~have[needed]]
            if len(missing):
                missing_t = torch.as_tensor(missing, device=self.device)
                resized[missing_t] = pre.resize_bscans(display[missing_t], lo, hi)
                have[missing] = True
            out = self._forward(pre.assemble(resized, rows))
            p = torch.sigmoid(out["logit"].float()).cpu().numpy()
            v = out["vf"].float().cpu().numpy()
            c = out["cam"].float().cpu().numpy()
            if cam is None:
                cam = np.zeros((n, *c.shape[1:]), np.float32)
            probs[idx], vf_scaled[idx], cam[idx] = p, v, c
            done += len(idx)
            if on_batch:
                on_batch(BatchResult(idx, p, {name: unscale_vf(name, v[:, j]) for j, name in enumerate(vf_names)}, c))
            if progress:
                progress(done, n)
        bscan_vf = {name: unscale_vf(name, vf_scaled[:, j]) for j, name in enumerate(vf_names)}
        return self._finish(probs, bscan_vf, cam, started)

    def _finish(self, probs, bscan_vf, cam, started, notes=()) -> Prediction:
        meta = self.model.meta
        pre = self.model.preprocess
        v = self._variant
        geometry = dict(cam_input_size=tuple(pre.volume_shape[1:]) if pre.is_3d else (pre.size, pre.size),
                        cam_stride=tuple(float(s) for s in v.cam_stride[-2:]),
                        cam_offset=tuple(float(o) for o in v.cam_offset[-2:]))
        synthetic = bool(meta.get("synthetic_data", False))
        if synthetic:
            notes = (*notes, "model trained on SYNTHETIC data: not clinically valid")
        return Prediction(
            bscan_probability=probs, bscan_vf=bscan_vf, cam=cam,
            probability=float(np.mean(probs)),  # volume ("image") level = mean of B-scans
            vf={k: float(np.mean(v)) for k, v in bscan_vf.items()},
            threshold=float(meta.get("threshold", 0.5)), model_name=self.model.name,
            synthetic_model=synthetic, device=str(self.device), seconds=time.perf_counter() - started,
            notes=tuple(notes), **geometry)
