"""Structure analysis in the main window: measured RNFL and disc for every scan, and the quality gate
that stands before the network.

Why a module of its own: the segmentation takes up to ~1.5 s on a cube, so it runs on worker
threads of its own (never the GUI thread, and never one of the analysis pool's two threads, so it
cannot be starved by the analysis that waits for it). Every new scan submits two jobs: the gate's
verdict (``octviewer.structure.gate``: the quality check on a thinned copy of a cube, ~0.2 s for a
Cirrus cube) and the whole measurement (``measure``). A request for an older scan that has not
started is cancelled, one that is running finishes and its result is dropped (a report is applied
only while ``window.state.volume`` is still the same object).

The quality gate: the network analysis goes through ``GatedWorkers``, which hands the analysis
worker a ``GatedPredictor``: it waits for the gate's verdict, then refuses the scan
(``ScanNotSupported`` with the reasons in words) or runs the network, so a noise volume is never
shown a probability. The gate can be switched off for one session (Analysis menu), never
persistently.

Why the whole measurement waits until no analysis runs: on a 2-core machine it and the network
fought for the cores (torch's two threads stall whenever another thread takes one), and the
probability waited for both: 2.7 s more than the network alone, where the gate first costs 0.2 s
(docs/benchmarks.md). The structure panel fills in after the result. The whole measurement
assesses the scan again at full resolution; in the rare case that it refuses a scan the gate
passed, the result shown is withdrawn with the reasons.
"""

from __future__ import annotations

import threading
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, Signal

from .page import NO_REPORT, enface_layers

#: what the structure panel says between a scan's arrival and its report (which follows the result)
MEASURING = "Measuring RNFL and optic disc… (after the network's result)"

#: ILM, RNFL outer boundary, Bruch's membrane: colours of the lines and the legend on the B-scan
SEGMENTATION_LINES = (("ilm", "ILM", "#ff5252"), ("rnfl", "RNFL outer boundary", "#ffd740"),
                      ("bm", "Bruch's membrane", "#40c4ff"))


def refusal_text(quality) -> str:
    """What the results panel says instead of a probability (plain text)."""
    reasons = "; ".join(quality.reasons) or "no reason given"
    return (f"Not analysed: the scan failed the quality check ({quality.signal_text}): {reasons}. "
            "No probability is given for a scan the network cannot read.")


def _verdict(future: Future, user_cancelled):
    """The gate's Quality once known; raises Cancelled (the user, or a newer scan) or
    ScanNotSupported (the check itself failed)."""
    from octviewer.model import Cancelled, ScanNotSupported

    while True:
        if user_cancelled():
            raise Cancelled()
        try:
            return future.result(timeout=0.05)[0]
        except FutureTimeout:
            continue
        except CancelledError:  # replaced by a newer scan: this analysis is not wanted either
            raise Cancelled() from None
        except Exception as exc:  # no verdict, no analysis
            raise ScanNotSupported(f"Not analysed: the quality check could not run "
                                   f"({type(exc).__name__}: {exc}).") from exc


def _result(future: Future | None):
    """A finished job's result; None while it runs, or when it was cancelled or failed."""
    if future is None or not future.done() or future.cancelled() or future.exception() is not None:
        return None
    return future.result()


class GatedPredictor:
    """A Predictor behind the quality gate: ``predict`` waits for the gate's verdict on the volume
    (about 0.2 s for a Cirrus cube), then refuses the scan with the reasons or runs the network.
    Everything else is the wrapped predictor's.

    Why one after the other and not side by side: on 2 cores torch's two threads stall whenever
    another thread takes a core, so the gate beside the network cost as much as the gate first
    (docs/benchmarks.md), and nothing has to be held back this way."""

    def __init__(self, predictor, structure: StructureController):
        self._predictor = predictor
        self._structure = structure

    def __getattr__(self, name):
        return getattr(self._predictor, name)

    def predict(self, volume, *args, cancel: threading.Event | None = None, **kwargs):
        from octviewer.model import ScanNotSupported

        if self._structure.gate_enabled:
            user_cancelled = cancel.is_set if cancel is not None else (lambda: False)
            quality = _verdict(self._structure.gate_for(volume), user_cancelled)
            refused = quality if not quality.ok else self._structure.full_refusal(volume)
            if refused is not None:
                raise ScanNotSupported(refusal_text(refused))
        return self._predictor.predict(volume, *args, cancel=cancel, **kwargs)


class GatedWorkers:
    """The window's Workers, with every analysis going through the gate (what the controller is given)."""

    def __init__(self, workers, structure: StructureController):
        self._workers = workers
        self._structure = structure

    def __getattr__(self, name):
        return getattr(self._workers, name)

    def analyse(self, generation, predictor, volume, *args, **kwargs):
        return self._workers.analyse(generation, GatedPredictor(predictor, self._structure), volume, *args, **kwargs)


class _Signals(QObject):
    measured = Signal(object, object)  # volume, StructureReport
    failed = Signal(object, str)  # volume, message


class StructureController(QObject):
    """Owns the structure worker, the panel, the B-scan lines and the en-face maps of one window."""

    ready = Signal(object)  # StructureReport of the scan on screen (or None when there is none)

    def __init__(self, window, panel):
        super().__init__(window)
        self.window = window
        self.panel = panel
        self.source = "vendor"  # segmentation: the file's own when it has one, else ours
        self.gate_enabled = True
        self.show_thickness = False
        self.show_deviation = False
        self.report = None  # the report of the scan on screen
        self._gate_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gate")
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="structure")
        self._lock = threading.Lock()
        self._gates: dict[int, tuple[object, str, Future]] = {}  # id(volume) -> (volume, source, Quality future)
        self._futures: dict[int, tuple[object, str, Future]] = {}  # id(volume) -> (volume, source, report future)
        self._signals = _Signals()
        self._signals.measured.connect(self._on_measured)
        self._signals.failed.connect(self._on_failed)
        self._build_overlays()
        window.state.events.scan.connect(self._on_scan)
        window.state.events.frames.connect(self._on_frames)
        window.state.events.index.connect(self._draw_lines)
        window.state.events.display.connect(self._draw_lines)

    # -- the worker ----------------------------------------------------------------------------
    def gate_for(self, volume) -> Future:
        """The gate's verdict on ``volume`` with the current segmentation source, as (Quality,
        Segmentation of the whole scan or None); submitted if new. Thread-safe (the analysis worker
        calls it)."""
        return self._submit(self._gates, self._gate_executor, self._gate, volume)

    def future_for(self, volume) -> Future:
        """The whole measurement (a StructureReport) of ``volume`` with the current segmentation
        source; submitted if new. Thread-safe."""
        return self._submit(self._futures, self._executor, self._measure, volume)

    def measuring(self) -> bool:
        """True while the whole measurement of the scan on screen is pending or running."""
        future = self._current(self._futures, self.window.state.volume)
        return future is not None and not future.done()

    def full_refusal(self, volume):
        """The full measurement's Quality when it is known and has refused ``volume``, else None."""
        report = _result(self._current(self._futures, volume))
        return report.quality if report is not None and not report.quality.ok else None

    def _gate_passed(self, volume) -> bool:
        verdict = _result(self._current(self._gates, volume))
        return verdict is not None and verdict[0].ok

    def _current(self, jobs: dict, volume, source: str | None = None) -> Future | None:
        """The job of ``volume`` in ``jobs`` with ``source`` (default: the current one), if any."""
        with self._lock:
            entry = jobs.get(id(volume))
        wanted = self.source if source is None else source
        return entry[2] if entry is not None and entry[0] is volume and entry[1] == wanted else None

    def _submit(self, jobs: dict, executor, work, volume) -> Future:
        with self._lock:
            entry = jobs.get(id(volume))
            if entry is not None and entry[0] is volume and entry[1] == self.source:
                return entry[2]
            for _, _, old in jobs.values():
                old.cancel()  # not started yet: never runs; running: its result is dropped
            jobs.clear()
            future = executor.submit(work, volume, self.source)
            jobs[id(volume)] = (volume, self.source, future)
            return future

    @staticmethod
    def _gate(volume, source):
        """The verdict, plus the segmentation when the gate judged the whole scan (a circle, a cube
        already as sparse as the gate's grid, a refusal): the measurement then reuses it."""
        from octviewer.structure import gate

        quality, judged, seg = gate(volume, source)
        return quality, (seg if judged is volume else None)

    def _measure(self, volume, source):
        from octviewer.structure import measure

        try:
            verdict, seg = self.gate_for(volume).result()  # done by now, or soon: it is the quicker job
        except Exception:
            verdict, seg = None, None  # measure checks again and says what fails
        # after the network: on 2 cores the two side by side held the result back by seconds
        while not self.window.workers.wait_idle(0.1):
            if not self._is_current(volume, source):
                raise CancelledError()  # a newer scan: not wanted any more
        try:
            report = measure(volume, segmentation=seg, source=source, verdict=verdict)
        except Exception as exc:
            self._emit(self._signals.failed, volume, f"structure analysis failed: {type(exc).__name__}: {exc}")
            raise
        if self._is_current(volume, source):  # not replaced by a newer scan or another segmentation source meanwhile
            self._emit(self._signals.measured, volume, report)
        return report

    def _is_current(self, volume, source) -> bool:
        return self._current(self._futures, volume, source) is not None

    @staticmethod
    def _emit(signal, *args) -> None:
        try:
            signal.emit(*args)
        except RuntimeError:  # the window closed while we measured
            pass

    def shutdown(self) -> None:
        with self._lock:
            for jobs in (self._gates, self._futures):
                for _, _, future in jobs.values():
                    future.cancel()
                jobs.clear()  # a measurement waiting for the network gives up
        self._gate_executor.shutdown(wait=False, cancel_futures=True)
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- scan on screen ------------------------------------------------------------------------
    def _on_scan(self) -> None:
        self.report = None
        volume = self.window.state.volume
        self.panel.show_report(None, MEASURING if volume is not None else NO_REPORT)
        self._show(None)
        # a scan still being decoded (progressive reading) has empty B-scans: measuring it would
        # judge half a scan; it is measured when its last B-scan lands (``_on_frames``)
        if volume is not None and self.window.state.complete:
            self.gate_for(volume)  # first: the network's result waits for it
            # the same scan shown again (a failed switch rolled back to it): its report is ready
            report = _result(self.future_for(volume))
            if report is not None:
                self._on_measured(volume, report)

    def _on_frames(self, indices) -> None:
        if indices is None:  # every B-scan of the scan on screen is in
            self._on_scan()

    def _on_measured(self, volume, report) -> None:
        if volume is not self.window.state.volume:
            return  # a scan the user has left
        self.report = report
        self.panel.show_report(report)
        self._show(report)
        if not report.quality.ok and self.gate_enabled and self._gate_passed(volume):
            # the thinned copy passed, the full resolution refused: no result stands for this scan
            # (a scan the gate refused is refused by the analysis worker itself)
            self.window.controller.withdraw(refusal_text(report.quality))
        self.ready.emit(report)

    def _on_failed(self, volume, message: str) -> None:
        if volume is self.window.state.volume:
            self.panel.show_report(None, f"Not measured: {message}")
            self.window.statusBar().showMessage(message, 10000)
            self.ready.emit(None)

    def set_source(self, source: str) -> None:
        """Vendor or own segmentation; the scan on screen is measured again."""
        if source not in ("vendor", "own") or source == self.source:
            return
        self.source = source
        self._on_scan()

    def set_gate(self, enabled: bool) -> None:
        self.gate_enabled = bool(enabled)

    # -- B-scan lines and en-face maps ---------------------------------------------------------
    def _build_overlays(self) -> None:
        view = self.window.bscan.view
        self.lines = {}
        self.legend = pg.LegendItem(offset=(10, 30), labelTextColor="w", brush=pg.mkBrush(0, 0, 0, 150))
        self.legend.setParentItem(view)
        self.legend.setZValue(40)
        for key, label, colour in SEGMENTATION_LINES:
            curve = pg.PlotCurveItem(pen=pg.mkPen(colour, width=1.5))
            curve.setZValue(21)
            view.addItem(curve)
            self.lines[key] = curve
            self.legend.addItem(curve, label)
        enface = self.window.enface
        self.thickness_item = pg.ImageItem(axisOrder="row-major")
        self.deviation_item = pg.ImageItem(axisOrder="row-major")
        self.thickness_item.setZValue(6)  # over the CAM (5): the user asked for this map
        self.deviation_item.setZValue(7)
        for item in (self.thickness_item, self.deviation_item):
            enface.addItem(item)
            item.hide()
        self.map_legend = pg.LegendItem(offset=(5, 5), labelTextColor="w", brush=pg.mkBrush(0, 0, 0, 170))
        self.map_legend.setParentItem(enface.getPlotItem().getViewBox())
        self.map_legend.setZValue(40)
        self._show(None)

    def _map_legend(self, thickness: bool, deviation: bool) -> None:
        """What the en-face map colours mean (the thickness scale in um, the deviation classes);
        shown only while a map is."""
        from .page import CLASS_COLOURS, THICKNESS_RANGE_UM

        self.map_legend.clear()
        entries = []
        if thickness:
            lo, hi = THICKNESS_RANGE_UM
            lut = pg.colormap.get("viridis").getLookupTable(nPts=256)
            for value in (hi, (lo + hi) / 2, lo):
                rgb = lut[int(round((value - lo) / (hi - lo) * 255))]
                entries.append((pg.mkBrush(*rgb[:3]), f"RNFL {value:.0f} µm" + (" or more" if value == hi else "")))
        if deviation:
            for name, text in (("borderline", "borderline (1st-5th percentile)"),
                               ("outside", "outside (below the 1st)")):
                c = CLASS_COLOURS[name]
                entries.append((pg.mkBrush(c.red(), c.green(), c.blue()), text))
        for brush, text in entries:
            sample = pg.ScatterPlotItem(symbol="s", size=10, brush=brush, pen=None)
            self.map_legend.addItem(sample, text)
        self.map_legend.setVisible(bool(entries))

    def _segmentation(self):
        report = self.report
        return None if report is None else report.segmentation

    def _show(self, report) -> None:
        seg = None if report is None else report.segmentation
        bscan = self.window.bscan
        # the file's own ILM/RNFL/BM lines are drawn by our overlay (with a legend), not twice
        bscan.hidden_layers = {"ILM", "RNFL", "BM"} if seg is not None else set()
        if seg is not None:  # the legend says whose lines these are
            whose = " (file's own)" if seg.source == "vendor" else " (octviewer)"
            self.legend.clear()
            for key, label, _ in SEGMENTATION_LINES:
                self.legend.addItem(self.lines[key], label + whose)
        self._draw_lines()
        bscan.draw()  # applies hidden_layers to the file's own lines
        layers = enface_layers(report)
        if layers is None or self.window.state.volume is None or self.window.state.volume.localizer is not None:
            self.thickness_item.hide()
            self.deviation_item.hide()
            self._map_legend(False, False)
            self._sync_enface_map("")
            if ((self.show_thickness or self.show_deviation) and self.window.state.volume is not None
                    and not self.measuring()):
                # the menu item is checked: say why nothing is drawn (it looked like a broken switch)
                self.window.statusBar().showMessage("The RNFL maps need a measured optic-disc cube; this scan has "
                                                    "none (a circle or line scan, or not measured).", 8000)
            return
        self._map_legend(self.show_thickness, self.show_deviation)
        self._sync_enface_map("thickness" if self.show_thickness else "deviation" if self.show_deviation else "")
        rect = self.window.enface.image.mapRectToParent(self.window.enface.image.boundingRect())
        for item, rgba, visible in ((self.thickness_item, layers[0], self.show_thickness),
                                    (self.deviation_item, layers[1], self.show_deviation)):
            item.setImage(np.ascontiguousarray(rgba), levels=(0, 255))
            item.setRect(rect)
            item.setOpacity(0.75)
            item.setVisible(visible)

    def _draw_lines(self) -> None:
        s = self.window.state
        seg = self._segmentation()
        visible = seg is not None and s.volume is not None and s.settings.show_layers
        self.legend.setVisible(visible)
        for key, curve in self.lines.items():
            if not visible or s.index >= seg.ilm.shape[0]:
                curve.setData([], [])
                curve.hide()
                continue
            sx, sy = self.window.bscan._scale
            depth = np.asarray(getattr(seg, key)[s.index], np.float64)
            x = np.arange(depth.size) * sx
            ok = np.isfinite(depth)
            curve.setData(x[ok], depth[ok] * sy)
            curve.show()

    def set_thickness_map(self, visible: bool) -> None:
        """One en-face map at a time: the thickness scale's yellow and the deviation map's
        "borderline" yellow meant two things when both were on (as on Cirrus, one shows at a time)."""
        self.show_thickness = bool(visible)
        if visible:
            self._uncheck("rnfl_deviation")
            self.show_deviation = False
        self._show(self.report)

    def set_deviation_map(self, visible: bool) -> None:
        self.show_deviation = bool(visible)
        if visible:
            self._uncheck("rnfl_map")
            self.show_thickness = False
        self._show(self.report)

    def _sync_enface_map(self, shown: str) -> None:
        """Tell the display which RNFL map is on screen, so the en-face CAM steps aside while one is."""
        if self.window.state.settings.enface_map != shown:
            self.window.state.update_settings(enface_map=shown)

    def _uncheck(self, name: str) -> None:
        action = getattr(self.window, "menu_actions", {}).get(name)
        if action is not None and action.isChecked():
            action.setChecked(False)  # setChecked does not trigger the action, so no recursion

    # -- report --------------------------------------------------------------------------------
    def report_for_screen(self):
        """The report of the scan on screen, when one has arrived."""
        return self.report if self.window.state.volume is not None else None
