"""The one rule for a scan (octviewer.pipeline.analyse_scan): gate on the thinned view, refusals
confirmed on the full scan, network, whole measurement, withdrawal when the full scan refuses."""

import dataclasses
import threading

import numpy as np
import pytest

from octviewer.core import BatchResult, Cancelled, OctVolume, Prediction, Spacing
from octviewer.pipeline import ScanOptions, ScanResult, analyse_scan


class CountingPredictor:
    """A stand-in for octviewer.model.Predictor that records what the pipeline asked of it."""

    def __init__(self, refuse: str | None = None):
        self.calls = []
        self.refuse = refuse

    def check(self, volume):
        from octviewer.model import ScanNotSupported

        self.calls.append("check")
        if self.refuse:
            raise ScanNotSupported(self.refuse)

    def predict(self, volume, first=None, on_batch=None, progress=None, cancel=None):
        self.calls.append(("predict", first))
        n = volume.n_bscans
        probs = np.full(n, 0.7, np.float32)
        vf = {"md": np.full(n, -3.0, np.float32)}
        cam = np.zeros((n, 7, 7), np.float32)
        if on_batch is not None:
            on_batch(BatchResult(np.arange(n), probs, vf, cam))
        if progress is not None:
            progress(n, n)
        return Prediction(bscan_probability=probs, bscan_vf=vf, cam=cam, probability=0.7, vf={"md": -3.0},
                          threshold=0.5, model_name="counting")


@pytest.fixture(scope="module")
def good_volume(tmp_path_factory):
    """A synthetic optic-disc cube the quality gate passes."""
    from octviewer import load_volume
    from octviewer.study.demo import write_demo_study

    study = write_demo_study(tmp_path_factory.mktemp("study"), patients=1, visits=1, preset="tiny", seed=7)
    return load_volume(sorted((study / "scans").rglob("*.dcm"))[0])


@pytest.fixture
def noise_volume():
    rng = np.random.default_rng(0)  # random pixels on an optic-disc cube's geometry
    return OctVolume(data=rng.integers(0, 255, (10, 256, 128), np.uint8), scan_pattern="volume", laterality="OD",
                     spacing=Spacing(bscan_mm=0.6, depth_mm=0.0039, ascan_mm=0.047), source="noise.npz")


def _recorded(volume, predictor, options=None, **kwargs):
    events = []
    result = analyse_scan(volume, predictor, options or ScanOptions(),
                          on_quality=lambda q: events.append(("quality", q.ok)),
                          on_batch=lambda b: events.append(("batch", len(b.indices))),
                          on_prediction=lambda p: events.append(("prediction", p.probability)),
                          on_structure=lambda r: events.append(("structure", r.quality.ok)), **kwargs)
    return result, events


def test_gate_then_network_then_measurement(good_volume):
    predictor = CountingPredictor()
    result, events = _recorded(good_volume, predictor, first=3)
    n = good_volume.n_bscans
    assert events == [("quality", True), ("batch", n), ("prediction", 0.7), ("structure", True)]
    assert predictor.calls == ["check", ("predict", 3)]
    assert result.prediction is not None and result.reasons == () and not result.withdrawn
    assert result.quality is result.structure.quality  # the whole scan's verdict, not the thinned view's
    assert 20 < result.structure.rnfl_global_um < 200


def test_refused_scan_never_reaches_the_network(noise_volume):
    predictor = CountingPredictor()
    result, events = _recorded(noise_volume, predictor)
    assert predictor.calls == []
    assert result.prediction is None and result.refused and not result.withdrawn
    assert events[0] == ("quality", False) and ("structure", False) in events
    assert any("signal too weak" in r for r in result.reasons)
    assert "failed the quality check" in result.refusal_text()


def test_gate_off_analyses_anyway(noise_volume):
    predictor = CountingPredictor()
    result, events = _recorded(noise_volume, predictor, ScanOptions(gate=False))
    assert ("predict", None) in predictor.calls and result.prediction is not None
    assert not result.structure.quality.ok and not result.withdrawn  # measured and shown refused, not withdrawn
    assert events[0][0] == "batch"  # no gate verdict came first


def test_full_scan_refusal_withdraws_the_prediction(good_volume, monkeypatch):
    import octviewer.structure as structure

    real_measure = structure.measure

    def refusing_measure(volume, **kwargs):
        report = real_measure(volume, **kwargs)
        refused = dataclasses.replace(report.quality, ok=False, reasons=("blinks in 4 B-scans",))
        return dataclasses.replace(report, quality=refused)

    monkeypatch.setattr(structure, "measure", refusing_measure)
    result, events = _recorded(good_volume, CountingPredictor())
    assert ("prediction", 0.7) in events  # it was shown while the measurement ran...
    assert result.prediction is None and result.withdrawn and result.refused  # ...and is taken back
    assert result.reasons == ("blinks in 4 B-scans",)


def test_refusals_are_confirmed_on_the_full_scan(good_volume, monkeypatch):
    """The gate returns the whole scan's verdict for a refusal: the pipeline does not re-judge the
    thinned copy, and its measurement reuses the whole scan's segmentation."""
    import octviewer.structure as structure

    seen = {}

    def measure(volume, segmentation=None, source="vendor", verdict=None):
        seen.update(segmentation=segmentation, verdict=verdict, volume=volume)
        return structure.analysis.measure(volume, segmentation=segmentation, source=source, verdict=verdict)

    monkeypatch.setattr(structure, "measure", measure)
    analyse_scan(good_volume, CountingPredictor())
    assert seen["volume"] is good_volume and seen["verdict"].ok
    assert seen["segmentation"] is not None  # a tiny cube is judged whole: its lines are reused


def test_model_that_does_not_take_the_scan_still_measures(good_volume):
    result, events = _recorded(good_volume, CountingPredictor(refuse="The model needs at least 64 B-scans"))
    assert result.prediction is None and result.reasons == ("The model needs at least 64 B-scans",)
    assert result.structure is not None and not result.refused


def test_structure_only_runs_no_gate_and_needs_no_predictor(good_volume, monkeypatch):
    import octviewer.structure as structure

    monkeypatch.setattr(structure, "gate", lambda *a, **k: pytest.fail("the gate stands before the network only"))
    result = analyse_scan(good_volume, None, ScanOptions(network=False))
    assert result.prediction is None and result.structure is not None and result.structure.quality.ok


def test_cancel_raises_the_one_cancelled(good_volume):
    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):
        analyse_scan(good_volume, CountingPredictor(), cancel=stop)

    stop = threading.Event()
    with pytest.raises(Cancelled):  # set during the network: the measurement never starts
        analyse_scan(good_volume, CountingPredictor(), cancel=stop, on_prediction=lambda p: stop.set(),
                     on_structure=lambda r: pytest.fail("measured after cancel"))


def test_failed_measurement_leaves_the_prediction(good_volume, monkeypatch):
    import octviewer.structure as structure

    def broken(*a, **k):
        raise RuntimeError("segmentation exploded")

    monkeypatch.setattr(structure, "measure", broken)
    result = analyse_scan(good_volume, CountingPredictor())
    assert result.prediction is not None and result.structure is None
    assert "segmentation exploded" in result.structure_error


def tiny_model(folder) -> str:
    import torch

    from octviewer.model import Preprocess, build_network, default_metadata, save_model

    torch.manual_seed(0)
    net = build_network("semt", init="random", reg_channels=8).eval()
    meta = default_metadata("semt", preprocess=Preprocess(size=32))
    meta["network"]["reg_channels"] = 8
    return str(save_model(folder / "m.safetensors", net, meta))


def test_real_predictor_on_a_real_gate(good_volume, noise_volume, tmp_path):
    from octviewer.model import Predictor

    predictor = Predictor(tiny_model(tmp_path), device="cpu")
    good = analyse_scan(good_volume, predictor)
    assert isinstance(good, ScanResult) and 0 <= good.prediction.probability <= 1
    assert analyse_scan(noise_volume, predictor).prediction is None


def test_options_are_checked():
    with pytest.raises(ValueError):
        ScanOptions(segmentation="vendors")
