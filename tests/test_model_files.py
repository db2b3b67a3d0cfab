"""Tampered and corrupt model files: every class is refused with a ModelFileError naming the file
and the field, before anything is built; broken outputs raise instead of giving a decision."""

import copy
import json
import struct

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from octviewer.model import (
    LoadedModel,
    ModelFileError,
    ModelMeta,
    Predictor,
    Preprocess,
    build_network,
    default_meta,
    default_metadata,
    load_model,
    save_model,
)
from octviewer.model.predictor import InvalidOutput

SIZE = 32  # small inputs keep these tests fast


@pytest.fixture(scope="module")
def semt():
    torch.manual_seed(0)
    net = build_network("semt", init="random", reg_channels=8).eval()
    meta = default_metadata("semt", preprocess=Preprocess(size=SIZE))
    meta["network"]["reg_channels"] = 8
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    return net, meta, state


def _write(path, state, meta) -> str:
    """A model file written directly (no validation): what an attacker can put on disk."""
    text = meta if isinstance(meta, str) else json.dumps(meta)
    save_file(state, str(path), metadata={"octviewer": text})
    return path


def _set(d, dotted, value):
    d = copy.deepcopy(d)
    *parents, last = dotted.split(".")
    node = d
    for p in parents:
        node = node[p]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return d


_DELETE = object()

# (field, value, what the message must name)
TAMPERED_FIELDS = [
    ("network.reg_channels", 10**12, "network.reg_channels"),  # once an 18 TB allocation
    ("network.reg_channels", 0, "network.reg_channels"),
    ("network.reg_channels", 1.5, "network.reg_channels"),
    ("network.reg_channels", "128", "network.reg_channels"),
    ("network.reg_channels", True, "network.reg_channels"),
    ("network.evil", 3, "network.evil"),
    ("network.vf_names", ["vfi", "iop"], "network.vf_names"),
    ("network.vf_names", ["md", "md"], "network.vf_names"),
    ("network", [], "network"),
    ("preprocess.size", 200_000, "preprocess.size"),  # once a 160 GB allocation
    ("preprocess.size", 0, "preprocess.size"),
    ("preprocess.size", "224", "preprocess.size"),
    ("preprocess.std", [0.0, 0.0, 0.0], "preprocess.std"),
    ("preprocess.std", [0.229, -0.2, 0.2], "preprocess.std"),
    ("preprocess.mean", [float("nan"), 0.4, 0.4], "preprocess.mean"),
    ("preprocess.mean", [0.4, 0.4], "preprocess.mean"),
    ("preprocess.name", "volume_area_v1", "preprocess.name"),
    ("preprocess.volume_shape", [256, 256, 256], "preprocess.volume_shape"),
    ("threshold", float("nan"), "threshold"),
    ("threshold", 2.0, "threshold"),
    ("threshold", 0.0, "threshold"),
    ("threshold", 1.0, "threshold"),
    ("threshold", float("inf"), "threshold"),
    ("threshold", "0.5", "threshold"),
    ("threshold", None, "threshold"),
    ("threshold", _DELETE, "threshold"),
    ("calibration", {"method": "platt", "a": 0.0, "b": 0.0}, "calibration.a"),
    ("calibration", {"method": "platt", "a": -1.0, "b": 0.0}, "calibration.a"),
    ("calibration", {"method": "platt", "a": 1.0, "b": float("nan")}, "calibration.b"),
    ("calibration", {"method": "isotonic"}, "calibration.method"),
    ("vf_scaling.md", {"lo": 5.0, "hi": -35.0}, "vf_scaling.md"),
    ("vf_scaling.md", {"lo": float("-inf"), "hi": 5.0}, "vf_scaling.md.lo"),
    ("vf_scaling.vfi", _DELETE, "vf_scaling"),
    ("aggregation.vf", "max", "aggregation.vf"),
    ("aggregation.central_fraction", 0.0, "aggregation.central_fraction"),
    ("aggregation.central_fraction", 1.5, "aggregation.central_fraction"),
    ("architecture", "resnet9000", "architecture"),
    ("architecture", None, "architecture"),
    ("format_version", "2", "format_version"),
    ("format_version", 0, "format_version"),
    ("class_names", ["normal", "glaucoma", "other"], "class_names"),
    ("scan_patterns", ["spiral"], "scan_patterns"),
    ("scan_patterns", [], "scan_patterns"),
    ("min_bscans", 0, "min_bscans"),
    ("min_bscans", 10**9, "min_bscans"),
    ("name", "x" * 5000, "name"),
    ("name", "demo\u202eevil", "name"),
    ("name", 42, "name"),
    ("synthetic_data", "false", "synthetic_data"),
    ("provenance", "hello", "provenance"),
    ("evaluation", [1, 2], "evaluation"),
]


@pytest.mark.parametrize("field, value, named", TAMPERED_FIELDS,
                         ids=[f"{f}={str(v)[:20]}" for f, v, _ in TAMPERED_FIELDS])
def test_tampered_metadata_field_is_refused_naming_it(tmp_path, semt, field, value, named, monkeypatch):
    _, meta, state = semt
    import octviewer.model.model_file as mf

    built = []
    monkeypatch.setattr(mf, "build_network", lambda *a, **k: built.append(1))
    path = _write(tmp_path / "tampered.safetensors", state, _set(meta, field, value))
    with pytest.raises(ModelFileError) as err:
        load_model(path)
    assert "tampered.safetensors" in str(err.value)
    assert f"'{named}'" in str(err.value)
    assert not built  # refused before any network was built


def test_newer_format_asks_for_an_update(tmp_path, semt):
    _, meta, state = semt
    with pytest.raises(ModelFileError, match="newer octviewer"):
        load_model(_write(tmp_path / "new.safetensors", state, dict(meta, format_version=99)))


@pytest.mark.parametrize("text, problem", [
    ("{not json", "not valid JSON"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply|not valid JSON"),
    ('{"a": ' * 50_000 + "1" + "}" * 50_000, "nested too deeply|not valid JSON"),
    ("[1, 2, 3]", "not a JSON object"),
    ('"just a string"', "not a JSON object"),
    ("\udcff", "not valid JSON|not a readable"),
])
def test_malformed_metadata_json(tmp_path, semt, text, problem):
    _, _, state = semt
    path = tmp_path / "bad.safetensors"
    try:
        _write(path, state, text)
    except Exception:  # the safetensors writer refuses some strings itself: write the header by hand
        _write_raw(path, {"__metadata__": {"octviewer": "x"}}, b"")
        raw = path.read_bytes().replace(b'"x"', json.dumps(text).encode())
        path.write_bytes(struct.pack("<Q", len(raw) - 8 - 0) + raw[8:])
    with pytest.raises(ModelFileError, match=problem):
        load_model(path)


def test_deeply_nested_provenance_is_refused(tmp_path, semt):
    _, meta, state = semt
    deep = {}
    node = deep
    for _ in range(200):
        node["x"] = {}
        node = node["x"]
    with pytest.raises(ModelFileError, match="'provenance' is nested deeper"):
        load_model(_write(tmp_path / "deep.safetensors", state, dict(meta, provenance=deep)))


def _write_raw(path, header: dict, data: bytes):
    h = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(h)) + h + data)


@pytest.mark.parametrize("change, problem", [
    (lambda s: s.__setitem__("fc.bias", torch.tensor([float("nan")])), "fc.bias.*NaN or infinite"),
    (lambda s: s["backbone.body.0.weight"].view(-1).__setitem__(0, float("inf")), "NaN or infinite"),
    (lambda s: s.__setitem__("backbone.body.1.running_var", -torch.ones(64)), "negative variances"),
    (lambda s: s.__setitem__("fc.weight", torch.zeros(1, 7)), "fc.weight.*shape"),
    (lambda s: s.pop("fc.bias"), "missing"),
    (lambda s: s.__setitem__("extra", torch.zeros(1)), "unexpected"),
    (lambda s: s.__setitem__("fc.bias", torch.tensor([1], dtype=torch.int32)), "dtype"),
])
def test_tampered_weights_are_refused(tmp_path, semt, change, problem):
    _, meta, state = semt
    state = {k: v.clone() for k, v in state.items()}
    change(state)
    with pytest.raises(ModelFileError, match=problem):
        load_model(_write(tmp_path / "w.safetensors", state, meta))


def test_save_refuses_invalid_metadata_and_weights(tmp_path, semt):
    net, meta, _ = semt
    with pytest.raises(ModelFileError, match="'threshold'"):
        save_model(tmp_path / "a.safetensors", net, dict(meta, threshold=float("nan")))
    broken = copy.deepcopy(net)
    with torch.no_grad():
        broken.fc.bias.fill_(float("nan"))
    with pytest.raises(ModelFileError, match="NaN"):
        save_model(tmp_path / "b.safetensors", broken, meta)
    assert not list(tmp_path.iterdir())  # nothing written, no .part left


def test_v1_file_loads_with_v1_defaults(tmp_path, semt, small_volume):
    net, meta, state = semt
    v1 = {k: v for k, v in meta.items() if k not in ("vf_scaling", "calibration", "aggregation", "evaluation")}
    v1.update(format_version=1, vf={"vfi": {"unit": "%", "range": [0, 100]}},
              vf_scaling="(value - lo) / (hi - lo), clipped to [0, 1]; VFI % over [0, 100]")
    loaded = load_model(_write(tmp_path / "v1.safetensors", state, v1))
    assert loaded.meta.format_version == 2
    assert (loaded.meta.vf_scaling["md"].lo, loaded.meta.vf_scaling["md"].hi) == (-35.0, 5.0)
    assert loaded.meta.calibration.method == "none" and loaded.meta.aggregation.vf == "mean"
    assert loaded.meta["threshold"] == 0.5 and loaded.meta.get("synthetic_data") is False  # dict-style reads
    pred = Predictor(loaded, device="cpu").predict(small_volume)
    assert pred.probability == pytest.approx(float(np.mean(pred.bscan_probability)), abs=1e-6)


def test_predictor_applies_vf_scaling_calibration_and_aggregation(semt, small_volume):
    net, meta, _ = semt
    base = LoadedModel(net, meta)
    plain = Predictor(base, device="cpu").predict(small_volume)
    scaled = LoadedModel(net, default_meta(
        "semt", preprocess=Preprocess(size=SIZE), network_params={"reg_channels": 8},
        vf_scaling={"vfi": {"lo": 20.0, "hi": 100.0}, "md": {"lo": -30.0, "hi": 2.0}, "psd": {"lo": 1.0, "hi": 15.0}},
        calibration={"method": "platt", "a": 2.0, "b": -0.5},
        aggregation={"probability": "mean", "vf": "central", "central_fraction": 0.5}, threshold=0.3))
    pred = Predictor(scaled, device="cpu").predict(small_volume)
    # VF: the file's lo/hi, not a global range
    s = (plain.bscan_vf["md"] - (-35.0)) / 40.0
    np.testing.assert_allclose(pred.bscan_vf["md"], -30.0 + 32.0 * s, rtol=1e-4, atol=1e-3)
    # calibration on the aggregated probability: sigmoid(a * logit(mean p) + b)
    p_raw = float(np.mean(plain.bscan_probability))
    assert pred.raw_probability == pytest.approx(p_raw, rel=1e-5)
    expected = 1 / (1 + np.exp(-(2.0 * np.log(p_raw / (1 - p_raw)) - 0.5)))
    assert pred.probability == pytest.approx(expected, rel=1e-5)
    # the same map on the B-scan probabilities (for display), monotone
    q = plain.bscan_probability.astype(np.float64)
    np.testing.assert_allclose(pred.bscan_probability, 1 / (1 + np.exp(-(2 * np.log(q / (1 - q)) - 0.5))),
                               rtol=1e-4)
    # the decision uses the calibrated probability against the file's threshold
    assert pred.threshold == 0.3 and pred.decision == ("glaucoma" if pred.probability >= 0.3 else "normal")
    # aggregation "central": mean over the central half of the B-scans
    n = small_volume.n_bscans
    k = round(0.5 * n)
    assert pred.vf["md"] == pytest.approx(float(np.mean(pred.bscan_vf["md"][(n - k) // 2:(n - k) // 2 + k])),
                                          rel=1e-5)
    # CAM cells: calibrated logits relative to the threshold; their mean gives the B-scan's side
    cells_mean = pred.cam.mean(axis=(1, 2))
    logit_thr = np.log(0.3 / 0.7)
    bscan_logit = np.log(pred.bscan_probability / (1 - pred.bscan_probability))
    np.testing.assert_allclose(cells_mean, bscan_logit - logit_thr, rtol=1e-3, atol=1e-3)


def test_nan_output_raises_never_a_decision(semt, small_volume, tmp_path):
    net, meta, _ = semt
    broken = copy.deepcopy(net)
    broken.backbone.body[1].running_var.fill_(-1.0)  # finite, but the outputs become NaN
    with pytest.raises(InvalidOutput, match="non-finite"):
        Predictor(LoadedModel(broken, meta), device="cpu").predict(small_volume)
    batches = []
    with pytest.raises(InvalidOutput):
        Predictor(LoadedModel(broken, meta), device="cpu").predict(small_volume, first=3, on_batch=batches.append)
    assert batches == []  # no NaN result reached the viewer


def test_metadata_round_trip_and_replace(semt):
    _, meta, _ = semt
    m = ModelMeta.from_dict(meta)
    assert ModelMeta.from_dict(m.to_dict()) == m
    assert ModelMeta.from_json(m.to_json()) == m
    with pytest.raises(ModelFileError, match="'threshold'"):
        m.replace(threshold=1.5)
    assert m.replace(threshold=0.7).threshold == 0.7


# -- fuzz ------------------------------------------------------------------------------------------
_json = st.recursive(st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                 max_size=3), max_leaves=8)
_PATHS = ["network.reg_channels", "network.vf_names", "network", "preprocess.size", "preprocess.std",
          "preprocess.mean", "preprocess.volume_shape", "preprocess.name", "preprocess", "threshold", "calibration",
          "calibration.a", "vf_scaling", "vf_scaling.md", "vf_scaling.md.hi", "aggregation", "aggregation.vf",
          "aggregation.central_fraction", "architecture", "format_version", "format", "class_names",
          "scan_patterns", "min_bscans", "name", "synthetic_data", "provenance", "evaluation", "stored_half"]


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(changes=st.lists(st.tuples(st.sampled_from(_PATHS), _json), min_size=1, max_size=3))
def test_fuzz_metadata_fields(semt, changes):
    """Any JSON value in any field: valid metadata or a ModelFileError, never another exception."""
    _, meta, _ = semt
    d = meta
    for path, value in changes:
        try:
            d = _set(d, path, value)
        except (KeyError, TypeError):  # a parent was replaced by a non-object: set it whole
            d = _set(d, path.split(".")[0], value)
    try:
        m = ModelMeta.from_dict(json.loads(json.dumps(d)), "fuzz.safetensors")
    except ModelFileError as exc:
        assert "fuzz.safetensors" in str(exc)
        return
    assert 0 < m.threshold < 1 and 16 <= m.preprocess.size <= 512 and min(m.preprocess.std) > 0
    assert all(1 <= v <= 1024 for v in m.network_params.values())


@pytest.fixture(scope="module")
def small_file(tmp_path_factory) -> bytes:
    """A complete, valid model file of a few kB (a narrow 3D CNN), so each fuzz example is cheap."""
    net = build_network("cnn3d", width=2)
    meta = default_metadata("cnn3d", preprocess=Preprocess(name="volume_area_v1", volume_shape=(8, 8, 8)))
    meta["network"]["width"] = 2
    path = save_model(tmp_path_factory.mktemp("small") / "good.safetensors", net, meta)
    assert load_model(path).architecture == "cnn3d"
    return path.read_bytes()


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzz_model_file_bytes(tmp_path_factory, small_file, data):
    """Flipped, cut or inserted bytes anywhere in the header (and the start of the data), or a
    wrong header length: load_model either loads or raises ModelFileError."""
    folder = tmp_path_factory.mktemp("fuzz")
    good = small_file
    header_len = struct.unpack("<Q", good[:8])[0]
    span = 8 + header_len + 8
    blob = bytearray(good)
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["flip", "cut", "insert", "length"]))
        pos = data.draw(st.integers(0, min(span, len(blob)) - 1))
        if kind == "flip":
            blob[pos] = data.draw(st.integers(0, 255))
        elif kind == "cut":
            del blob[pos:pos + data.draw(st.integers(1, 64))]
        elif kind == "insert":
            blob[pos:pos] = data.draw(st.binary(min_size=1, max_size=16))
        else:
            blob[:8] = struct.pack("<Q", data.draw(st.integers(0, 2**64 - 1)))
    path = folder / "m.safetensors"
    path.write_bytes(bytes(blob))
    try:
        load_model(path)
    except ModelFileError as exc:
        assert "m.safetensors" in str(exc)
