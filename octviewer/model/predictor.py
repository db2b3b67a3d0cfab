"""Predictor: OctVolume in, Prediction out, batched, streaming, cancellable, Qt-free.

The B-scan the reader is looking at is analysed first, alone, so its probability and CAM arrive
within one network call; the rest follow in batches, each streamed through ``on_batch``. CAMs come
out of the same forward pass at feature-map size (7 x 7): no backward pass, a tiny copy back.

What the model file says is applied here and nowhere else: VF scaling (``vf_scaling`` lo/hi per
index), calibration (Platt on the aggregated volume probability; the same monotone map on the
B-scan probabilities and, as an affine map of logits, on the CAM cells), aggregation and the
threshold. A non-finite output is an error (``InvalidOutput``), never a decision.

A Predictor is immutable towards its caller: it works on its own copy of the network on its
device, so the ``LoadedModel`` it was given (and any other Predictor built from it) is untouched.

GPU path (issue 16): the raw uint8 cube goes to the device once, in chunks through a reused pinned
staging buffer; its intensity range is taken on the device (no synchronisation) and the whole
volume is resized in one call. Full batches replay a CUDA graph of the network
(captured on first use; one launch instead of some hundred kernel launches per batch); outputs stay
on the device until the end, or are copied back one batch behind through pinned buffers when the
caller streams them (the first requested B-scan at once). No other per-batch synchronisation.
On the CPU each batch resizes only its new B-scans, so the first requested B-scan waits for no
other.

Precision (``precision.py``): bf16 autocast on CUDA and on CPUs that do bf16 in hardware, exact
fp32 elsewhere and whenever asked (``precision="fp32"``, the Device menu's "CPU (exact fp32)"); the
classifier and its CAM stay in fp32 either way.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
import warnings
from collections.abc import Callable

import numpy as np
import torch

from ..core import VF_INDICES, BatchResult, Cancelled, OctVolume, Prediction
from .cam import cell_weights
from .meta import V1_VF_SCALING, evaluation_caveat, vf_baseline_caveat
from .model_file import LoadedModel, load_model
from .networks import VARIANTS
from .precision import device_label, resolve_precision, split_choice

STAGING_CHUNK_BYTES = 8 << 20
#: A B-scan logit beyond this means the classifier no longer depends on the scan (see ``_check_saturation``).
SATURATED_LOGIT = 40.0

#: The shapes an optic-disc OCT has, generously: Cirrus 200 x 1024 x 200, Spectralis 97-193 x 496 x
#: 512-1536 and circle scans 1 x 496 x 768-1536, Topcon 128-256 x 885 x 512, the Zenodo cubes 64 x 128
#: x 64. A valid DICOM of 10000 x 16 x 16 pixels kept the network busy for minutes with the quality
#: gate off (attack run 5, F3); the model refuses it from its shape before any work.
SCAN_SHAPE_MAX = {"B-scans": 2048, "rows": 4096, "A-scans": 4096}
#: How the note of a VF estimate clipped to its physical range begins (the CSVs carry it in ``notice``).
VF_CLIPPED = "VF estimate clipped to the physical range"
log = logging.getLogger(__name__)


class ScanNotSupported(Exception):
    """The model was not made for this kind of scan; the reason is shown to the reader."""


class InvalidOutput(RuntimeError):
    """The network produced NaN or infinite outputs: a broken model file, never a decision."""


def select_device(preference: str = "auto") -> torch.device:
    """CUDA, then Apple MPS, then CPU; or exactly what was asked for, if available."""
    if preference in ("auto", None, ""):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(preference)
    if device.type not in ("cpu", "cuda", "mps"):  # "meta" was taken and every scan failed (attack run 3 F12)
        raise RuntimeError(f"device {preference!r} is none of auto, cpu, cuda, cuda:N, mps")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) is not None
                                     and torch.backends.mps.is_available()):
        raise RuntimeError("MPS was requested but this computer has no Apple GPU")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("CUDA was requested but no CUDA GPU is available")
    return device


def unscale_vf(name: str, scaled, scaling=None) -> np.ndarray:
    """Head output in (0, 1) -> clinical value, with the model file's ``VfScale`` (default: format 1's).

    A trainer widens lo/hi past the training targets (so they avoid the sigmoid's asymptotes), which
    lets a head reach values no perimeter reports (VFI 101 %): the result is clipped to the index's
    physical range.
    """
    lo, hi = VF_INDICES[name]["range"] if name in VF_INDICES else (-np.inf, np.inf)
    return np.clip((scaling or V1_VF_SCALING[name]).to_clinical(scaled), lo, hi)


def clip_vf(name: str, values) -> np.ndarray:
    """Clinical VF values clipped to the index's physical range (VFI 0-100 %, MD -35 to +5 dB, PSD 0-20 dB)."""
    lo, hi = VF_INDICES[name]["range"] if name in VF_INDICES else (-np.inf, np.inf)
    return np.clip(np.asarray(values, np.float32), lo, hi)


def clipped_vf(bscan_vf: dict, aggregate) -> tuple[dict, str]:
    """B-scan VF estimates clipped to their physical ranges, and a note naming each index whose volume
    estimate had to be clipped (the value the model gave and the range), or "".

    The volume estimate is aggregated from the clipped B-scans, so it never leaves the range; the note
    says when the unclipped aggregate did, because then the model's head reaches past what a perimeter
    reports and the shown value sits at the limit only by the clip (VFI 100.9 % on a noise cube).
    """
    out, flagged = {}, []
    for name, values in bscan_vf.items():
        out[name] = clip_vf(name, values)
        given = float(aggregate(values))
        spec = VF_INDICES.get(name)
        if spec and not spec["range"][0] <= given <= spec["range"][1]:
            lo, hi = spec["range"]
            flagged.append(f"{spec['label']} {given:.1f} {spec['unit']} (range {lo:g} to {hi:g})")
    note = (f"{VF_CLIPPED}: the model gave " + ", ".join(flagged)
            + "; the value shown is the limit") if flagged else ""
    return out, note


def scale_vf(name: str, value, scaling=None) -> np.ndarray:
    """Clinical value -> training target in [0, 1], with a ``VfScale`` (default: format 1's)."""
    return (scaling or V1_VF_SCALING[name]).to_unit(value)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, np.float64), 1e-7, 1 - 1e-7)
    return np.log(p) - np.log1p(-p)


class Predictor:
    def __init__(self, model: LoadedModel | str, device: str = "auto", batch_size: int | None = None,
                 bf16: bool | None = None, staging: str | None = None, graphs: bool | None = None,
                 precision: str = "auto"):
        device, precision = split_choice(device, precision)  # "cpu-fp32": the Device menu's exact fp32
        self.device = select_device(device)
        if isinstance(model, LoadedModel):
            self.model = model
            network = copy.deepcopy(model.network)  # never move or change the caller's module
        else:
            self.model = load_model(model, "cpu")
            network = self.model.network
            # the LoadedModel we made keeps its CPU module; ours is a copy on our device
            network = copy.deepcopy(network)
        self.network = network.to(self.device).eval()
        for p in self.network.parameters():
            p.requires_grad_(False)
        if not self.model.preprocess.is_3d:
            self.network.to(memory_format=torch.channels_last)
        self._variant = VARIANTS[self.model.architecture]
        # bf16 autocast where the hardware does bf16 natively (CUDA, CPUs with AVX512_BF16/AMX), exact
        # fp32 elsewhere or when asked: see precision.py. ``bf16=`` (older callers) overrides it.
        if bf16 is not None:
            precision = "bf16" if bf16 else "fp32"
        self.precision = resolve_precision(precision, self.device)
        if precision == "auto" and self.device.type == "cpu" and self.model.preprocess.is_3d:
            self.precision = "fp32"  # bf16 measured on the 2D networks only
        self.bf16 = self.precision == "bf16"
        if precision == "auto" and self.bf16 and self.device.type == "cpu":
            log.info("this CPU does bf16 in hardware: the network runs in bf16 (precision='fp32' for exact fp32)")
        self.batch_size = batch_size or (64 if self.device.type == "cuda" else 8)
        # host-to-device path for the raw cube: "pinned" (reused page-locked buffer) on CUDA, "none"
        self.staging = staging or ("pinned" if self.device.type == "cuda" else "none")
        self._pinned: torch.Tensor | None = None
        self._staging_free: torch.cuda.Event | None = None
        self._staging_lock = threading.Lock()
        # CUDA graphs of the network for full batches (2D models on CUDA): captured on first use
        self.graphs = (self.device.type == "cuda" and not self.model.preprocess.is_3d) if graphs is None else graphs
        self._graphs: dict[tuple, tuple] = {}
        self._graph_lock = threading.Lock()

    @property
    def choice(self) -> str:
        """Device and precision as one string that builds the same Predictor again ("cpu-fp32")."""
        return f"{self.device}-{self.precision}"

    @property
    def label(self) -> str:
        """The device and precision in the viewer's words: "CPU (bf16)", "CPU (exact fp32)"."""
        return device_label(self.device, self.precision)

    @property
    def cam_geometry(self) -> dict:
        """Where the CAM cells sit on the network input: input (h, w) px, stride and offset per axis.
        Every Prediction carries it; a viewer drawing batches before the Prediction reads it here."""
        pre, v = self.model.meta.preprocess, self._variant
        return {"input_size": tuple(pre.volume_shape[1:]) if pre.is_3d else (pre.size, pre.size),
                "stride": tuple(float(s) for s in v.cam_stride[-2:]),
                "offset": tuple(float(o) for o in v.cam_offset[-2:])}

    # -- checks -----------------------------------------------------------------------------
    def check(self, volume: OctVolume) -> None:
        meta = self.model.meta
        if volume.scan_pattern not in meta.scan_patterns:
            kind = {"line": "a line scan (a single B-scan)", "volume": "a volume scan"}.get(
                volume.scan_pattern, f"a {volume.scan_pattern} scan")
            needs = " or ".join({"volume": "a volume scan (optic-disc cube)"}.get(p, f"a {p} scan")
                                for p in meta.scan_patterns)
            raise ScanNotSupported(
                f"Not analysed: this is {kind}; the glaucoma estimate needs {needs} (the scan pattern the model "
                f"'{self.model.name}' was trained on). The scan is shown, but no probability is given for it.")
        if volume.n_bscans < meta.min_bscans:
            raise ScanNotSupported(f"The model needs at least {meta.min_bscans} B-scans; this scan has "
                                   f"{volume.n_bscans}.")
        for (what, most), size in zip(SCAN_SHAPE_MAX.items(), volume.shape):
            if size > most:
                n, depth, width = volume.shape
                raise ScanNotSupported(f"Not analysed: the scan is {n} B-scans of {depth} rows x {width} A-scans; an "
                                       f"optic-disc OCT has at most {most} {what}. No probability is given for it.")

    # -- running ----------------------------------------------------------------------------
    def _forward(self, x: torch.Tensor, cache: bool = True) -> dict:
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16,
                                                    cache_enabled=cache):
            return self.network(x)

    def _network(self, x: torch.Tensor) -> dict:
        """The network on one batch: a CUDA graph's replay for full batches, eager otherwise.

        A graph replays the captured kernels with one launch, so a batch no longer waits on Python
        launching each of its kernels. Inputs go into the graph's own buffer and outputs are cloned
        out of it under a lock, so two analyses on one Predictor cannot see each other's. Where
        capture fails (an operation that cannot be captured), the Predictor stays eager.
        """
        if not (self.graphs and x.is_cuda and x.shape[0] == self.batch_size):
            return self._forward(x)
        with self._graph_lock:
            entry = self._graphs.get(tuple(x.shape))
            if entry is None:
                try:
                    entry = self._graphs[tuple(x.shape)] = self._capture(x)
                except Exception as exc:  # noqa: BLE001 - any capture failure means: run eagerly
                    log.warning("CUDA graph capture failed (%s: %s); running the network eagerly",
                                type(exc).__name__, exc)
                    self.graphs = False
                    return self._forward(x)
            graph, static_x, static_out = entry
            static_x.copy_(x)
            graph.replay()
            return {k: None if v is None else v.clone() for k, v in static_out.items()}

    def _capture(self, x: torch.Tensor) -> tuple:
        """Warm up on a side stream (as torch.cuda.graphs asks), then capture one forward pass.
        Autocast's weight cache is off while capturing: the casts become part of the graph."""
        static_x = x.clone()
        compute = torch.cuda.current_stream(self.device)
        side = torch.cuda.Stream(self.device)
        side.wait_stream(compute)
        with torch.cuda.stream(side):
            for _ in range(2):
                self._forward(static_x, cache=False)
        compute.wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):
            static_out = self._forward(static_x, cache=False)
        return graph, static_x, static_out

    def to_device(self, volume: OctVolume) -> torch.Tensor:
        """The volume's uint8 display cube on the device, in one host-to-device copy.

        On CUDA through a reused pinned staging buffer, in chunks of about 8 MB: the host copy into
        it is multi-threaded (torch's CPU copy) and each chunk's DMA runs while the host fills the
        next, where a copy from pageable memory is staged by the driver on one thread. The buffer
        is reused once its last copy has left.
        """
        display = np.ascontiguousarray(volume.display())
        with warnings.catch_warnings():  # read-only arrays are fine: the tensor is never written
            warnings.simplefilter("ignore", UserWarning)
            src = torch.from_numpy(display)
        if self.staging != "pinned":
            return src.to(self.device)
        # inference mode here too: the pinned buffer is made under predict()'s inference mode, and
        # an inference tensor cannot be written outside it (a direct call, e.g. a benchmark, failed)
        with self._staging_lock, torch.inference_mode():  # analyses on one Predictor take turns here
            if self._staging_free is not None:
                self._staging_free.synchronize()  # the previous volume's copy has left the buffer
            if self._pinned is None or self._pinned.numel() < src.numel():
                self._pinned = torch.empty(src.numel(), dtype=torch.uint8, pin_memory=True)
            staged = self._pinned[:src.numel()].view(src.shape)
            out = torch.empty(src.shape, dtype=torch.uint8, device=self.device)
            step = max(1, STAGING_CHUNK_BYTES // max(1, src[0].numel()))
            for a in range(0, len(src), step):  # the DMA of a chunk overlaps the host copy of the next
                staged[a:a + step].copy_(src[a:a + step])
                out[a:a + step].copy_(staged[a:a + step], non_blocking=True)
            self._staging_free = torch.cuda.Event()
            self._staging_free.record(torch.cuda.current_stream(self.device))
        return out

    def resized_on_cuda(self, volume: OctVolume) -> torch.Tensor:
        """All B-scans resized and scaled on the GPU, (n, size, size) uint8: the cube's copy, then
        one resize call for the whole volume (on an H200 0.63 ms, against 1.35 ms for resize and
        assembly done batch by batch). Resizing each chunk on arrival, overlapped with the rest of
        the copy on a second stream, measured slower (2.43 against 2.14 ms for copy + resize)."""
        pre = self.model.preprocess
        display = self.to_device(volume)
        lo, hi = pre.intensity_range_tensor(display)
        return pre.resize_bscans(display, lo, hi)

    def predict(self, volume: OctVolume, first: int | None = None,
                on_batch: Callable[[BatchResult], None] | None = None,
                progress: Callable[[int, int], None] | None = None,
                cancel: threading.Event | Callable[[], bool] | None = None) -> Prediction:
        self.check(volume)
        started = time.perf_counter()
        is_cancelled = (cancel.is_set if isinstance(cancel, threading.Event) else cancel) or (lambda: False)
        if is_cancelled():
            raise Cancelled()
        with torch.inference_mode():
            if self.model.preprocess.is_3d:
                return self._predict_3d(volume, on_batch, progress, started)
            return self._predict_2d(volume, first, on_batch, progress, is_cancelled, started)

    def _predict_3d(self, volume, on_batch, progress, started) -> Prediction:
        pre = self.model.preprocess
        n = volume.n_bscans
        display = self.to_device(volume)
        lo, hi = pre.intensity_range_tensor(display)
        out = self._forward(pre.assemble_volumes(pre.resample_volume(display, lo, hi)[None]))
        logit = float(out["logit"].float()[0])
        cam3d = out["cam"].float()[0].cpu().numpy()  # (d, h, w) -> one map per B-scan, stride-aware
        along = cell_weights(cam3d.shape[0], n, pre.volume_shape[0], self._variant.cam_stride[0],
                             self._variant.cam_offset[0])
        cam = np.einsum("nd,dhw->nhw", along, cam3d).astype(np.float32)
        raw = np.full(n, 1.0 / (1.0 + np.exp(-logit)), np.float32)
        self._check_finite(raw, {}, cam, np.arange(n))
        self._check_saturation(np.full((1, 1), logit))
        probs, cam = self._calibrated(raw, cam)
        if on_batch:
            on_batch(BatchResult(np.arange(n), probs, {}, cam))
        if progress:
            progress(n, n)
        return self._finish(raw, probs, {}, cam, started, ("3-D model: one probability for the whole volume",))

    def _predict_2d(self, volume, first, on_batch, progress, is_cancelled, started) -> Prediction:
        pre = self.model.preprocess
        vf_names = self.model.vf_names
        n = volume.n_bscans
        dev = self.device
        cuda = dev.type == "cuda"

        order = np.arange(n)
        batches = []
        if first is not None and 0 <= first < n:
            order = np.concatenate([[first], np.delete(order, first)])
            batches.append((0, 1))
        start = len(batches)
        batches += [(i, min(n, i + self.batch_size)) for i in range(start, n, self.batch_size)]

        compute = torch.cuda.current_stream(dev) if cuda else None
        if cuda:  # every B-scan resized in one call; nothing left to resize per batch
            resized = self.resized_on_cuda(volume)
            have = np.ones(n, bool)
        else:
            display = self.to_device(volume)
            lo, hi = pre.intensity_range_tensor(display)
            resized = torch.empty((n, pre.size, pre.size), dtype=torch.uint8, device=dev)
            have = np.zeros(n, bool)

        # the order made on the device: a copy from a NumPy array would wait for the cube's copy
        arange = torch.arange(n, device=dev)
        order_d = arange if start == 0 else torch.cat([arange[first:first + 1], arange[:first], arange[first + 1:]])
        rows_all = pre.neighbours(arange, n)
        probs_d = torch.empty(n, dtype=torch.float32, device=dev)
        vf_d = torch.empty((n, len(vf_names)), dtype=torch.float32, device=dev)
        cam_d = None
        pending = None  # (indices, host tensors, event) of the batch being copied back
        done = 0

        def deliver(item):
            idx, (p, v, c), ev = item
            if ev is not None:
                ev.synchronize()
            p, v, c = p.numpy().copy(), v.numpy().copy(), c.numpy().copy()
            self._check_finite(p, {"vf": v}, c, idx)
            cp, cc = self._calibrated(p, c)
            on_batch(BatchResult(idx, cp.astype(np.float32),
                                 {name: clip_vf(name, self.model.meta.vf_scaling[name].to_clinical(v[:, j]))
                                  for j, name in enumerate(vf_names)}, cc))

        for bi, (a, b) in enumerate(batches):
            if is_cancelled():
                raise Cancelled()
            idx = order[a:b]
            span = np.arange(max(0, int(idx.min()) - 1), min(n, int(idx.max()) + 2))
            missing = span[~have[span]]
            if len(missing):  # contiguous except around `first`: resize each contiguous run
                runs = np.split(missing, np.flatnonzero(np.diff(missing) != 1) + 1)
                for r in runs:
                    resized[r[0]:r[-1] + 1] = pre.resize_bscans(display[r[0]:r[-1] + 1], lo, hi)
                have[missing] = True
            sel = order_d[a:b]
            out = self._network(pre.assemble(resized, rows_all[sel]))
            p = torch.sigmoid(out["logit"].float())
            v = out["vf"].float()
            c = out["cam"].float()
            if cam_d is None:
                cam_d = torch.empty((n, *c.shape[1:]), dtype=torch.float32, device=dev)
            probs_d[sel], vf_d[sel], cam_d[sel] = p, v, c
            done += len(idx)
            if on_batch:
                if cuda:
                    host = tuple(torch.empty(t.shape, dtype=t.dtype, pin_memory=True).copy_(t, non_blocking=True)
                                 for t in (p, v, c))
                    ev = torch.cuda.Event()
                    ev.record(compute)
                    item = (idx, host, ev)
                    if bi == 0 and start:
                        deliver(item)  # the requested B-scan: the reader waits for it, no lag
                    else:
                        if pending is not None:
                            deliver(pending)
                        pending = item
                else:
                    deliver((idx, (p, v, c), None))
            if progress:
                progress(done, n)
        if pending is not None:
            deliver(pending)
        raw = probs_d.cpu().numpy()
        vf_scaled = vf_d.cpu().numpy()
        cam = cam_d.cpu().numpy()
        self._check_finite(raw, {"vf": vf_scaled}, cam, np.arange(n))
        self._check_saturation(cam)
        probs, cam = self._calibrated(raw, cam)
        bscan_vf = {name: self.model.meta.vf_scaling[name].to_clinical(vf_scaled[:, j])
                    for j, name in enumerate(vf_names)}
        return self._finish(raw, probs, bscan_vf, cam, started)

    # -- outputs ------------------------------------------------------------------------------
    def _check_finite(self, probs, others: dict, cam, idx) -> None:
        for what, arr in (("probability", probs), *others.items(), ("CAM", cam)):
            bad = ~np.isfinite(np.asarray(arr))
            if bad.any():
                row = int(np.argwhere(bad)[0][0])
                raise InvalidOutput(
                    f"model '{self.model.name}' produced a non-finite {what} for B-scan {int(idx[row]) + 1}: the "
                    "model file is corrupt or unsuitable, so no result is given")

    def _check_saturation(self, cam: np.ndarray) -> None:
        """No verdict from a classifier whose output no longer depends on the scan.

        For these networks (global average pooling, then one linear layer) a B-scan's raw logit is the
        mean of its uncalibrated CAM cells. Trained with cross-entropy and weight decay, the demo model's
        logits stay within a few units on its scans and reach -18.5 on pure noise; a logit beyond
        +-SATURATED_LOGIT (a probability 4e-18 from 0 or 1) on every B-scan comes from a bias or weight
        scale that training does not produce (fc.bias = -1e4 gives -1e4 everywhere). Such a model
        would call every eye the same; it gets InvalidOutput, never a "normal".
        """
        logits = np.asarray(cam, np.float64).reshape(len(cam), -1).mean(axis=1)
        if len(logits) and bool(np.all(np.abs(logits) > SATURATED_LOGIT)):
            raise InvalidOutput(
                f"model '{self.model.name}' gave a saturated output (raw logit {float(np.median(logits)):.3g} on "
                "every B-scan): its answer does not depend on the scan, so no result is given (the model file's "
                "weights are damaged or were edited)")

    def _calibrated(self, probs: np.ndarray, cam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """B-scan probabilities through the calibration map; CAM cells through the same affine map of
        logits, less logit(threshold): a B-scan's cells average to logit(p_calibrated) - logit(threshold),
        so red (> 0) means evidence beyond the decision threshold."""
        meta = self.model.meta
        cal = meta.calibration
        shift = float(_logit(meta.threshold))
        cells = np.asarray(cal.logit(cam), np.float64) - shift
        return cal.apply(probs).astype(np.float32), cells.astype(np.float32)

    def _finish(self, raw, probs, bscan_vf, cam, started, notes=()) -> Prediction:
        meta = self.model.meta
        raw_volume = float(np.mean(raw))  # aggregation.probability == "mean"
        volume_p = float(meta.calibration.apply(raw_volume))
        if not np.isfinite(volume_p):
            raise InvalidOutput(f"model '{self.model.name}' produced a non-finite probability: no result is given")
        if warning := self.model.trust.warning:
            notes = (warning, *notes)
        bscan_vf, clipped = clipped_vf(bscan_vf, meta.aggregation.vf_value)
        if clipped:
            notes = (*notes, clipped)
        if meta.synthetic_data:
            notes = (*notes, "model trained on SYNTHETIC data: not clinically valid")
        if caveat := evaluation_caveat(meta):
            notes = (*notes, caveat)
        if bscan_vf and (caveat := vf_baseline_caveat(meta)):
            notes = (*notes, caveat)
        geometry = self.cam_geometry
        return Prediction(
            bscan_probability=probs, bscan_vf=bscan_vf, cam=cam,
            probability=volume_p, raw_probability=raw_volume,
            vf={k: meta.aggregation.vf_value(x) for k, x in bscan_vf.items()},
            threshold=float(meta.threshold), model_name=self.model.name,
            synthetic_model=meta.synthetic_data, device=str(self.device), precision=self.precision,
            seconds=time.perf_counter() - started,
            notes=tuple(notes),
            cam_input_size=geometry["input_size"], cam_stride=geometry["stride"], cam_offset=geometry["offset"])


__all__ = ["Cancelled", "InvalidOutput", "Predictor", "ScanNotSupported", "VF_CLIPPED", "VF_INDICES", "clip_vf",
           "scale_vf", "select_device", "unscale_vf"]
