"""Predictors are immutable towards their caller: they work on their own copy of the network."""

import numpy as np
import pytest
import torch

from octviewer.model import LoadedModel, Predictor, Preprocess, build_network, default_metadata


def _model():
    torch.manual_seed(0)
    net = build_network("semt", init="random", reg_channels=8).eval()
    meta = default_metadata("semt", preprocess=Preprocess(size=32))
    meta["network"]["reg_channels"] = 8
    return LoadedModel(net, meta)


def _snapshot(module: torch.nn.Module):
    return {k: (v.device, v.dtype, v.data_ptr(), v.is_contiguous(), v.is_contiguous(memory_format=torch.channels_last)
                if v.dim() == 4 else None, v.detach().clone())
            for k, v in module.state_dict().items()}


def _assert_same(before, module):
    after = _snapshot(module)
    assert before.keys() == after.keys()
    for k in before:
        assert before[k][:5] == after[k][:5], k
        assert torch.equal(before[k][5], after[k][5]), k


devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", devices)
def test_building_a_predictor_leaves_the_given_module_untouched(device, small_volume):
    model = _model()
    conv = model.network.backbone.body[0].weight
    assert not conv.is_contiguous(memory_format=torch.channels_last)
    before = _snapshot(model.network)
    predictor = Predictor(model, device=device)
    predictor.predict(small_volume)
    _assert_same(before, model.network)  # device, memory format, storage and values
    assert predictor.network is not model.network
    assert predictor.network.backbone.body[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert all(p.device.type == device for p in predictor.network.parameters())
    assert model.network.training is False and all(p.requires_grad for p in model.network.parameters())


def test_two_predictors_on_one_model_are_independent(small_volume):
    model = _model()
    a, b = Predictor(model, device="cpu", batch_size=4), Predictor(model, device="cpu", batch_size=16)
    pa = a.predict(small_volume).bscan_probability
    with torch.no_grad():  # something breaks predictor a's network: b and the model do not notice
        a.network.fc.bias.add_(5.0)
    np.testing.assert_allclose(b.predict(small_volume).bscan_probability, pa, atol=1e-5)
    assert not np.allclose(a.predict(small_volume).bscan_probability, pa, atol=1e-3)
    np.testing.assert_allclose(Predictor(model, device="cpu").predict(small_volume).bscan_probability, pa,
                               atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_path_matches_cpu_and_streams(small_volume):
    """The GPU path (pinned staging, device-side range, lagged copies back) gives the CPU's results."""
    model = _model()
    cpu = Predictor(model, device="cpu").predict(small_volume)
    gpu = Predictor(model, device="cuda", batch_size=4, bf16=False)  # the pipeline, not bf16, is under test
    for staging in ("pinned", "none"):
        gpu.staging = staging
        batches = []
        pred = gpu.predict(small_volume, first=5, on_batch=batches.append)
        assert list(batches[0].indices) == [5]
        assert sorted(np.concatenate([b.indices for b in batches])) == list(range(small_volume.n_bscans))
        np.testing.assert_allclose(pred.bscan_probability, cpu.bscan_probability, atol=2e-2)
        np.testing.assert_allclose(pred.cam.mean(axis=(1, 2)), cpu.cam.mean(axis=(1, 2)), atol=0.2)
        streamed = np.zeros(small_volume.n_bscans, np.float32)
        for b in batches:
            streamed[b.indices] = b.probability
        np.testing.assert_allclose(streamed, pred.bscan_probability, atol=1e-6)
    np.testing.assert_allclose(gpu.predict(small_volume).bscan_probability, pred.bscan_probability, atol=1e-5)
    fast = Predictor(model, device="cuda").predict(small_volume)  # bf16 autocast, default batch
    np.testing.assert_allclose(fast.bscan_probability, cpu.bscan_probability, atol=0.1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_graphs_change_nothing(small_volume):
    """The graph replay gives the eager network's outputs; a graph is captured once per batch shape
    and reused."""
    model = _model()
    graphed = Predictor(model, device="cuda", batch_size=4)
    eager = Predictor(model, device="cuda", batch_size=4, graphs=False)
    a, b = graphed.predict(small_volume), eager.predict(small_volume)
    assert graphed.graphs and list(graphed._graphs) == [(4, 3, 32, 32)]
    np.testing.assert_allclose(a.bscan_probability, b.bscan_probability, atol=1e-6)
    np.testing.assert_allclose(a.cam, b.cam, atol=1e-4)
    for k in a.bscan_vf:
        np.testing.assert_allclose(a.bscan_vf[k], b.bscan_vf[k], atol=1e-4)
    again = graphed.predict(small_volume, first=3, on_batch=lambda r: None)
    np.testing.assert_allclose(again.bscan_probability, a.bscan_probability, atol=1e-6)
    assert len(graphed._graphs) == 1


def test_vf_estimates_no_better_than_the_class_mean_carry_a_note(small_volume):
    """The model file's own test metrics decide: an index whose MAE is not below the class-mean
    baseline's is named in the Prediction's notes (shown in the results panel and the report)."""
    from octviewer.model import load_model
    from octviewer.model.meta import vf_baseline_caveat
    from octviewer.resources import DEMO_MODEL

    demo = load_model(str(DEMO_MODEL), "cpu").meta  # its held-out evaluation is attached, with intervals
    assert vf_baseline_caveat(demo) == ("VFI, MD, PSD estimates not shown to beat the class-mean baseline on "
                                        "independent data (model card): read them as weak; PSD estimates are WORSE "
                                        "than the class-mean baseline on independent data: do not use them")
    clear = demo.to_dict()
    clear["evaluation"] = {"vf_mae": {"md": {"mae": 2.0, "class_mean_mae": 3.0,
                                             "ci95": {"mae_minus_class_mean": [-1.5, -0.2]}}}}
    assert vf_baseline_caveat(clear) == ""  # an interval below 0: shown to beat it
    own_split = demo.to_dict() | {"evaluation": {}}  # without one, the model's own test split decides
    assert vf_baseline_caveat(own_split).startswith("VFI, MD, PSD estimates not shown")
    good = {"provenance": {"test_metrics": {"vf_mae": {"md": {"mae": 2.0, "class_mean_mae": 3.0}}}}}
    assert vf_baseline_caveat(good) == "" and vf_baseline_caveat({}) == ""
    torch.manual_seed(0)
    meta = default_metadata("semt", preprocess=Preprocess(size=32))
    meta["network"]["reg_channels"] = 8
    meta["provenance"] = {"test_metrics": {"vf_mae": {"md": {"mae": 3.5, "class_mean_mae": 3.0},
                                                      "vfi": {"mae": 5.0, "class_mean_mae": 6.0}}}}
    model = LoadedModel(build_network("semt", init="random", reg_channels=8).eval(), meta)
    notes = Predictor(model, device="cpu").predict(small_volume).notes
    assert any(n.startswith("MD estimates not shown") for n in notes)
    assert not any("no evaluation" in n for n in notes)  # its own test split is an evaluation
    # walk-through: a model file with no evaluation at all gave a plain decision without a word
    meta.pop("provenance")
    bare = LoadedModel(model.network, meta)
    assert any("carries no evaluation" in n for n in Predictor(bare, device="cpu").predict(small_volume).notes)
