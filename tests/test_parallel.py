"""octviewer-predict on scan processes (--workers) and on a Dask cluster (--cluster): the same CSV as
one process, row for row, whatever finishes first. The cluster is a local one with two worker
processes, as a hospital's would be with two machines."""

import csv
import sys

import numpy as np
import pytest
from corpus import tiny_semt_model

from octviewer.pipeline.predict_cli import main

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file names")


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return tiny_semt_model(tmp_path_factory.mktemp("m") / "m.safetensors")


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    """Five readable volumes of both eyes and classes, a circle scan the model refuses, a broken file."""
    from octviewer.io.stacks import write_npz
    from octviewer.synth import Acquisition, random_eye, synth_scan

    folder = tmp_path_factory.mktemp("archive")
    rng = np.random.default_rng(31)
    for i in range(5):
        eye = random_eye(rng, "OD" if i % 2 else "OS", bool(i % 2))
        write_npz(synth_scan(eye, "tiny", seed=i, acquisition=Acquisition()).volume, folder / f"scan{i}.npz")
    (folder / "scan9_broken.dcm").write_bytes(b"\x00" * 100)
    return folder


def _run(tmp_path, scans, model_path, name, *extra):
    out = tmp_path / f"{name}.csv"
    code = main([str(scans), "--model", str(model_path), "--out", str(out), "--device", "cpu", "--no-store",
                 "--no-quality-gate", "--precision", "fp32", *extra])
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    return code, [{k: v for k, v in row.items() if k != "seconds"} for row in rows]  # times differ, nothing else


def _same(rows, expected):
    assert len(rows) == len(expected)
    for got, want in zip(rows, expected):
        assert {k: (got[k], want[k]) for k in want if got[k] != want[k]} == {}, want["file"]


@pytest.fixture(scope="module")
def single(tmp_path_factory, scans, model_path):
    return _run(tmp_path_factory.mktemp("one"), scans, model_path, "single")


def test_scan_processes_give_the_single_process_csv(tmp_path, scans, model_path, single):
    code, rows = _run(tmp_path, scans, model_path, "workers", "--workers", "2")
    _same(rows, single[1])
    assert code == single[0]
    assert sum(bool(r["probability"]) for r in rows) == 5 and sum(bool(r["error"]) for r in rows) == 1


def test_a_local_two_worker_dask_cluster_gives_the_single_process_csv(tmp_path, scans, model_path, single):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) \
            as cluster:
        assert len(cluster.workers) == 2
        code, rows = _run(tmp_path, scans, model_path, "cluster", "--cluster", cluster.scheduler_address)
    _same(rows, single[1])
    assert code == single[0]


def test_an_unreachable_cluster_is_one_line_not_a_traceback(tmp_path, scans, model_path, capsys):
    pytest.importorskip("distributed")
    out = tmp_path / "r.csv"
    code = main([str(scans), "--model", str(model_path), "--out", str(out), "--device", "cpu", "--no-store",
                 "--cluster", "tcp://127.0.0.1:9"])
    assert code == 2
    assert "the cluster at tcp://127.0.0.1:9 cannot be used" in capsys.readouterr().err


def test_the_model_server_answers_only_its_own_workers(model_path):
    from multiprocessing import AuthenticationError
    from multiprocessing.connection import Client

    from octviewer.model import Predictor
    from octviewer.pipeline.parallel import ModelServer, RemotePredictor
    from octviewer.synth import EyeAnatomy, synth_scan

    server = ModelServer(Predictor(str(model_path), device="cpu", precision="fp32"))
    try:
        with pytest.raises(AuthenticationError):
            Client(server.address, authkey=b"guessed")
        remote = RemotePredictor(*server.identity())
        volume = synth_scan(EyeAnatomy(), "tiny", seed=0).volume
        batches = []
        got = remote.predict(volume, on_batch=batches.append)
        want = server.predictor.predict(volume)
        np.testing.assert_array_equal(got.bscan_probability, want.bscan_probability)
        np.testing.assert_array_equal(got.cam, want.cam)
        assert len(batches) == 1 and len(batches[0].indices) == volume.n_bscans
    finally:
        server.close()
