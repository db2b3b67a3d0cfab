"""Applies user intent and background results to the ViewerState. No Qt: tests drive it with fake
tasks and no screen.

Every background request carries its own generation number (ndv's pattern): a file read and an
analysis are told apart by which counter they carry, not by a flag, so a read error that arrives
while an analysis runs can only ever be a read error. A result whose generation is not the
current one for its kind is dropped.

An analysis is ``octviewer.pipeline.analyse_scan`` on the scan on screen with the state's options
(the quality gate, then the network, then the whole measurement): its quality verdict, batches,
prediction and structure report arrive as they are made, and its ScanResult ends it. The results
store makes a scan analysed before come back at once. Without a model the scan is measured only.

A file is read progressively: ``on_opened`` shows the scan as soon as its first B-scan
is decoded, ``on_frames`` reports the B-scans decoded since, ``on_load_done`` completes the scan
(and starts the analysis) or, on a decoding error, clears the window and says why: a half-decoded
scan never stays on screen as if it were whole. Opening another file cancels the decoding when the
new scan is ready to be shown, not before: a file that fails to open leaves the scan on screen, and
its decoding, as they were.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

from .state import CANCELLED, DEFAULT_CAM_GEOMETRY, MEASURING, ScanDisplayError, ViewerState

#: what stands in the Results and Structure panels for a scan whose decoding was cancelled
DECODING_CANCELLED = "Decoding cancelled: scan incomplete, not analysed"


def cam_geometry(predictor) -> dict:
    """Where the model's CAM cells sit on its input, for drawing batches before the Prediction
    (which carries the same geometry) arrives: the predictor's own when it says (one place),
    else the 2D default."""
    geometry = getattr(predictor, "cam_geometry", None)
    return dict(geometry) if isinstance(geometry, dict) else dict(DEFAULT_CAM_GEOMETRY)


class ViewerController:
    """``tasks`` has load(gen, path), analyse(gen, predictor, volume, first, options), cancel() and
    wait_idle(timeout_s) -> bool; it reports back through the ``on_*`` methods below: a read ends
    with ``on_loaded`` (the whole volume) or ``on_opened`` + ``on_frames``... + ``on_load_done``
    (progressive), or ``on_load_failed``; an analysis with ``on_analysed`` (its ScanResult),
    ``on_analysis_failed`` or ``on_cancelled``."""

    def __init__(self, state: ViewerState, tasks, predictor=None):
        self.state = state
        self.tasks = tasks
        self.predictor = predictor
        self._next_generation = 0
        self.load_generation = -1  # the read whose result may still be applied
        self.analysis_generation = -1  # the analysis whose results may still be applied
        self.decode_generation = -1  # the read whose B-scans are still arriving for the scan on screen
        self._decoding = None  # its ProgressiveVolume (cancel(), loaded())
        self._network_analysis = False  # the running (or last) analysis runs the network, not only the measurement
        self._remeasuring = False  # the running analysis keeps the network's result on screen (a segmentation switch)

    def _new_generation(self) -> int:
        self._next_generation += 1
        return self._next_generation

    # -- opening ----------------------------------------------------------------------------
    def open_path(self, path) -> int:
        """Read ``path`` in the background; the scan on screen, decoded or still decoding, stays
        until the new one is ready to be shown, and stays for good if the new one fails."""
        self.load_generation = self._new_generation()
        self.state.events.busy.emit(f"Reading {Path(path).name}…", 0, 0)
        self.tasks.load(self.load_generation, str(path))
        return self.load_generation

    @property
    def reading(self) -> bool:
        """True while a file asked for is being read and not yet on screen."""
        return self.load_generation != -1

    def cancel(self) -> None:
        """The status bar's Cancel and Esc: stop the read of a file not yet shown (the scan on screen
        stays), else the decoding of the scan on screen, else the analysis. A file that never arrives
        (a huge or slow one) could only be waited out before."""
        if not self.reading:
            if self.decoding:
                self.cancel_decoding()
            else:
                self.cancel_analysis()
            return
        self.load_generation = -1  # whatever the read still reports is dropped
        self.tasks.cancel_load()
        self.state.events.message.emit("Opening cancelled")
        if self.decoding:
            self._report_decoding()
        elif self.analysis_generation != -1:  # the scan on screen goes on being analysed
            self.state.events.busy.emit("Analysing" if self.state.analysing else "Measuring RNFL and optic disc", 0, 0)
        else:
            self.state.events.busy.emit(None, 0, 0)
            self.state.events.settled.emit()

    def on_loaded(self, generation: int, volume, display=None) -> None:
        if generation != self.load_generation:
            return
        self.load_generation = -1
        self._stop_decoding()
        self._stop_analysis()
        try:
            self.state.apply_scan(volume, display)
        except ScanDisplayError as exc:
            self.state.events.busy.emit(None, 0, 0)
            self.state.events.load_failed.emit(str(exc))
            self.state.events.settled.emit()
            return
        self.state.events.busy.emit(None, 0, 0)
        self.state.events.message.emit(f"Opened {Path(volume.source).name}" if volume.source else "Opened scan")
        self.analyse()

    def on_opened(self, generation: int, progressive, display) -> None:
        """The first B-scan of a progressive read is decoded: show the scan now."""
        if generation != self.load_generation:
            progressive.cancel()  # superseded: stop decoding it
            return
        self.load_generation = -1
        self._stop_decoding()
        self._stop_analysis()
        try:
            self.state.apply_scan(progressive.volume, display, loaded=progressive.loaded(),
                                  index=progressive.first_index)
        except ScanDisplayError as exc:
            progressive.cancel()
            self.state.events.busy.emit(None, 0, 0)
            self.state.events.load_failed.emit(str(exc))
            self.state.events.settled.emit()
            return
        self.decode_generation, self._decoding = generation, progressive
        self._report_decoding()

    def on_frames(self, generation: int, indices) -> None:
        if generation != self.decode_generation:
            return
        self.state.frames_landed(indices)
        if self.load_generation == -1:  # while another file is read, its "Reading" stays up
            self._report_decoding()

    def on_load_done(self, generation: int, error: str | None) -> None:
        """All B-scans decoded (analyse), or decoding failed (clear the window, say why)."""
        if generation != self.decode_generation:
            return
        self.decode_generation, self._decoding = -1, None
        state = self.state
        state.events.busy.emit(None, 0, 0)
        if error is not None:
            state.clear()
            state.events.load_failed.emit(f"{error}\nThe scan could not be read completely, so it is not shown.")
            state.events.settled.emit()
            return
        state.finish_loading()
        source = state.volume.source
        state.events.message.emit(f"Opened {Path(source).name}" if source else "Opened scan")
        self.analyse()

    def cancel_decoding(self) -> None:
        """Stop decoding the scan on screen. The B-scans decoded so far stay on screen, labelled
        incomplete and not analysed: the clinician asked to stop waiting, not to lose what is shown,
        and an incomplete scan is never analysed (its thickness and probability would be wrong).
        Opening the file again reads it whole."""
        if not self.decoding:
            return
        self._stop_decoding()
        state = self.state
        done, total = state.loaded_count, state.n_bscans
        state.stop_loading()
        state.set_no_result(DECODING_CANCELLED)
        state.set_structure(None, DECODING_CANCELLED)
        state.events.busy.emit(None, 0, 0)
        state.events.message.emit(f"Decoding cancelled: scan incomplete ({done} of {total} B-scans), not analysed")
        state.events.settled.emit()

    def close_scan(self, message: str) -> None:
        """Take the scan on screen away (its decoding and analysis stop) and say why in the status
        bar; a file being read goes on."""
        if self.state.volume is None:
            return
        self._stop_decoding()
        self._stop_analysis()
        self.state.clear()
        if not self.reading:
            self.state.events.busy.emit(None, 0, 0)
        self.state.events.message.emit(message)

    def _report_decoding(self) -> None:
        self.state.events.busy.emit("Decoding B-scans", self.state.loaded_count, self.state.n_bscans)

    def _stop_decoding(self) -> None:
        if self._decoding is not None:
            self._decoding.cancel()
        self.decode_generation, self._decoding = -1, None

    @property
    def decoding(self) -> bool:
        """True while B-scans of the scan on screen are still being decoded."""
        return self._decoding is not None

    def close(self) -> None:
        """The window closes: stop decoding (the worker's own cancel covers reads not shown yet)."""
        self._stop_decoding()

    def on_load_failed(self, generation: int, message: str) -> None:
        if generation != self.load_generation:
            return
        self.load_generation = -1
        self.state.events.load_failed.emit(message)
        if self.decoding or self.analysis_generation != -1:  # the scan on screen goes on; it settles when done
            if self.decoding:
                self._report_decoding()
            return
        self.state.events.busy.emit(None, 0, 0)
        self.state.events.settled.emit()

    # -- analysis ---------------------------------------------------------------------------
    def analyse(self, keep_result: bool = False) -> None:
        """Analyse the scan on screen (measure it only, without a model). ``keep_result``: the
        network's result on screen stands while the gate and the measurement run again (a
        segmentation switch: the network does not read the lines, its output comes from the store);
        only a gate refusing the scan takes it back (``on_analysed``)."""
        state = self.state
        if state.volume is None:
            return
        if not state.complete:  # analysis starts by itself once every B-scan is decoded
            state.events.message.emit("The scan is still being decoded; it is analysed when complete" if self.decoding
                                      else DECODING_CANCELLED + " (open the file again to read it whole)")
            return
        self._stop_analysis()
        network = self.predictor is not None
        self._remeasuring = keep_result and network and state.prediction is not None
        if self._remeasuring:
            state.set_structure(None, MEASURING)
        else:
            state.begin_analysis(cam_geometry(self.predictor) if network else None, network=network)
        self._analyse(network)

    def _analyse(self, network: bool) -> None:
        """Start the pipeline on the scan on screen; without the network it only measures."""
        state = self.state
        self._network_analysis = network
        self.analysis_generation = self._new_generation()
        if state.structure is None and state.structure_note != MEASURING:
            state.set_structure(None, MEASURING)
        if not network:
            self._remeasuring = False
        analysing = network and not self._remeasuring
        state.events.busy.emit("Analysing" if analysing else "Measuring RNFL and optic disc",
                               0, state.n_bscans if analysing else 0)
        options = dataclasses.replace(state.options, network=network)
        state.analysis_started(options)  # what its results are made with, whatever the ticks say later (A13-11)
        self.tasks.analyse(self.analysis_generation, self.predictor if network else None, state.volume,
                           state.index, options)

    def _stop_analysis(self) -> None:
        """Results of a running analysis are no longer wanted (a new scan or model)."""
        if self.analysis_generation != -1:
            self.tasks.cancel()
            self.analysis_generation = -1
            self.state.analysing = False

    def cancel_analysis(self) -> None:
        if self.analysis_generation == -1:
            return
        self.tasks.cancel()  # the task answers with on_cancelled once it has stopped

    def on_batch(self, generation: int, batch) -> None:
        if generation == self.analysis_generation:
            self.state.add_batch(batch)

    def on_progress(self, generation: int, done: int, total: int) -> None:
        if generation == self.analysis_generation and not self._remeasuring:
            self.state.events.busy.emit("Analysing", done, total)

    def on_prediction(self, generation: int, prediction) -> None:
        """The network's result, shown at once; the whole measurement follows."""
        if generation != self.analysis_generation:
            return
        try:
            self.state.set_prediction(prediction)
        except Exception as exc:
            self.state.set_no_result(f"analysis failed: {exc}")
        self.state.events.busy.emit("Measuring RNFL and optic disc", 0, 0)

    def on_structure(self, generation: int, report) -> None:
        if generation == self.analysis_generation:
            self.state.set_structure(report)

    def on_analysed(self, generation: int, result) -> None:
        """The pipeline's last word on the scan: a refusal or a withdrawal replaces any result shown."""
        if generation != self.analysis_generation:
            return
        self.analysis_generation = -1
        state = self.state
        state.events.busy.emit(None, 0, 0)
        if result.prediction is None and self._network_analysis:
            text = result.refusal_text() or "no reason given"
            said = result.quality is not None or text.startswith("Not analysed")
            state.set_no_result(text if said else f"Not analysed: {text}.")
        state.analysing = False
        if result.structure is not None:
            if state.structure is not result.structure:
                state.set_structure(result.structure)
        else:
            state.set_structure(None, f"Not measured: {result.structure_error}" if result.structure_error
                                else "Not measured.")
        state.analysis_ended(result.settings)
        state.events.settled.emit()

    def on_analysis_failed(self, generation: int, message: str) -> None:
        """The scan stays on screen; the reason goes to the results panel."""
        if generation != self.analysis_generation:
            return
        self.analysis_generation = -1
        self.state.events.busy.emit(None, 0, 0)
        self.state.set_no_result(message)
        if self.state.structure is None:
            self.state.set_structure(None, f"Not measured: {message}")
        self.state.events.settled.emit()

    def on_cancelled(self, generation: int) -> None:
        if generation != self.analysis_generation:
            return
        self.analysis_generation = -1
        self.state.events.busy.emit(None, 0, 0)
        self.state.events.message.emit("Analysis cancelled")
        if self._network_analysis:
            self.state.set_no_result(CANCELLED)
            if self.state.structure is None:  # the network was stopped: the scan is still measured
                self._analyse(network=False)
                return
        if self.state.structure is None:
            self.state.set_structure(None, "Not measured: the analysis was cancelled (Analysis > Analyse runs it "
                                           "again).")
        self.state.events.settled.emit()

    def set_segmentation(self, source: str) -> None:
        """Vendor or own segmentation: the scan on screen is analysed again with it, unless the file
        has no ILM/RNFL/BM of its own: then octviewer segments it whichever source is chosen, and a
        new analysis (minutes on a laptop) would only blank the result to give the same lines."""
        from octviewer.structure.segmentation import VENDOR_LAYERS

        if source == self.state.options.segmentation:
            return
        self.state.update_options(segmentation=source)
        volume = self.state.volume
        if volume is not None and not all(name in volume.layers for name in VENDOR_LAYERS):
            self.state.events.message.emit("This scan has no segmentation of its own: octviewer's is used "
                                           "either way (the choice applies to scans that have one)")
            return
        self.analyse(keep_result=True)

    # -- model ------------------------------------------------------------------------------
    def set_predictor(self, predictor) -> None:
        """Use another model; a shown scan is analysed again with it."""
        self._quiesce()
        self.predictor = predictor
        self.analyse()

    def set_device(self, name: str, make_predictor=None) -> None:
        """Move to another device without touching the model a worker may be using: stop and wait
        for the analysis, then build a new Predictor on a copy of the model. Raises RuntimeError
        (no such device here) with the current predictor kept."""
        if self.predictor is None:
            return
        if make_predictor is None:
            from octviewer.model import Predictor as make_predictor
        was_running = self._quiesce()
        try:
            predictor = make_predictor(copy.deepcopy(self.predictor.model), device=name)
        except Exception:
            if was_running:
                self.analyse()
            raise
        self.predictor = predictor
        if was_running:
            self.analyse()

    def _quiesce(self) -> bool:
        """Cancel the analysis and wait until its worker has let go of the model."""
        was_running = self.analysis_generation != -1
        if was_running:
            self._stop_analysis()
            self.state.events.busy.emit(None, 0, 0)
        if not self.tasks.wait_idle(30.0):
            raise RuntimeError("the running analysis did not stop within 30 s")
        return was_running
