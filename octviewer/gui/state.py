"""What the viewer shows, as plain Python: no Qt, so controller tests run without a screen.

The views (B-scan, en-face, curve, results) subscribe to the events here and redraw from the state;
they never reach into each other or into the window. A new scan replaces every per-scan field at
once (``apply_scan``): a view that cannot draw it makes the whole switch roll back, so the window is
never left half on the old eye and half on the new one (issue 11 #7).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

#: How the axial (depth) axis of a B-scan is stretched on screen. "physical": true micrometres
#: (a Cirrus B-scan is a thin strip); "pixel": one axial pixel per lateral pixel; "fit": the
#: B-scan fills the view, as clinical viewers show it.
AXIAL_MODES = ("fit", "physical", "pixel")

#: Contrast presets as (low, high) grey levels of the uint8 display data.
LEVEL_PRESETS = {"full range": (0.0, 255.0), "bright tissue": (30.0, 255.0), "high contrast": (50.0, 200.0),
                 "dim": (0.0, 180.0)}


class Event:
    """A list of callbacks; an exception in one reaches the emitter (which decides what to undo)."""

    def __init__(self):
        self._callbacks = []

    def connect(self, callback) -> None:
        self._callbacks.append(callback)

    def disconnect(self, callback) -> None:
        self._callbacks.remove(callback)

    def emit(self, *args) -> None:
        for callback in list(self._callbacks):
            callback(*args)


class Events:
    def __init__(self):
        self.scan = Event()  # a new scan (or none): every view redraws from scratch
        self.index = Event()  # the current B-scan changed
        self.analysis = Event()  # per-B-scan probabilities, CAMs or the prediction changed
        self.display = Event()  # a display setting changed (CAM visible, opacity, levels, axial mode…)
        self.busy = Event()  # (what: str | None, done: int, total: int): progress; None = idle
        self.message = Event()  # a short status line
        self.load_failed = Event()  # (message,): a file could not be opened or shown; the old scan stays
        self.settled = Event()  # nothing more will happen for the scan on screen


@dataclass
class DisplaySettings:
    show_cam: bool = True
    show_layers: bool = True
    cam_opacity: float = 0.5
    axial_mode: str = "fit"
    levels: tuple[float, float] = (0.0, 255.0)


#: ResNet18 layer 4 on a 224 px input (octviewer.model.cam); replaced by the model's own geometry
DEFAULT_CAM_GEOMETRY = {"input_size": (224, 224), "stride": (32.0, 32.0), "offset": (0.0, 0.0)}


class ScanDisplayError(Exception):
    """A scan was read but could not be shown; the previous scan stays on screen."""


@dataclass
class _Scan:
    """Every field that belongs to one scan: replaced together, never one by one."""

    volume: object = None
    display: np.ndarray | None = None
    index: int = 0
    prediction: object = None
    probs: np.ndarray | None = None  # (n,) per-B-scan probability, NaN where not (yet) analysed
    cams: np.ndarray | None = None  # (n, h, w) feature-cell CAMs, class-logit units
    # where the CAM cells sit on the network input (octviewer.model.cam): input (h, w) px, stride, offset
    cam_geometry: dict = dataclasses.field(default_factory=lambda: dict(DEFAULT_CAM_GEOMETRY))
    reason: str | None = None  # why there is no result (refused, cancelled, failed)


class ViewerState:
    def __init__(self):
        self.events = Events()
        self.settings = DisplaySettings()
        self._scan = _Scan()
        self.analysing = False

    # -- read access ------------------------------------------------------------------------
    volume = property(lambda self: self._scan.volume)
    display = property(lambda self: self._scan.display)
    index = property(lambda self: self._scan.index)
    prediction = property(lambda self: self._scan.prediction)
    probs = property(lambda self: self._scan.probs)
    cams = property(lambda self: self._scan.cams)
    cam_geometry = property(lambda self: self._scan.cam_geometry)
    reason = property(lambda self: self._scan.reason)

    @property
    def n_bscans(self) -> int:
        return 0 if self.volume is None else self.volume.n_bscans

    def cam_visible_for(self, i: int) -> bool:
        """True when B-scan ``i`` has a CAM to draw and the user wants CAMs shown."""
        return (self.settings.show_cam and self.cams is not None and self.probs is not None
                and bool(np.isfinite(self.probs[i])))

    # -- a new scan -------------------------------------------------------------------------
    def apply_scan(self, volume, display: np.ndarray | None = None) -> None:
        """Show ``volume`` (all views reset), or raise ScanDisplayError and keep the previous scan."""
        previous = self._scan
        try:
            display = volume.display() if display is None else display
            if display.ndim != 3 or display.shape[0] != volume.n_bscans or display.dtype != np.uint8:
                raise ValueError(f"display data {display.shape} {display.dtype} does not match the volume")
            self._scan = _Scan(volume=volume, display=display, index=volume.n_bscans // 2,
                               probs=np.full(volume.n_bscans, np.nan, np.float32))
            self.analysing = False
            self.events.scan.emit()
        except Exception as exc:
            self._scan = previous
            try:
                self.events.scan.emit()  # every view back on the previous scan
            except Exception:
                self._scan = _Scan()
                self.events.scan.emit()
            source = getattr(volume, "source", "") or "the scan"
            raise ScanDisplayError(f"{source}: cannot be shown ({type(exc).__name__}: {exc}); "
                                   "the previous scan stays open") from exc

    def clear(self) -> None:
        self._scan = _Scan()
        self.analysing = False
        self.events.scan.emit()

    # -- navigation -------------------------------------------------------------------------
    def set_index(self, i: int) -> None:
        if self.volume is None:
            return
        i = int(np.clip(i, 0, self.volume.n_bscans - 1))
        if i != self._scan.index:
            self._scan.index = i
            self.events.index.emit()

    # -- analysis ---------------------------------------------------------------------------
    def begin_analysis(self, cam_geometry: dict | None = None) -> None:
        self._scan = dataclasses.replace(self._scan, prediction=None, cams=None, reason=None,
                                         probs=np.full(self.n_bscans, np.nan, np.float32),
                                         cam_geometry=dict(cam_geometry or DEFAULT_CAM_GEOMETRY))
        self.analysing = True
        self.events.analysis.emit()

    def add_batch(self, batch) -> None:
        s = self._scan
        if s.cams is None:
            s.cams = np.zeros((self.n_bscans, *batch.cam.shape[1:]), np.float32)
        s.cams[batch.indices] = batch.cam
        s.probs[batch.indices] = batch.probability
        self.events.analysis.emit()

    def set_prediction(self, prediction) -> None:
        if prediction.n_bscans != self.n_bscans:
            raise ValueError(f"prediction for {prediction.n_bscans} B-scans, scan has {self.n_bscans}")
        geometry = {key: getattr(prediction, f"cam_{name}", self._scan.cam_geometry[key])
                    for key, name in (("input_size", "input_size"), ("stride", "stride"), ("offset", "offset"))}
        self._scan = dataclasses.replace(self._scan, prediction=prediction, reason=None,
                                         probs=np.asarray(prediction.bscan_probability, np.float32).copy(),
                                         cams=np.asarray(prediction.cam, np.float32), cam_geometry=geometry)
        self.analysing = False
        self.events.analysis.emit()

    def set_no_result(self, reason: str) -> None:
        """Refused, cancelled or failed: no prediction, no curve, no CAM; the reason is shown."""
        self._scan = dataclasses.replace(self._scan, prediction=None, cams=None, reason=reason,
                                         probs=np.full(self.n_bscans, np.nan, np.float32))
        self.analysing = False
        self.events.analysis.emit()

    # -- display settings -------------------------------------------------------------------
    def update_settings(self, **changes) -> None:
        new = dataclasses.replace(self.settings, **changes)
        if new.axial_mode not in AXIAL_MODES:
            raise ValueError(f"axial mode must be one of {AXIAL_MODES}")
        lo, hi = (float(x) for x in new.levels)
        lo, hi = float(np.clip(lo, 0, 254)), float(np.clip(hi, 1, 255))
        if hi <= lo:
            hi = min(lo + 1, 255.0)
        new = dataclasses.replace(new, levels=(lo, hi), cam_opacity=float(np.clip(new.cam_opacity, 0.05, 1.0)))
        if new != self.settings:
            self.settings = new
            self.events.display.emit()

    def adjust_contrast(self, factor: float) -> None:
        """Narrow (factor < 1, more contrast) or widen the grey window around its centre."""
        lo, hi = self.settings.levels
        centre, half = (lo + hi) / 2, max((hi - lo) / 2 * factor, 2.0)
        self.update_settings(levels=(centre - half, centre + half))

    def adjust_brightness(self, step: float) -> None:
        """Shift the grey window: a positive step makes the image brighter (window moves down)."""
        lo, hi = self.settings.levels
        shift = float(np.clip(-step, -lo, 255 - hi))
        self.update_settings(levels=(lo + shift, hi + shift))

