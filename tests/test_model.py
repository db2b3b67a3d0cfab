"""Networks, exact CAM, model files and the Predictor, on tiny volumes on the CPU."""

import json
import pickle
import threading

import numpy as np
import pytest
import torch

from octviewer.model import (
    Cancelled,
    InitError,
    LoadedModel,
    ModelFileError,
    Predictor,
    Preprocess,
    ScanNotSupported,
    build_network,
    default_metadata,
    load_model,
    save_model,
)


def _model(arch="semt", size=64, vf=("vfi", "md", "psd"), seed=0):
    torch.manual_seed(seed)
    net = build_network(arch, vf_names=vf, init="random")
    meta = default_metadata(arch, vf_names=vf, preprocess=Preprocess(size=size) if arch in ("resnet2d", "mt", "semt")
                            else Preprocess(name="volume_area_v1", volume_shape=(16, 32, 16)))
    meta["name"] = f"test-{arch}"
    return LoadedModel(net.eval(), meta)


@pytest.mark.parametrize("arch", ["resnet2d", "semt", "cnn3d", "resnet3d"])
def test_shapes_and_ranges(arch, small_volume):
    pred = Predictor(_model(arch), device="cpu", batch_size=5).predict(small_volume)
    n = small_volume.n_bscans
    assert pred.bscan_probability.shape == (n,)
    assert np.all((pred.bscan_probability >= 0) & (pred.bscan_probability <= 1))
    assert pred.cam.shape[0] == n and pred.cam.ndim == 3
    assert pred.probability == pytest.approx(float(np.mean(pred.bscan_probability)))
    assert pred.decision in ("glaucoma", "normal")
    if arch == "semt":
        assert set(pred.vf) == {"vfi", "md", "psd"}
        assert 0 <= pred.vf["vfi"] <= 100 and -35 <= pred.vf["md"] <= 5 and 0 <= pred.vf["psd"] <= 20
        assert pred.bscan_vf["md"].shape == (n,)


def test_semt_cam_decomposes_logit():
    net = build_network("semt", init="random").eval()
    x = torch.randn(3, 3, 96, 96)
    with torch.no_grad():
        out = net(x)
    assert out["cam"].shape == (3, 3, 3)
    torch.testing.assert_close(out["cam"].mean(dim=(1, 2)), out["logit"], atol=1e-5, rtol=1e-5)


def test_resnet2d_cam_matches_gradcam_library():
    import cv2
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    torch.manual_seed(1)
    net = build_network("resnet2d", init="random").eval()

    class LogitOnly(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net(x)["logit"][:, None]

    wrapper = LogitOnly()
    x = torch.randn(4, 3, 224, 224)
    with torch.no_grad():
        ours = net(x)["cam"].numpy()
    with GradCAM(model=wrapper, target_layers=[net.backbone.body[-1]]) as gradcam:
        theirs = gradcam(input_tensor=x, targets=[ClassifierOutputTarget(0)] * 4)
    for a, b in zip(ours, theirs):
        a = cv2.resize(np.maximum(a, 0), (224, 224))  # Grad-CAM keeps the positive part, upsampled
        a = (a - a.min()) / (a.max() - a.min() + 1e-12)
        b = (b - b.min()) / (b.max() - b.min() + 1e-12)
        assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.99


def test_first_bscan_and_streaming(small_volume):
    batches = []
    pred = Predictor(_model(), device="cpu", batch_size=4).predict(small_volume, first=7, on_batch=batches.append)
    assert list(batches[0].indices) == [7]
    seen = np.concatenate([b.indices for b in batches])
    assert sorted(seen) == list(range(small_volume.n_bscans))
    streamed = np.zeros(small_volume.n_bscans)
    for b in batches:
        streamed[b.indices] = b.probability
    np.testing.assert_allclose(streamed, pred.bscan_probability, rtol=1e-5)


def test_first_does_not_change_results(small_volume):
    p = Predictor(_model(), device="cpu", batch_size=4)
    np.testing.assert_allclose(p.predict(small_volume).bscan_probability,
                               p.predict(small_volume, first=9).bscan_probability, atol=1e-5)


def test_cancellation_stops_within_one_batch(small_volume):
    stop = threading.Event()
    calls = []

    def on_batch(b):
        calls.append(b)
        stop.set()

    with pytest.raises(Cancelled):
        Predictor(_model(), device="cpu", batch_size=4).predict(small_volume, on_batch=on_batch, cancel=stop)
    assert len(calls) == 1


def test_model_file_round_trip(tmp_path, small_volume):
    model = _model()
    path = save_model(tmp_path / "m.safetensors", model.network, model.meta)
    loaded = load_model(path)
    assert loaded.meta["architecture"] == "semt" and loaded.vf_names == ("vfi", "md", "psd")
    a = Predictor(model, device="cpu").predict(small_volume)
    b = Predictor(loaded, device="cpu").predict(small_volume)
    np.testing.assert_allclose(a.bscan_probability, b.bscan_probability, atol=1e-6)
    half = load_model(save_model(tmp_path / "h.safetensors", model.network, model.meta, half=True))
    c = Predictor(half, device="cpu").predict(small_volume)
    np.testing.assert_allclose(a.bscan_probability, c.bscan_probability, atol=2e-2)


def test_refusals(tmp_path):
    other = _model("resnet2d")
    wrong = default_metadata("semt", preprocess=other.preprocess)
    from safetensors.torch import save_file
    save_file(dict(other.network.state_dict()), str(tmp_path / "wrong.safetensors"),
              metadata={"octviewer": json.dumps(wrong)})
    with pytest.raises(ModelFileError, match="do not fit"):
        load_model(tmp_path / "wrong.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"garbage")
    with pytest.raises(ModelFileError, match="not a readable"):
        load_model(tmp_path / "junk.safetensors")


class _Evil:
    def __reduce__(self):
        import os
        return (os.system, (f"touch {_Evil.marker}",))


def test_pickle_with_code_is_refused_without_running(tmp_path):
    _Evil.marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"model": {}, "meta": _Evil()}, f)
    torch.save({"model": {}, "meta": _Evil()}, tmp_path / "evil2.pt")
    for p in (path, tmp_path / "evil2.pt"):
        with pytest.raises(ModelFileError, match="refused"):
            load_model(p)
    assert not _Evil.marker.exists()


def test_circle_scan_refused(samples_dir):
    from octviewer import load_volume

    circle = load_volume(samples_dir / "heidelberg_vol" / "Willis_B_716_2.vol")
    with pytest.raises(ScanNotSupported, match="circle scan"):
        Predictor(_model(), device="cpu").predict(circle)


def test_imagenet_offline_is_a_clear_error(monkeypatch, tmp_path):
    from torchvision.models import ResNet18_Weights

    def offline(*a, **k):
        raise OSError("network unreachable")

    monkeypatch.setattr(type(ResNet18_Weights.IMAGENET1K_V1), "get_state_dict", offline)
    with pytest.raises(InitError, match="--init random"):
        build_network("semt", init="imagenet")
    local = tmp_path / "r18.pth"
    from torchvision.models import resnet18
    torch.save(resnet18().state_dict(), local)
    assert build_network("resnet2d", init=str(local)) is not None


def test_preprocess_neighbours_and_quantisation():
    pre = Preprocess(size=32)
    rows = pre.neighbours(torch.tensor([0, 3, 4]), 5)
    assert rows.tolist() == [[0, 0, 1], [2, 3, 4], [3, 4, 4]]
    display = torch.randint(0, 256, (5, 60, 40), dtype=torch.uint8)
    x = pre.bscan_inputs(display, torch.tensor([0, 4]), 0.0, 255.0)
    assert x.shape == (2, 3, 32, 32) and x.is_contiguous(memory_format=torch.channels_last)
    resized = pre.resize_bscans(display, 0.0, 255.0)
    torch.testing.assert_close(x, pre.assemble(resized, rows[[0, 2]]))


def test_predict_cli(tmp_path, tiny_cohort):
    import csv

    from octviewer.pipeline.predict_cli import main

    model = _model()
    model_path = save_model(tmp_path / "m.safetensors", model.network, model.meta)
    (tmp_path / "broken.dcm").write_bytes(b"\x00" * 200)
    folder = tmp_path / "scans"  # a folder of three scans: the folder is expanded, each scan gets its row
    folder.mkdir()
    for scan in sorted((tiny_cohort.parent / "volumes").iterdir())[:3]:
        (folder / scan.name).write_bytes(scan.read_bytes())
    out = tmp_path / "r.csv"
    code = main([str(folder), str(tmp_path / "broken.dcm"), "--model", str(model_path),
                 "--out", str(out), "--device", "cpu", "--no-pseudonymise",
                 "--no-quality-gate"])  # tiny cubes (16 x 128 x 64) are below what the gate can judge
    rows = list(csv.DictReader(open(out)))
    assert code == 1
    bad = [r for r in rows if r["error"]]
    assert len(bad) == 1 and "broken.dcm" in bad[0]["error"]
    good = [r for r in rows if not r["error"]]
    assert len(good) == 3 and all(0 <= float(r["probability"]) <= 1 and r["md"] for r in good)


def test_an_init_file_that_is_no_file_is_named_for_what_it_is(tmp_path):
    """The network's own check said "not found" for a named pipe given as ImageNet weights (the
    trainer's command line words it, the Retrain dialog reaches this check directly; H67)."""
    import os

    from octviewer.model.networks import InitError, _imagenet_resnet18

    fifo = tmp_path / "weights.pth"
    os.mkfifo(fifo)
    with pytest.raises(InitError, match=r"weights.pth: this is a named pipe \(FIFO\), not a file"):
        _imagenet_resnet18(fifo)
    with pytest.raises(InitError, match="missing.pth: No such file or directory"):
        _imagenet_resnet18(tmp_path / "missing.pth")
