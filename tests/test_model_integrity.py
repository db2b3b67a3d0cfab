"""Model files that are well-formed but lie: wrong types inside the metadata, values no trained model
has, VF outputs past their physical range, verdict-bending weights; the digest and the signatures."""

import copy
import json

import numpy as np
import pytest
import torch
from corpus import small_volume
from safetensors import safe_open
from safetensors.torch import save_file

from octviewer.model import ModelFileError, Predictor, Preprocess, build_network, default_metadata, load_model
from octviewer.model.predictor import InvalidOutput

SIZE = 32


@pytest.fixture(scope="module")
def semt():
    torch.manual_seed(0)
    net = build_network("semt", init="random", reg_channels=8).eval()
    meta = default_metadata("semt", preprocess=Preprocess(size=SIZE))
    meta["network"]["reg_channels"] = 8
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    return net, meta, state


def _write(path, state, meta, extra=None):
    """Written directly, without validation: what anyone can put on disk."""
    save_file(state, str(path), metadata={"octviewer": json.dumps(meta), **(extra or {})})
    return path


def _with(meta, **fields):
    out = copy.deepcopy(meta)
    out.update(fields)
    return out


# -- 5: evaluation / provenance of the wrong type ----------------------------------------------------
WRONG_TYPES = [
    ("evaluation", {"vf_mae": [1, 2]}, "evaluation.vf_mae"),
    ("evaluation", {"vf_mae": {"md": "bad"}}, "evaluation.vf_mae.md"),
    ("evaluation", {"vf_mae": {"md": {"mae": "2.0", "class_mean_mae": 3.0}}}, "evaluation.vf_mae.md.mae"),
    ("evaluation", {"image_level": {"auc": "high"}}, "evaluation.image_level.auc"),
    ("evaluation", {"image_level": {"auc": 7.5}}, "evaluation.image_level.auc"),
    ("evaluation", {"image_level": {"auc": 0.9, "ci95": {"auc": [0.1]}}}, "evaluation.image_level.ci95.auc"),
    ("evaluation", {"image_level": {"auc": 0.9}, "data": "many"}, "evaluation.data"),
    ("evaluation", {"md_checks": 5}, "evaluation.md_checks"),
    ("evaluation", {"pointing_game": {"hit_rate": "most"}}, "evaluation.pointing_game.hit_rate"),
    ("provenance", {"test_metrics": "great"}, "provenance.test_metrics"),
    ("provenance", {"test_metrics": {"vf_mae": {"vfi": {"mae": [1]}}}}, "provenance.test_metrics.vf_mae.vfi.mae"),
    ("provenance", {"data": {"splits": []}}, "provenance.data.splits"),
    ("provenance", {"data": {"splits": {"train": {"patients": "ten"}}}}, "provenance.data.splits.train.patients"),
    ("provenance", {"created": 5}, "provenance.created"),
    ("provenance", {"software": "torch"}, "provenance.software"),
]


@pytest.mark.parametrize("field, value, named", WRONG_TYPES, ids=[n for _, _, n in WRONG_TYPES])
def test_evaluation_and_provenance_of_the_wrong_type_are_refused(tmp_path, semt, field, value, named):
    # Old: these passed validation, then every prediction, Model > About and the PDF failed.
    _, meta, state = semt
    path = _write(tmp_path / "lying.safetensors", state, _with(meta, **{field: value}))
    with pytest.raises(ModelFileError) as err:
        load_model(path)
    assert named in str(err.value) and "lying.safetensors" in str(err.value)


def test_the_readers_of_evaluation_never_fail_on_a_loaded_model(tmp_path, semt):
    from octviewer.model.meta import evaluation_caveat, vf_baseline_caveat

    _, meta, state = semt
    good = {"image_level": {"auc": 0.9, "n": 10, "ci95": {"auc": [0.8, 0.95]}},
            "vf_mae": {"md": {"mae": 2.0, "class_mean_mae": 3.0, "ci95": {"mae_minus_class_mean": [-1.5, -0.2]}}},
            "data": {"patients": 5, "volumes": 10, "synthetic": True}, "evaluated": "2026-01-01"}
    model = load_model(_write(tmp_path / "ok.safetensors", state, _with(meta, evaluation=good)))
    assert evaluation_caveat(model.meta) == "" and vf_baseline_caveat(model.meta) == ""


# -- 7: metadata values no trained model has ---------------------------------------------------------
IMPLAUSIBLE = [
    ("calibration", {"method": "platt", "a": 1e-9, "b": -1000.0}, "calibration.a"),
    ("calibration", {"method": "platt", "a": 1.0, "b": -1000.0}, "calibration.b"),
    ("calibration", {"method": "platt", "a": 0.02, "b": -19.0}, "calibration"),  # boundary out of the sigmoid
    ("threshold", 0.9999999, "threshold"),
    ("threshold", 1e-7, "threshold"),
    ("vf_scaling", {"vfi": {"lo": -1e4, "hi": 1e4}, "md": {"lo": -35.0, "hi": 5.0}, "psd": {"lo": 0.0, "hi": 20.0}},
     "vf_scaling.vfi"),
    ("vf_scaling", {"vfi": {"lo": 0.0, "hi": 100.0}, "md": {"lo": -35.0, "hi": 6000.0}, "psd": {"lo": 0.0, "hi": 20.0}},
     "vf_scaling.md"),
    ("vf_scaling", {"vfi": {"lo": 0.0, "hi": 100.0}, "md": {"lo": -35.0, "hi": 5.0},
                    "psd": {"lo": -5394.0, "hi": 20.0}}, "vf_scaling.psd"),
]


@pytest.mark.parametrize("field, value, named", IMPLAUSIBLE,
                         ids=[f"{f}-{i}" for i, (f, _, _) in enumerate(IMPLAUSIBLE)])
def test_values_no_trained_model_has_are_refused(tmp_path, semt, field, value, named):
    # Old: all inside the bounds, so Platt a=1e-9 b=-1000 and threshold 0.9999999 called every eye
    # normal, and vf_scaling +-1e4 showed VFI 7614 %, MD +6000 dB, PSD -5394 dB.
    _, meta, state = semt
    with pytest.raises(ModelFileError) as err:
        load_model(_write(tmp_path / "bent.safetensors", state, _with(meta, **{field: value})))
    assert named in str(err.value)


def test_the_bundled_demo_model_is_plausible():
    from octviewer.resources import DEMO_MODEL

    model = load_model(DEMO_MODEL)
    assert model.meta.calibration.method == "platt" and 0.01 <= model.meta.threshold <= 0.99


# -- 6: VF outputs clipped to their physical range and flagged ---------------------------------------
def test_vf_outputs_are_clipped_to_the_physical_range_and_flagged(tmp_path, semt):
    net, meta, state = semt
    state = {k: v.clone() for k, v in state.items()}
    names = meta["network"]["vf_names"]
    state["heads.bias"][names.index("vfi")] = 50.0  # the VFI head's sigmoid at 1
    state["heads.bias"][names.index("psd")] = -50.0  # the PSD head's at 0
    bent = _with(meta, vf_scaling={"vfi": {"lo": 0.0, "hi": 120.0}, "md": {"lo": -35.0, "hi": 5.0},
                                   "psd": {"lo": -4.0, "hi": 20.0}})
    model = load_model(_write(tmp_path / "wide.safetensors", state, bent))
    p = Predictor(model, device="cpu").predict(small_volume((4, 40, 32)))
    assert p.vf["vfi"] == pytest.approx(100.0) and p.vf["psd"] == pytest.approx(0.0)
    assert all(float(v.max()) <= 100.0 for v in (p.bscan_vf["vfi"],))
    assert float(p.bscan_vf["psd"].min()) >= 0.0
    clipped = [n for n in p.notes if "clipped" in n]
    assert len(clipped) == 1 and "VFI" in clipped[0] and "PSD" in clipped[0] and "120" in clipped[0]


def test_vf_inside_the_range_carries_no_clipping_note(semt, tmp_path):
    _, meta, state = semt
    model = load_model(_write(tmp_path / "plain.safetensors", state, meta))
    p = Predictor(model, device="cpu").predict(small_volume((4, 40, 32)))
    assert not any("clipped" in n for n in p.notes)


# -- 7: verdict-bending weights ----------------------------------------------------------------------
def test_a_classifier_bias_that_silences_the_scan_gives_no_verdict(tmp_path, semt):
    # Old: fc.bias = -1e4 made every eye "normal" with nothing to say why.
    _, meta, state = semt
    state = {k: v.clone() for k, v in state.items()}
    state["fc.bias"][:] = -1e4
    model = load_model(_write(tmp_path / "silenced.safetensors", state, meta))
    with pytest.raises(InvalidOutput, match="saturated"):
        Predictor(model, device="cpu").predict(small_volume((4, 40, 32)))


def test_the_demo_model_is_not_saturated_on_the_demo_scans_or_on_noise():
    from octviewer import OctVolume, load_volume
    from octviewer.resources import DEMO_MODEL, DEMO_SAMPLES

    predictor = Predictor(load_model(DEMO_MODEL), device="cpu")
    volume = load_volume(sorted(DEMO_SAMPLES.glob("*.dcm"))[0])
    thin = volume.replace(data=volume.data[:: max(1, volume.n_bscans // 6)])
    noise = OctVolume(np.random.default_rng(0).integers(0, 255, (6, 256, 128), dtype=np.uint8))
    for v in (thin, noise):
        p = predictor.predict(v)
        assert 0.0 < p.raw_probability < 1.0
        assert all(0.0 <= x <= 100.0 for x in p.bscan_vf["vfi"])


# -- digest --------------------------------------------------------------------------------------------
def test_every_model_has_a_digest_of_weights_and_metadata(tmp_path, semt):
    from octviewer.model import save_model

    net, meta, _ = semt
    a = load_model(save_model(tmp_path / "a.safetensors", net, meta))
    b = load_model(save_model(tmp_path / "b.safetensors", net, meta))
    assert len(a.digest) == 64 and a.digest == b.digest  # content, not file name or time
    with safe_open(str(tmp_path / "a.safetensors"), framework="pt") as f:
        assert f.metadata()["octviewer_digest"] == a.digest
    changed_meta = load_model(save_model(tmp_path / "c.safetensors", net, _with(meta, threshold=0.4)))
    bent = copy.deepcopy(net)
    with torch.no_grad():
        bent.fc.bias.add_(0.5)
    changed_weights = load_model(save_model(tmp_path / "d.safetensors", bent, meta))
    assert len({a.digest, changed_meta.digest, changed_weights.digest}) == 3


def test_a_file_changed_after_it_was_written_is_refused(tmp_path, semt):
    from octviewer.model import save_model

    net, meta, _ = semt
    path = save_model(tmp_path / "m.safetensors", net, meta)
    with safe_open(str(path), framework="pt") as f:
        header = f.metadata()
        state = {k: f.get_tensor(k) for k in f.keys()}
    state["fc.bias"] = state["fc.bias"] - 3.0
    _write(path, state, json.loads(header["octviewer"]), {"octviewer_digest": header["octviewer_digest"]})
    with pytest.raises(ModelFileError, match="digest"):
        load_model(path)


@pytest.mark.parametrize("case", ["no signal", "separated", "ordinary", "saturated"])
def test_training_never_stores_a_calibration_the_viewer_refuses(case):
    from octviewer.model import ModelMeta
    from trainer.calibration import calibrate, fit_platt

    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 30)
    raw = {"no signal": 0.3 + rng.normal(0, 1e-4, 60),  # a model without signal: Platt slope near 0
           "separated": np.where(labels == 1, 1 - 1e-9, 1e-9),
           "ordinary": 1 / (1 + np.exp(-(labels * 2.0 - 1 + rng.normal(0, 1, 60)))),
           "saturated": np.full(60, 1e-9)}[case]  # every volume at the same extreme: no usable boundary
    calibration, threshold = calibrate(labels, np.clip(raw, 1e-12, 1 - 1e-12))
    meta = default_metadata("resnet2d") | {"calibration": calibration, "threshold": threshold}
    ModelMeta.from_dict(meta)  # loads: the trainer's output always passes the viewer's checks
    if case == "ordinary":
        assert calibration == fit_platt(labels, raw) and calibration["method"] == "platt"
    if case == "saturated":
        assert fit_platt(labels, raw)["method"] == "platt" and calibration == {"method": "none"}


# -- attack run 2: weights of an odd type or size, a signature nested past Python's stack ------------
def test_a_weight_of_a_type_no_model_is_stored_in_is_refused_naming_it(tmp_path, semt):
    _, meta, state = semt
    odd = dict(state, **{"fc.bias": state["fc.bias"].to(torch.float8_e4m3fn)})
    with pytest.raises(ModelFileError, match="fc.bias.*float8"):  # was torch's "isfinite not implemented"
        load_model(_write(tmp_path / "m.safetensors", odd, meta))


def test_a_float64_weight_too_large_for_float32_is_refused(tmp_path, semt):
    _, meta, state = semt
    big = dict(state, **{"fc.bias": torch.full_like(state["fc.bias"], 1e300, dtype=torch.float64)})
    with pytest.raises(ModelFileError, match="infinite"):  # finite in float64, inf once cast: every scan failed
        load_model(_write(tmp_path / "m.safetensors", big, meta))


def test_a_signature_block_nested_too_deep_is_a_model_file_error(tmp_path, semt):
    _, meta, state = semt
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(ModelFileError, match="signature"):  # was a RecursionError
        load_model(_write(tmp_path / "m.safetensors", state, meta, {"octviewer_signature": deep}))


@pytest.mark.parametrize("name", ["model.pt", "model.SAFETENSORS", "model"])
def test_a_safetensors_model_is_known_by_its_content_not_its_name(tmp_path, name):
    """Renamed, the bundled model was refused as 'may contain executable code' (attack run 2)."""
    import shutil

    from octviewer.resources import DEMO_MODEL

    renamed = shutil.copy(DEMO_MODEL, tmp_path / name)
    assert load_model(renamed).meta.architecture == "semt"
