"""The network's precision: bf16 only where the CPU does bf16 in hardware, and then trustworthy.

The agreement tests run the bundled demo model (a trained network: its decisions and CAMs mean
something) in exact fp32 and in bf16 on a few synthetic eyes of both classes, with the thresholds
the fast path has to meet on a held-out cohort (docs/benchmarks.md has the cohort's figures).
"""

import numpy as np
import pytest
import torch

from octviewer.model import LoadedModel, Predictor, build_network, default_metadata, load_model
from octviewer.model import precision as precision_mod
from octviewer.model.precision import cpu_has_native_bf16, device_label, resolve_precision

CPUINFO = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx2 avx512f {extra}\nbogomips\t: 5192\n"


@pytest.mark.parametrize("flags, native", [("avx512_bf16 avx512_vnni", True), ("amx_bf16 amx_tile", True),
                                           ("avx512_vnni", False), ("", False)])
def test_native_bf16_is_read_from_the_cpu_flags(tmp_path, flags, native):
    info = tmp_path / "cpuinfo"
    info.write_text(CPUINFO.format(extra=flags))
    assert cpu_has_native_bf16.__wrapped__(str(info)) is native


def test_no_cpu_flags_means_no_bf16(tmp_path):
    assert cpu_has_native_bf16.__wrapped__(str(tmp_path / "missing")) is False


@pytest.mark.parametrize("native, expected", [(True, "bf16"), (False, "fp32")])
def test_auto_picks_bf16_only_on_a_cpu_that_has_it(monkeypatch, native, expected):
    monkeypatch.setattr(precision_mod, "cpu_has_native_bf16", lambda: native)
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == expected
    assert resolve_precision("fp32", cpu) == "fp32" and resolve_precision("bf16", cpu) == "bf16"
    assert resolve_precision("auto", torch.device("cuda")) == "bf16"
    with pytest.raises(ValueError, match="unknown precision"):
        resolve_precision("int4", cpu)


def test_the_label_says_what_runs():
    assert device_label("cpu", "bf16") == "CPU (bf16)"
    assert device_label(torch.device("cpu"), "fp32") == "CPU (exact fp32)"
    assert device_label("cuda:0", "bf16") == "CUDA (bf16)"


def test_predictor_precision(monkeypatch):
    monkeypatch.setattr(precision_mod, "cpu_has_native_bf16", lambda: True)
    model = LoadedModel(build_network("semt", init="random").eval(), default_metadata("semt"))
    fast = Predictor(model, device="cpu")
    assert fast.precision == "bf16" and fast.bf16 and fast.label == "CPU (bf16)"
    exact = Predictor(model, device="cpu", precision="fp32")
    assert exact.precision == "fp32" and not exact.bf16 and exact.label == "CPU (exact fp32)"
    assert Predictor(model, device="cpu", bf16=False).precision == "fp32"  # the older switch still rules
    monkeypatch.setattr(precision_mod, "cpu_has_native_bf16", lambda: False)
    assert Predictor(model, device="cpu").precision == "fp32"
    cube = LoadedModel(build_network("cnn3d").eval(), default_metadata("cnn3d"))
    monkeypatch.setattr(precision_mod, "cpu_has_native_bf16", lambda: True)
    assert Predictor(cube, device="cpu").precision == "fp32"  # bf16 is measured on the 2D networks only


@pytest.fixture(scope="module")
def fp32_and_bf16():
    """The demo model's predictions in both precisions on two bundled demo eyes, one of each class."""
    from octviewer import load_volume
    from octviewer.resources import DEMO_MODEL, DEMO_SAMPLES

    model = load_model(DEMO_MODEL, "cpu")
    exact, fast = Predictor(model, device="cpu", precision="fp32"), Predictor(model, device="cpu", precision="bf16")
    pairs = []
    for name in ("demo_normal_OD", "demo_early_glaucoma_OS"):  # the early eye: the nearest the threshold
        volume = load_volume(DEMO_SAMPLES / f"{name}.dcm")
        pairs.append((exact.predict(volume), fast.predict(volume)))
    return pairs


def test_bf16_keeps_the_decisions_and_probabilities(fp32_and_bf16):
    for exact, fast in fp32_and_bf16:
        assert fast.decision == exact.decision
        assert abs(fast.probability - exact.probability) <= 0.01
        assert np.median(np.abs(fast.bscan_probability - exact.bscan_probability)) <= 0.01
        for name in exact.vf:
            assert fast.vf[name] == pytest.approx(exact.vf[name], abs=0.5)  # VFI %, MD and PSD dB
    assert {exact.decision for exact, _ in fp32_and_bf16} == {"glaucoma", "normal"}  # both sides were tested


def test_bf16_keeps_the_cams(fp32_and_bf16):
    for exact, fast in fp32_and_bf16:
        r = np.corrcoef(exact.cam.ravel(), fast.cam.ravel())[0, 1]
        assert r >= 0.99
        # the classifier runs in fp32 under autocast too: each B-scan's cells still average to its logit
        logit = np.log(fast.bscan_probability / (1 - fast.bscan_probability)) - np.log(
            fast.threshold / (1 - fast.threshold))
        np.testing.assert_allclose(fast.cam.mean(axis=(1, 2)), logit, atol=2e-3)


def test_a_device_choice_carries_its_precision():
    from octviewer.model.precision import split_choice

    assert split_choice("cpu-fp32") == ("cpu", "fp32")
    assert split_choice("cpu") == ("cpu", "auto") and split_choice("cuda:1", "bf16") == ("cuda:1", "bf16")
    model = LoadedModel(build_network("semt", init="random").eval(), default_metadata("semt"))
    exact = Predictor(model, device="cpu-fp32")
    assert exact.device.type == "cpu" and exact.precision == "fp32"
    assert Predictor(model, device=exact.choice).precision == "fp32"  # the choice rebuilds the same Predictor
