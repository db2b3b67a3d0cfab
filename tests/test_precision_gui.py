"""The Device menu: on a CPU that does bf16 in hardware the viewer runs bf16 and says so, and exact
fp32 is one click away; elsewhere the CPU entry is exact fp32 only. Driven through the window's
QActions, as a user clicks them."""

import os

import pytest
from conftest import open_window

pytest.importorskip("pytestqt")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from octviewer.model import Preprocess, build_network, default_metadata, save_model  # noqa: E402
from octviewer.model import precision as precision_mod  # noqa: E402


@pytest.fixture(scope="module")
def tiny_model_path(tmp_path_factory):
    import torch

    torch.manual_seed(0)
    meta = default_metadata("semt", preprocess=Preprocess(size=32))
    meta.update(name="tiny-test-model", synthetic_data=True)
    return save_model(tmp_path_factory.mktemp("m") / "tiny.safetensors", build_network("semt", init="random"), meta)


def _window(qtbot, monkeypatch, model_path, native: bool):
    monkeypatch.setattr(precision_mod, "cpu_has_native_bf16", lambda: native)
    return open_window(qtbot, monkeypatch, model_path)


def test_bf16_cpu_says_so_and_exact_fp32_is_one_click_away(qtbot, monkeypatch, tiny_model_path):
    windows = _window(qtbot, monkeypatch, tiny_model_path, native=True)
    w = next(windows)
    actions = w.menu_actions
    assert actions["device_cpu"].text() == "CPU (bf16)"
    assert actions["device_cpu-fp32"].text() == "CPU (exact fp32)"
    assert w.controller.predictor.precision == "bf16"  # the window was opened on "cpu": the fast path
    assert w.models.status_device.text() == "device: CPU (bf16)"

    actions["device_cpu-fp32"].trigger()
    assert w.controller.predictor.precision == "fp32" and w.controller.predictor.device.type == "cpu"
    assert actions["device_cpu-fp32"].isChecked() and not actions["device_cpu"].isChecked()
    assert w.models.status_device.text() == "device: CPU (exact fp32)"
    assert w.settings.value("device", "auto", type=str) == "cpu-fp32"  # remembered for the next start

    actions["device_cpu"].trigger()
    assert w.controller.predictor.precision == "bf16"
    assert w.models.status_device.text() == "device: CPU (bf16)"
    next(windows, None)


def test_without_bf16_in_hardware_the_cpu_is_exact_fp32_only(qtbot, monkeypatch, tiny_model_path):
    windows = _window(qtbot, monkeypatch, tiny_model_path, native=False)
    w = next(windows)
    assert w.menu_actions["device_cpu"].text() == "CPU (exact fp32)"
    assert "device_cpu-fp32" not in w.menu_actions
    w.menu_actions["device_cpu"].trigger()
    assert w.controller.predictor.precision == "fp32"
    assert w.models.status_device.text() == "device: CPU (exact fp32)"
    next(windows, None)
