"""The results store (octviewer.pipeline.store): a result computed once is returned again with the
network run no extra time; several writers at once; a SIGKILL mid-write leaves a readable store; a
store this version cannot use is moved aside with a message, never a crash."""

import dataclasses
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from test_pipeline import CountingPredictor

from octviewer.pipeline import ScanOptions, analyse_scan
from octviewer.pipeline.store import SCHEMA_VERSION, ResultsStore, decode, encode


@pytest.fixture(scope="module")
def good_volume(tmp_path_factory):
    from octviewer import load_volume
    from octviewer.study.demo import write_demo_study

    study = write_demo_study(tmp_path_factory.mktemp("study"), patients=1, visits=1, preset="tiny", seed=7)
    return load_volume(sorted((study / "scans").rglob("*.dcm"))[0])


class FakeModel:
    path = ""
    digest = "d" * 64
    name = "counting"


def _predictor():
    p = CountingPredictor()
    p.model = FakeModel()
    return p


def _equal(a, b):
    if dataclasses.is_dataclass(a):
        assert type(a) is type(b)
        for f in dataclasses.fields(a):
            _equal(getattr(a, f.name), getattr(b, f.name))
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _equal(a[k], b[k])
    elif isinstance(a, float) and np.isnan(a):
        assert isinstance(b, float) and np.isnan(b)
    else:
        assert a == b and type(a) is type(b), (a, b)


def test_a_result_round_trips_exactly(good_volume):
    result = analyse_scan(good_volume, _predictor())
    assert result.structure.segmentation is not None and result.structure.thickness_map_um is not None
    doc, blob = encode(result)
    _equal(decode(doc, blob), result)


def test_second_opening_runs_nothing_and_calls_back_the_same(good_volume, tmp_path):
    store = ResultsStore(tmp_path / "r.sqlite")
    first = _predictor()
    events = []
    callbacks = dict(on_quality=lambda q: events.append("quality"), on_batch=lambda b: events.append("batch"),
                     on_prediction=lambda p: events.append("prediction"),
                     on_structure=lambda r: events.append("structure"))
    fresh = analyse_scan(good_volume, first, store=store, **callbacks)
    assert first.calls == ["check", ("predict", None)] and not fresh.from_store
    seen_fresh, events[:] = list(events), []
    again = _predictor()
    held = analyse_scan(good_volume, again, store=store, **callbacks)
    assert again.calls == [] and held.from_store  # the network ran no extra time
    assert events == seen_fresh  # the caller's code path is the same
    assert held.prediction.remembered and not fresh.prediction.remembered  # the results panel says so
    _equal(dataclasses.replace(held, from_store=False,
                               prediction=dataclasses.replace(held.prediction, remembered=False)), fresh)
    # another segmentation source: gate and measurement again, the network's output from the store
    other, events[:] = _predictor(), []
    own = analyse_scan(good_volume, other, ScanOptions(segmentation="own"), store=store, **callbacks)
    assert other.calls == [] and not own.from_store and own.structure.source == "own"
    assert events == seen_fresh  # its stored batch and prediction are reported as the network's would be
    assert own.prediction.remembered
    _equal(dataclasses.replace(own.prediction, remembered=False), fresh.prediction)
    # another scan or another model: another result and another network output
    changed = good_volume.replace(data=good_volume.data.copy())
    changed.data[0, 0, 0] ^= 1
    keys = store.keys(good_volume, again, ScanOptions())
    assert all(a != b for a, b in zip(store.keys(changed, again, ScanOptions()), keys))
    model_b = _predictor()
    model_b.model.digest = "e" * 64
    assert all(a != b for a, b in zip(store.keys(good_volume, model_b, ScanOptions()), keys))
    # the options change the result's key, never the network output's
    own_keys = store.keys(good_volume, again, ScanOptions(segmentation="own", gate=False))
    assert own_keys[0] != keys[0] and own_keys[1] == keys[1]
    assert store.keys(good_volume, None, ScanOptions(network=False))[1] is None
    assert len(store) == 2 and store.clear() == 2 and len(store) == 0
    assert store.get_prediction(keys[1]) is None  # forgotten too
    store.close()


def test_a_stored_prediction_is_not_shown_for_a_scan_the_gate_refuses(good_volume, tmp_path, monkeypatch):
    """The network's output of a scan the gate passed with one segmentation is held; with another
    segmentation the gate refuses it: no probability, stored or not, and the network is not asked."""
    import octviewer.structure as structure
    from octviewer.structure import Quality

    store = ResultsStore(tmp_path / "r.sqlite")
    assert analyse_scan(good_volume, _predictor(), store=store).prediction is not None
    gate = structure.gate

    def refusing_gate(volume, source="vendor"):
        verdict, judged, seg = gate(volume, source)
        return dataclasses.replace(verdict, ok=False, reasons=("no disc (test)",)), judged, seg
    monkeypatch.setattr(structure, "gate", refusing_gate)
    again, shown = _predictor(), []
    refused = analyse_scan(good_volume, again, ScanOptions(segmentation="own"), store=store,
                           on_prediction=shown.append, on_batch=shown.append)
    assert refused.refused and refused.prediction is None and shown == [] and again.calls == []
    assert isinstance(refused.quality, Quality) and "no disc (test)" in refused.refusal_text()
    # and read back from the store the same: refused, no probability
    held = analyse_scan(good_volume, _predictor(), ScanOptions(segmentation="own"), store=store)
    assert held.from_store and held.refused and held.prediction is None
    store.close()


def test_a_result_whose_prediction_is_gone_is_computed_again(good_volume, tmp_path):
    store = ResultsStore(tmp_path / "r.sqlite")
    analyse_scan(good_volume, _predictor(), store=store)
    store._db.execute("DELETE FROM predictions")
    again = _predictor()
    result = analyse_scan(good_volume, again, store=store)
    assert not result.from_store and result.prediction is not None
    assert again.calls == ["check", ("predict", None)]
    store.close()


def test_store_is_owner_only(tmp_path):
    store = ResultsStore(tmp_path / "data" / "r.sqlite")
    assert os.stat(store.path).st_mode & 0o077 == 0
    store.close()


@pytest.mark.parametrize("kind", ["damaged", "foreign", "newer", "empty-file"])
def test_unusable_store_is_moved_aside(tmp_path, kind, caplog):
    path = tmp_path / "r.sqlite"
    if kind == "damaged":
        path.write_bytes(b"SQLite format 3\x00" + os.urandom(4000))
    elif kind == "empty-file":
        path.write_bytes(b"")
    else:
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE patients (name TEXT)")
        if kind == "newer":
            ResultsStore(tmp_path / "ok.sqlite").close()
            db.close()
            path.unlink()
            os.replace(tmp_path / "ok.sqlite", path)
            db = sqlite3.connect(path)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        db.commit()
        db.close()
    store = ResultsStore(path)  # never raises
    if kind == "empty-file":  # a zero-byte file is a new database, nothing to move
        assert store.notice == ""
    else:
        assert kind.split("-")[0] in store.notice and "moved to" in store.notice
        aside = [p for p in tmp_path.iterdir() if p.name.startswith("r.sqlite.")]
        assert aside and all(kind in p.name for p in aside if not p.name.endswith(("-wal", "-shm")))
    store.put_study_headers("/study", {"a.dcm": {"patient_id": "P1"}})
    assert store.study_headers("/study") == {"a.dcm": {"patient_id": "P1"}}
    store.close()


def test_migration_from_the_first_schema(tmp_path):
    from octviewer.pipeline import store as store_module

    path = tmp_path / "r.sqlite"
    db = sqlite3.connect(path)
    for sql in store_module.MIGRATIONS[1]:
        db.execute(sql)
    db.execute("PRAGMA user_version = 1")
    db.execute(f"PRAGMA application_id = {store_module.APPLICATION_ID}")
    db.commit()
    db.close()
    store = ResultsStore(path)
    assert store.notice == "" and store.study_headers("/x") == {}
    assert store._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    store.close()


def test_migration_from_schema_2_keeps_its_results_readable(tmp_path):
    """Schema 3 keeps the network's output apart (table predictions); schema 4 vouches for each row
    with a MAC (attack run 4, F11), so a result written by schema 2 or 3 is dropped on the way (a
    cache: computed again), and new ones are kept and read whole."""
    from octviewer.pipeline import store as store_module

    path = tmp_path / "r.sqlite"
    db = sqlite3.connect(path)
    for step in (1, 2):
        for sql in store_module.MIGRATIONS[step]:
            db.execute(sql)
    doc, blob = encode(_stored_result())
    db.execute("INSERT INTO results (key, scan, model, created, doc, arrays) VALUES ('old-1', 'old', '', 0, ?, ?)",
               (doc, blob))
    db.execute("PRAGMA user_version = 2")
    db.execute(f"PRAGMA application_id = {store_module.APPLICATION_ID}")
    db.commit()
    db.close()
    store = ResultsStore(path)
    assert store.notice == "" and store._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
    assert store.get("old-1") is None
    store.put("new-1", _stored_result(), network="net-1")
    assert store.get("new-1").prediction.model_name == "m" and store.get_prediction("net-1").model_name == "m"
    row = store._db.execute("SELECT doc, network FROM results WHERE key = 'new-1'").fetchone()
    assert row[1] == "net-1" and '"Prediction"' not in row[0]  # the prediction is kept once, apart
    store.close()


WRITER = textwrap.dedent("""
    import sys, time
    import numpy as np
    from octviewer.core import Prediction
    from octviewer.pipeline import ScanResult
    from octviewer.pipeline.store import ResultsStore

    store = ResultsStore(sys.argv[1])
    tag = sys.argv[2]
    rng = np.random.default_rng(0)
    for i in range(int(sys.argv[3])):
        n = 200
        p = Prediction(bscan_probability=rng.random(n).astype(np.float32), bscan_vf={}, probability=0.5,
                       cam=rng.random((n, 7, 7)).astype(np.float32), vf={}, threshold=0.5, model_name=tag)
        store.put(f"{tag}-{i}", ScanResult(None, p, None, ()))
        print(i, flush=True)
""")


def _writer(path, tag, count):
    return subprocess.Popen([sys.executable, "-c", WRITER, str(path), tag, str(count)], stdout=subprocess.PIPE,
                            text=True)


def test_two_processes_write_at_once(tmp_path):
    path = tmp_path / "r.sqlite"
    ResultsStore(path).close()
    writers = [_writer(path, tag, 40) for tag in ("viewer", "batch")]
    for w in writers:
        w.communicate(timeout=120)
        assert w.returncode == 0
    store = ResultsStore(path)
    assert len(store) == 80 and store.notice == ""
    assert store.get("batch-39").prediction.model_name == "batch"
    store.close()


def test_sigkill_mid_write_leaves_a_readable_store(tmp_path):
    path = tmp_path / "r.sqlite"
    ResultsStore(path).close()
    writer = _writer(path, "killed", 100000)
    for _ in range(20):  # some rows in: it is writing now
        writer.stdout.readline()
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(timeout=30)
    store = ResultsStore(path)
    assert store.notice == ""  # not moved aside: nothing was damaged
    assert store._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    n = len(store)
    assert n >= 20
    assert store.get("killed-0").prediction.bscan_probability.shape == (200,)
    assert store.get(f"killed-{n - 1}") is not None  # the last committed one is whole
    store.put("after", store.get("killed-0"))
    store.close()


def test_batch_run_and_viewer_share_results(good_volume, tmp_path, monkeypatch):
    """The viewer (a second ResultsStore on the default path) finds what a batch command stored."""
    monkeypatch.setenv("OCTVIEWER_DATA", str(tmp_path))
    first, second = ResultsStore(), ResultsStore()
    assert first.path == second.path == tmp_path / "results.sqlite"
    analyse_scan(good_volume, _predictor(), store=first)
    again = _predictor()
    assert analyse_scan(good_volume, again, store=second).from_store and again.calls == []
    first.close()
    second.close()


def test_clear_store_command(tmp_path, monkeypatch, capsys):
    from octviewer.pipeline.predict_cli import main

    monkeypatch.setenv("OCTVIEWER_DATA", str(tmp_path))
    store = ResultsStore()
    store.put("k-1", dataclasses.replace(_stored_result()))
    store.close()
    assert main(["--clear-store"]) == 0
    assert "1 results removed" in capsys.readouterr().out
    store = ResultsStore()
    assert len(store) == 0
    store.close()


def _stored_result():
    from octviewer.core import Prediction
    from octviewer.pipeline import ScanResult

    p = Prediction(bscan_probability=np.zeros(3, np.float32), bscan_vf={}, cam=np.zeros((3, 7, 7), np.float32),
                   probability=0.1, vf={}, threshold=0.5, model_name="m")
    return ScanResult(None, p, None, ())


def test_stored_value_runs_no_code(tmp_path):
    """A value naming a type outside the fixed list is not rebuilt (and never unpickled)."""
    doc, blob = encode(_stored_result())
    evil = doc.replace('"__type__": "Prediction"', '"__type__": "Popen"')
    store = ResultsStore(tmp_path / "r.sqlite")
    store._db.execute("INSERT INTO results (key, scan, model, created, doc, arrays) VALUES ('x-1', 'x', '', 0, ?, ?)",
                      (evil, blob))
    assert store.get("x-1") is None
    store.close()


def test_study_index_headers_live_in_the_store(tmp_path, monkeypatch):
    """The study index keeps its header records in the results store (no JSON cache any more); a
    damaged store costs a re-read, never the study."""
    from octviewer.study import index_folder
    from octviewer.study.demo import write_demo_study

    monkeypatch.setenv("OCTVIEWER_DATA", str(tmp_path / "data"))
    study = write_demo_study(tmp_path / "study", patients=1, visits=1, preset="tiny", seed=2)
    first = index_folder(study)
    assert first.from_cache == 0 and first.scans
    store = ResultsStore()
    assert len(store.study_headers(str(study.resolve()))) >= len(first.scans)
    store.close()
    assert index_folder(study).from_cache >= len(first.scans)
    (tmp_path / "data" / "results.sqlite").write_bytes(b"SQLite format 3\x00" + b"\xff" * 2000)
    again = index_folder(study)
    assert again.from_cache == 0 and len(again.scans) == len(first.scans)
    assert any(p.name.startswith("results.sqlite.damaged") for p in (tmp_path / "data").iterdir())


def test_store_that_cannot_be_opened_is_a_store_error(tmp_path):
    """A folder where the file should be (or any other open failure) is StoreError, which the
    viewer and the commands turn into "results are not remembered", never a traceback."""
    from octviewer.pipeline.store import StoreError

    (tmp_path / "r.sqlite").mkdir()
    with pytest.raises(StoreError, match="cannot be opened"):
        ResultsStore(tmp_path / "r.sqlite")


def test_a_result_stored_under_a_trusted_key_is_not_served_once_trust_is_withdrawn():
    """Attack run H3: a bent model signed by a trusted key, then the key unpinned: the store gave
    back the rows stored while it was trusted, "normal" without the "not verified" warning."""
    from types import SimpleNamespace

    from octviewer.model.signing import Trust
    from octviewer.pipeline.store import model_identity

    def predictor(trust):
        return SimpleNamespace(model=SimpleNamespace(digest="ab" * 32, trust=trust, path=""), precision="fp32",
                               device=SimpleNamespace(type="cpu"))

    trusted = model_identity(predictor(Trust("trusted", "clinic", "k1")))
    assert trusted != model_identity(predictor(Trust("unknown", "", "k1")))
    assert trusted != model_identity(predictor(Trust("unsigned")))
    assert trusted == model_identity(predictor(Trust("trusted", "clinic", "k1")))
