"""What happens to one scan, decided in one place: ``analyse_scan``.

The viewer, the study/OU/trend views and the batch commands all call this, so they cannot disagree
on the rule:

1. the quality gate on the thinned view of the scan (``octviewer.structure.gate``, ~0.2 s for a
   Cirrus cube; its refusals are confirmed on the full scan, so a refusal is the whole scan's);
2. a refused scan gets no probability, only its structure report with the reasons;
3. the network (each batch streamed to ``on_batch``, the finished Prediction to ``on_prediction``);
4. the whole measurement at full resolution (``on_structure``);
5. if that refuses what the gate passed, the prediction is withdrawn: no result may stand for a
   scan the full-resolution check refuses.

The gate stands before the network only: a structure-only run (``network=False``) is judged by the
whole measurement, which assesses the full scan anyway.

With a results store, a whole result held for the scan, model and options is returned as it is (one
stored before results carried their ``settings`` is made again: a report must name the settings of
its figures); otherwise the network's output held for the scan and model (whatever the options: they decide
whether the network runs, never what it gives) stands in for step 3, so switching the segmentation
source runs the gate and the measurement only. The gate still decides first: a scan it refuses gets
no probability, stored or not.

Why one after the other and not side by side: on 2 cores torch's two threads stall whenever
another thread takes a core, so the gate beside the network cost as much as the gate first, and the
measurement beside the network held the probability back by seconds (docs/benchmarks.md).

Qt-free; torch is never imported here (the predictor brings its own).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..core import BatchResult, Cancelled, OctVolume, Prediction

SEGMENTATION_SOURCES = ("vendor", "own")


@dataclass(frozen=True)
class ScanOptions:
    gate: bool = True  # the quality gate (the user's switch, Analysis > Quality check)
    segmentation: str = "vendor"  # "vendor" (the file's own lines where present) | "own"
    network: bool = True  # run the model (False: structure only, octviewer-measure)
    measure: bool = True  # run the whole structure measurement

    def __post_init__(self):
        if self.segmentation not in SEGMENTATION_SOURCES:
            raise ValueError(f"segmentation must be one of {SEGMENTATION_SOURCES}, not {self.segmentation!r}")


@dataclass(frozen=True)
class ScanResult:
    quality: object | None  # octviewer.structure.Quality: the whole scan's when measured, else the gate's
    prediction: Prediction | None  # None when refused, not run, or withdrawn
    structure: object | None  # octviewer.structure.StructureReport (None when not run or failed)
    reasons: tuple[str, ...]  # why there is no prediction, in words (empty when there is one)
    withdrawn: bool = False  # the gate passed the thinned scan, the full scan refused it
    from_store: bool = False  # read from the results store, nothing recomputed
    structure_error: str = ""  # why the measurement failed, when it did (the prediction may stand)
    #: the analysis settings it was made with, in ``scan.analysis_settings``'s words (quality gate, segmentation
    #: source); None: not known (a result remembered before results carried them). A report names the result's
    #: own settings, never the window's ticks, which apply to the next analysis (attack run 13, A13-11)
    settings: tuple[str, str] | None = None

    @property
    def refused(self) -> bool:
        """The quality check refused the scan (at the gate, or withdrawn after the full measurement)."""
        return (self.prediction is None and self.quality is not None and not self.quality.ok and bool(self.reasons)
                and tuple(self.reasons) == tuple(self.quality.reasons))  # not: the model does not read such scans

    def refusal_text(self) -> str:
        """What a reader is told instead of a probability (plain text)."""
        if self.refused:
            return refusal_text(self.quality)
        return "; ".join(self.reasons)


def refusal_text(quality) -> str:
    """What the results panel says instead of a probability for a scan the quality check refused."""
    reasons = "; ".join(quality.reasons) or "no reason given"
    return (f"Not analysed: the scan failed the quality check ({quality.signal_text}): {reasons}. "
            "No probability is given for a scan the network cannot read.")


def _stop_if(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled()


def _call(callback: Callable | None, *args) -> None:
    if callback is not None:
        callback(*args)


def _replay(result: ScanResult, *, on_quality, on_batch, on_prediction, on_structure, progress) -> None:
    """Call the callbacks with a stored result, so a caller's code path is the same either way."""
    if result.quality is not None:
        _call(on_quality, result.quality)
    if result.prediction is not None:
        _replay_network(result.prediction, on_batch, progress)
        _call(on_prediction, result.prediction)
    if result.structure is not None:
        _call(on_structure, result.structure)


def _replay_network(p: Prediction, on_batch, progress) -> None:
    """A stored prediction's batches, as the network would have reported them (all in one)."""
    n = p.n_bscans
    _call(on_batch, BatchResult(np.arange(n), p.bscan_probability, dict(p.bscan_vf), p.cam))
    _call(progress, n, n)


def analysis_settings(options: ScanOptions) -> tuple[str, str]:
    """(the quality gate's, the segmentation source's) words of the ``settings`` cell: the switches a user
    sets that change a scan's figures. An identified PDF report names them too, so ``octviewer-pacs send
    --pdf`` files it only beside an SR analysed alike (``pacs.results.report_settings``, attack run 13, A13-11)."""
    # "vendor" is a preference (the file's own lines where it has them): each row's segmentation_used
    # column says whose lines it was measured on; "vendor segmentation" alone read as if every row had them
    wanted = "vendor segmentation where the file has it (else own)" if options.segmentation == "vendor" else \
        f"{options.segmentation} segmentation"
    return f"quality gate {'on' if options.gate else 'off'}", wanted


def analyse_scan(volume: OctVolume, predictor, options: ScanOptions = ScanOptions(), *, store=None,
                 cancel: threading.Event | None = None, first: int | None = None,
                 on_quality: Callable | None = None, on_batch: Callable | None = None,
                 on_prediction: Callable | None = None, on_structure: Callable | None = None,
                 progress: Callable[[int, int], None] | None = None) -> ScanResult:
    """The gate, the network, the whole measurement, in that order (see the module docstring).

    ``predictor`` (an ``octviewer.model.Predictor``) may be None when ``options.network`` is False;
    with the network asked for and no predictor, the result says so in ``reasons``. ``first`` is
    the B-scan the network runs first (the one on screen). ``cancel`` stops the work between stages
    and inside the network (``octviewer.core.Cancelled``). Exceptions other than a refusal (a model
    giving NaN, a reader bug) propagate: callers report them as failures, never as a result.
    With ``store``, a result already held for this scan, model and options is returned
    (``from_store=True``) after the callbacks are called with it; a new one is stored. A network
    output held for this scan and model is used instead of running the network again.
    """
    from ..structure import gate, measure

    callbacks = dict(on_quality=on_quality, on_batch=on_batch, on_prediction=on_prediction,
                     on_structure=on_structure, progress=progress)
    _stop_if(cancel)
    key = network_key = None
    if store is not None:
        key, network_key = store.keys(volume, predictor if options.network else None, options)
        held = store.get(key)
        if held is not None and held.settings is not None:  # one that does not say its settings is made again
            _replay(held, **callbacks)
            return dataclasses.replace(held, from_store=True)

    source = options.segmentation
    run_network = options.network and predictor is not None
    verdict = seg = None
    if options.gate and run_network:
        try:
            verdict, judged, seg = gate(volume, source)
        except Exception as exc:  # no verdict, no analysis
            reason = f"the quality check could not run ({type(exc).__name__}: {exc})"
            return _finish(store, key, None, ScanResult(None, None, None, (reason,)), options, keep=False)
        if judged is not volume:
            seg = None  # the thinned copy's lines are not the scan's
        _call(on_quality, verdict)
        _stop_if(cancel)
        if not verdict.ok:
            structure, error = _measured(measure, volume, seg, source, verdict) if options.measure else (None, "")
            if structure is not None:
                _call(on_structure, structure)
            # a scan the model does not read at all (a line scan) is told so, not that it failed a quality
            # check: its B-scan may be perfect (walk-through); the structure report keeps the gate's reasons
            unread = _not_read(volume, predictor) if volume.scan_pattern not in ("volume", "circle") else ()
            reasons = unread or tuple(verdict.reasons)
            return _finish(store, key, None, ScanResult(verdict, None, structure, reasons, structure_error=error),
                           options)

    prediction, reasons = None, ()
    if not options.network:
        reasons = ("the network was not run (structure only)",)
    elif predictor is None:
        reasons = ("no model is loaded",)
    else:
        prediction = store.get_prediction(network_key) if network_key is not None else None
        if prediction is not None:
            _replay_network(prediction, on_batch, progress)
        else:
            prediction, reasons = _run_network(volume, predictor, first, on_batch, progress, cancel)
            if prediction is not None and network_key is not None:
                store.put_prediction(network_key, prediction)
        if prediction is not None:
            _call(on_prediction, prediction)

    structure, error = None, ""
    if options.measure:
        _stop_if(cancel)
        structure, error = _measured(measure, volume, seg, source, verdict)
        _stop_if(cancel)
        if structure is not None:
            _call(on_structure, structure)
    quality = structure.quality if structure is not None else verdict
    withdrawn = False
    if (options.gate and prediction is not None and structure is not None and not structure.quality.ok):
        # the thinned copy passed, the full resolution refused: no result stands for this scan
        prediction, reasons, withdrawn = None, tuple(structure.quality.reasons), True
    return _finish(store, key, network_key, ScanResult(quality, prediction, structure, reasons, withdrawn=withdrawn,
                                                       structure_error=error), options)


def _not_read(volume, predictor) -> tuple[str, ...]:
    """(why the model does not read this kind of scan,) or () when it does."""
    from ..model import ScanNotSupported

    try:
        predictor.check(volume)
    except ScanNotSupported as exc:
        return (str(exc),)
    return ()


def _run_network(volume, predictor, first, on_batch, progress, cancel) -> tuple[Prediction | None, tuple[str, ...]]:
    """(the network's Prediction, ()) or (None, why the model does not read this scan)."""
    from ..model import ScanNotSupported

    try:
        predictor.check(volume)
        return predictor.predict(volume, first=first, on_batch=on_batch, progress=progress, cancel=cancel), ()
    except ScanNotSupported as exc:
        return None, (str(exc),)


def _measured(measure, volume, seg, source, verdict):
    """(StructureReport, "") or (None, why it failed): a failed measurement leaves the prediction standing."""
    try:
        return measure(volume, segmentation=seg, source=source, verdict=verdict), ""
    except Exception as exc:
        return None, f"structure analysis failed: {type(exc).__name__}: {exc}"


def _finish(store, key, network_key, result: ScanResult, options: ScanOptions, keep: bool = True) -> ScanResult:
    """Store a finished result (its prediction under ``network_key``), marked with the settings of
    ``options`` it was made with; one that failed part way (a check or a measurement that raised) is
    not kept, so the next opening tries again."""
    result = dataclasses.replace(result, settings=analysis_settings(options))
    if store is not None and key is not None and keep and not result.structure_error:
        store.put(key, result, network_key)
    return result
