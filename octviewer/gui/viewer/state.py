"""What the viewer shows, as plain Python: no Qt, so controller tests run without a screen.

The views (B-scan, en-face, curve, results, structure panel and overlays) subscribe to the events
here and redraw from the state; they never reach into each other or into the window, and the
exports read only the state. A new scan replaces every per-scan field at once (``apply_scan``): a
view that cannot draw it makes the whole switch roll back, so the window is never left half on the
old eye and half on the new one.

What is on screen includes the analysis choices (``options``: the quality gate switch and the
segmentation source, as the pipeline takes them), the RNFL map shown on the en-face
(``settings.enface_map``, the one place that choice lives) and the structure report of the scan.
The options apply to the next analysis; the result on screen carries the settings it was made with
(``made_with``), which is what its exports name (attack run 13, A13-11).

A scan can be shown while its B-scans are still being decoded: ``loaded`` marks the ones decoded
so far, ``frames_landed`` adds to it, ``finish_loading`` makes the scan complete. Views draw a
B-scan only once it is loaded (a "decoding…" placeholder otherwise); nothing is analysed before the
scan is complete.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from octviewer.pipeline import ScanOptions

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
        self.frames = Event()  # (indices | None,): these B-scans were decoded (None: all, the scan is complete)
        self.structure = Event()  # the structure report of the scan on screen (or its note) changed
        self.options = Event()  # the analysis options changed (gate switch, segmentation source)


@dataclass
class DisplaySettings:
    #: off until a clinician turns it on (C): the map is 5 x 5 cells over a B-scan, and on an eye the network
    #: calls glaucoma every cell is hot, so it painted the whole B-scan red, vitreous included, over the layers
    #: the clinician reads (eighth walk-through); P per B-scan is on the curve either way
    show_cam: bool = False
    show_layers: bool = True
    cam_opacity: float = 0.5
    axial_mode: str = "fit"
    levels: tuple[float, float] = (0.0, 255.0)
    #: an RNFL map shown on the en-face ("thickness", "deviation" or ""): the en-face CAM steps
    #: aside while one is, since their reds (CAM "towards glaucoma", map "outside normal") would mix
    enface_map: str = ""


#: what the structure panel says while a scan's measurement is on its way (it follows the result)
MEASURING = "Measuring RNFL and optic disc… (after the network's result)"
#: the reason of a scan whose analysis Esc stopped (``ViewerController.on_cancelled``)
CANCELLED = "Analysis cancelled."


ENFACE_MAPS = ("", "thickness", "deviation")


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
    loaded: np.ndarray | None = None  # (n,) bool: B-scans decoded so far; None once all are
    loading_stopped: bool = False  # the decoding was cancelled: the B-scans not loaded never will be
    structure: object = None  # octviewer.structure.StructureReport of this scan, once measured
    structure_note: str = ""  # what is said in its place while there is none ("" : nothing to say)
    # the analysis settings (``pipeline.scan.analysis_settings``'s words) the prediction and structure on screen
    # were made with; None: not known. ``running``: those of the analysis under way, which its results take
    made_with: tuple[str, str] | None = None
    running: tuple[str, str] | None = None


class ViewerState:
    def __init__(self):
        self.events = Events()
        self.settings = DisplaySettings()
        self._scan = _Scan()
        self.options = ScanOptions()
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
    structure = property(lambda self: self._scan.structure)
    structure_note = property(lambda self: self._scan.structure_note)
    made_with = property(lambda self: self._scan.made_with)

    @property
    def map_shown(self) -> str:
        """The RNFL map drawn on the en-face: the one chosen, when the scan has a measured cube to draw
        it from (a circle scan, a scan with a localizer or one not measured has none)."""
        report, volume = self.structure, self.volume
        if (self.settings.enface_map and report is not None and volume is not None and volume.localizer is None
                and getattr(report, "thickness_map_um", None) is not None):
            return self.settings.enface_map
        return ""

    @property
    def refused(self) -> bool:
        """True when the quality check refused the scan on screen: no line is drawn on it, neither
        octviewer's nor the file's own (a HEYEX XML of noise showed its 11 file lines while refused:
        only the overlay asked this, the B-scan view drew the file's lines regardless, fifth walk-through).
        A line scan is not refused: no structure is measured on it, by its pattern, whatever its quality, and its
        file's own lines are drawn (they were hidden as on a refused scan, walk-through H65, W24)."""
        report = self.structure
        return report is not None and not report.quality.ok and report.scan_pattern in ("circle", "volume")

    @property
    def measuring(self) -> bool:
        """True while the structure measurement of the scan on screen is on its way."""
        return self.volume is not None and self.structure is None and self.structure_note == MEASURING

    @property
    def n_bscans(self) -> int:
        return 0 if self.volume is None else self.volume.n_bscans

    @property
    def complete(self) -> bool:
        """True when every B-scan of the scan on screen is decoded (or there is no scan)."""
        return self._scan.loaded is None

    @property
    def loaded_count(self) -> int:
        loaded = self._scan.loaded
        return self.n_bscans if loaded is None else int(loaded.sum())

    def is_loaded(self, i: int) -> bool:
        """True when B-scan ``i`` holds decoded pixels and may be drawn."""
        loaded = self._scan.loaded
        return self.volume is not None and (loaded is None or bool(loaded[i]))

    def cam_visible_for(self, i: int) -> bool:
        """True when B-scan ``i`` has a CAM to draw and the user wants CAMs shown."""
        return (self.settings.show_cam and self.cams is not None and self.probs is not None
                and bool(np.isfinite(self.probs[i])))

    # -- a new scan -------------------------------------------------------------------------
    def apply_scan(self, volume, display: np.ndarray | None = None, loaded: np.ndarray | None = None,
                   index: int | None = None) -> None:
        """Show ``volume`` (all views reset), or raise ScanDisplayError and keep the previous scan.

        ``loaded``: the B-scans decoded so far when the rest is still arriving (the display rows of
        the others are not image data yet); None when the scan is complete. ``index``: the B-scan
        shown first (default the middle one)."""
        previous = self._scan
        try:
            display = volume.display() if display is None else display
            if display.ndim != 3 or display.shape[0] != volume.n_bscans or display.dtype != np.uint8:
                raise ValueError(f"display data {display.shape} {display.dtype} does not match the volume")
            n = volume.n_bscans
            if loaded is not None:
                loaded = np.asarray(loaded, bool).copy()
                if loaded.shape != (n,):
                    raise ValueError(f"a decoded-B-scan mask of shape {loaded.shape} for {n} B-scans")
                loaded = None if loaded.all() else loaded
            index = n // 2 if index is None else int(np.clip(index, 0, n - 1))
            self._scan = _Scan(volume=volume, display=display, index=index, loaded=loaded,
                               probs=np.full(n, np.nan, np.float32), structure_note=MEASURING)
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

    def frames_landed(self, indices) -> None:
        """More B-scans were decoded: views draw them now."""
        loaded = self._scan.loaded
        if loaded is None:
            return
        indices = [int(i) for i in indices]
        loaded[indices] = True
        self.events.frames.emit(indices)

    def finish_loading(self) -> None:
        """Every B-scan is decoded: the scan is complete (and may be analysed)."""
        if self._scan.loaded is None:
            return
        self._scan.loaded = None
        self.events.frames.emit(None)

    def stop_loading(self) -> None:
        """The decoding was cancelled: the B-scans not decoded yet will never arrive, so views say
        "not loaded" rather than "decoding…" (which promised pixels that never came)."""
        if self._scan.loaded is None:
            return
        self._scan.loading_stopped = True
        self.events.index.emit()  # the B-scan on screen is drawn again, saying so

    @property
    def loading_stopped(self) -> bool:
        """True when the decoding of the scan on screen was cancelled before every B-scan came."""
        return self._scan.loading_stopped

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
    def begin_analysis(self, cam_geometry: dict | None = None, network: bool = True) -> None:
        """A new analysis of the scan on screen: its previous result and report go."""
        self._scan = dataclasses.replace(self._scan, prediction=None, cams=None, reason=None,
                                         probs=np.full(self.n_bscans, np.nan, np.float32),
                                         cam_geometry=dict(cam_geometry or DEFAULT_CAM_GEOMETRY),
                                         structure=None, structure_note=MEASURING, made_with=None)
        self.analysing = network
        self.events.analysis.emit()
        self.events.structure.emit()

    def analysis_started(self, options) -> None:
        """An analysis of the scan on screen runs with ``options`` (a ``pipeline.ScanOptions``): the results it
        reports were made with their settings, whatever Analysis > Quality check or View > Segmentation say by
        the time they are exported (those apply to the next analysis)."""
        from octviewer.pipeline.scan import analysis_settings

        self._scan.running = analysis_settings(options)

    def analysis_ended(self, settings) -> None:
        """The pipeline's last word: the settings its result says it was made with (``ScanResult.settings``;
        None: not known, and then no export names any)."""
        self._scan.made_with = None if settings is None else tuple(settings)

    def set_structure(self, report, note: str = "") -> None:
        """The structure report of the scan on screen, or (``report`` None) why there is none."""
        made_with = self._scan.running if report is not None else self._scan.made_with
        self._scan = dataclasses.replace(self._scan, structure=report, structure_note=note, made_with=made_with)
        self.events.structure.emit()

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
                                         cams=np.asarray(prediction.cam, np.float32), cam_geometry=geometry,
                                         made_with=self._scan.running)
        self.analysing = False
        self.events.analysis.emit()

    def set_no_result(self, reason: str) -> None:
        """Refused, cancelled or failed: no prediction, no curve, no CAM; the reason is shown."""
        self._scan = dataclasses.replace(self._scan, prediction=None, cams=None, reason=reason,
                                         probs=np.full(self.n_bscans, np.nan, np.float32))
        self.analysing = False
        self.events.analysis.emit()

    # -- analysis options -------------------------------------------------------------------
    def update_options(self, **changes) -> None:
        """The quality gate switch or the segmentation source (they apply to the next analysis)."""
        new = dataclasses.replace(self.options, **changes)
        if new != self.options:
            self.options = new
            self.events.options.emit()

    # -- display settings -------------------------------------------------------------------
    def update_settings(self, **changes) -> None:
        new = dataclasses.replace(self.settings, **changes)
        if new.axial_mode not in AXIAL_MODES:
            raise ValueError(f"axial mode must be one of {AXIAL_MODES}")
        if new.enface_map not in ENFACE_MAPS:
            raise ValueError(f"en-face map must be one of {ENFACE_MAPS}")
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

