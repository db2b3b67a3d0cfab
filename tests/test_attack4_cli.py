"""Attack run 4's findings in the commands, their outputs, the trainer, the results store and the PACS
outbox (issue 27; LOG in the attack run's notes). Each test failed on the code before its fix; none fits a
network."""

from __future__ import annotations

import csv

import numpy as np
import pytest


# -- F15: a pseudonymised row and stderr name no companion file --------------------------------------------
def test_pseudonymised_measure_names_no_companion_file(tmp_path, capsys):
    """An Optovue .oct without its .txt and a B-scan folder with one cut PNG: the file names carry the
    patient's name; the row's error cell and stderr give the key and "a companion file", never them."""
    from PIL import Image

    from octviewer.pipeline.measure_cli import main

    (tmp_path / "Doe_John_1950.oct").write_bytes(b"\0\0\0\0")
    scans = tmp_path / "Scan_0001"
    scans.mkdir()
    for i in range(12):
        Image.fromarray(np.full((64, 48), i * 9, np.uint8)).save(scans / f"Doe_John_1950_b{i:02d}.png")
    cut = scans / "Doe_John_1950_b10.png"
    cut.write_bytes(cut.read_bytes()[:60])
    out = tmp_path / "m.csv"
    assert main([str(tmp_path / "Doe_John_1950.oct"), str(scans), "--out", str(out), "--no-store"]) == 1
    err = capsys.readouterr().err
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == 2 and all(r["quality"].startswith("unreadable") for r in rows)
    for text in [err, *(r["quality"] for r in rows)]:
        assert "Doe" not in text and "1950" not in text, text
    assert all("a companion file" in r["quality"] for r in rows)


# -- F16: evaluate's --out is none of the manifest's scans, and owner-only ----------------------------------
def _manifest(tmp_path, *paths):
    text = "path,patient_id,eye,visit,label\n" + "".join(
        f"{p},P{i},OD,2020-01-01,{'glaucoma' if i % 2 else 'normal'}\n" for i, p in enumerate(paths))
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(text)
    return manifest


@pytest.mark.parametrize("how", ["same", "hard link", "relative"])
def test_evaluate_refuses_an_out_naming_a_scan_of_the_manifest(tmp_path, capsys, monkeypatch, how):
    from trainer.cli import main

    scan = tmp_path / "volumes" / "SYN003.dcm"
    scan.parent.mkdir()
    scan.write_bytes(b"scan bytes")
    out = scan
    if how == "hard link":
        out = tmp_path / "report.json"
        out.hardlink_to(scan)
    elif how == "relative":
        monkeypatch.chdir(tmp_path)
        out = scan.relative_to(tmp_path)
    manifest = _manifest(tmp_path, "volumes/SYN003.dcm")
    rc = main(["evaluate", "--model", str(tmp_path / "m.safetensors"), "--data", str(manifest), "--split", "all",
               "--out", str(out)])
    assert rc == 3
    assert scan.read_bytes() == b"scan bytes"
    assert ("hard link" if how == "hard link" else "input") in capsys.readouterr().err


def test_evaluate_refuses_an_out_inside_a_volume_folder(tmp_path):
    from trainer.cli import main

    folder = tmp_path / "Scan_0001"
    folder.mkdir()
    manifest = _manifest(tmp_path, "Scan_0001")
    assert main(["evaluate", "--model", str(tmp_path / "m.safetensors"), "--data", str(manifest),
                 "--out", str(folder / "report.json")]) == 3
    assert list(folder.iterdir()) == []


def test_evaluate_report_is_owner_only_over_an_existing_file(tmp_path):
    import os

    from trainer.cli import _write_out

    out = tmp_path / "report.json"
    out.write_text("old")
    out.chmod(0o644)
    _write_out(out, "{}")
    assert out.read_text() == "{}" and (os.stat(out).st_mode & 0o777) == 0o600


# -- F11: a value edited in the results store (in range) is not served -------------------------------------
def _prediction(probability=0.9474):
    from octviewer.core import Prediction
    from octviewer.pipeline import ScanResult

    p = Prediction(bscan_probability=np.zeros(3, np.float32), bscan_vf={}, cam=np.zeros((3, 7, 7), np.float32),
                   probability=probability, vf={}, threshold=0.32, model_name="m")
    return ScanResult(None, p, None, ())


def test_store_serves_no_value_edited_in_place(tmp_path):
    from octviewer.pipeline.store import ResultsStore

    store = ResultsStore(tmp_path / "r.sqlite")
    assert store.put("s-1", _prediction(), network="net-1")
    assert store.get("s-1").prediction.probability == pytest.approx(0.9474)
    doc = store._db.execute("SELECT doc FROM predictions WHERE key = 'net-1'").fetchone()[0]
    assert '"probability": 0.9474' in doc
    store._db.execute("UPDATE predictions SET doc = ? WHERE key = 'net-1'",
                      (doc.replace('"probability": 0.9474', '"probability": 0.01'),))
    assert store.get("s-1") is None and store.get_prediction("net-1") is None
    assert "integrity" in store.notice
    store.put("s-1", _prediction(), network="net-1")  # computed again: kept, and read back
    assert store.get("s-1").prediction.probability == pytest.approx(0.9474)
    store.close()


def test_store_row_copied_from_another_workstation_is_not_served(tmp_path, monkeypatch):
    """The MAC's key comes from this workstation's salt: a store (or row) from another one does not pass."""
    from octviewer.pipeline.store import ResultsStore

    store = ResultsStore(tmp_path / "r.sqlite")
    store.put("s-1", _prediction(0.01), network="net-1")
    store.close()
    monkeypatch.setenv("OCTVIEWER_PSEUDONYM_SALT", str(tmp_path / "other.salt"))
    store = ResultsStore(tmp_path / "r.sqlite")
    assert store.get("s-1") is None and store.get_prediction("net-1") is None
    store.close()


# -- F6: a damaged PACS outbox is one line naming it; one bad row holds up no other ------------------------
@pytest.fixture
def pacs_data(tmp_path, monkeypatch):
    monkeypatch.setenv("OCTVIEWER_DATA", str(tmp_path / "data"))
    (tmp_path / "data").mkdir()
    return tmp_path / "data"


@pytest.mark.parametrize("damage", ["random bytes", "other table", "fifo", "dangling link", "link to /dev/zero"])
def test_damaged_pacs_outbox_is_one_line_naming_it(pacs_data, capsys, damage):
    import os
    import sqlite3

    from octviewer.pacs.cli import main

    box = pacs_data / "pacs_outbox.sqlite"
    if damage == "random bytes":
        box.write_bytes(np.random.default_rng(0).bytes(4096))
    elif damage == "other table":
        db = sqlite3.connect(box)
        db.execute("CREATE TABLE outbox (x TEXT)")
        db.commit()
        db.close()
    elif damage == "fifo":
        os.mkfifo(box)
    elif damage == "dangling link":
        box.symlink_to(pacs_data.parent / "elsewhere.sqlite")
    else:
        box.symlink_to("/dev/zero")
    assert main(["outbox"]) == 2
    err = capsys.readouterr().err
    assert "pacs_outbox.sqlite" in err and "Error:" not in err and err.count("\n") == 1
    assert not (pacs_data.parent / "elsewhere.sqlite").exists()


def test_one_non_dicom_row_holds_up_no_other(pacs_data, monkeypatch):
    import sqlite3

    import pydicom

    import octviewer.pacs.outbox as outbox_module
    from octviewer.pacs import Outbox, PacsSettings
    from octviewer.pacs.sr import encapsulated_pdf

    source = pydicom.dcmread("resources/samples/demo_normal_OD.dcm", stop_before_pixels=True)
    good = encapsulated_pdf(source, b"%PDF-1.4\n%%EOF\n")
    outbox = Outbox()
    outbox.queue([good], PacsSettings())
    db = sqlite3.connect(outbox.path)
    db.execute("INSERT INTO outbox (sop_instance_uid, kind, queued, data, archive_ae, archive_host, archive_port) "
               "VALUES ('1.2.3', 'the structured report', '2000-01-01T00:00:00', x'00010203', ?, ?, ?)",
               outbox_module.destination(PacsSettings()))  # queued for the same archive (A12-8)
    db.commit()
    db.close()
    archive = []

    def store(settings, datasets, progress=None):
        for i, ds in enumerate(datasets, start=1):
            archive.append(ds.SOPInstanceUID)
            progress(i, len(datasets))

    monkeypatch.setattr(outbox_module, "store", store)
    outcome = outbox.flush(PacsSettings())
    assert archive == [good.SOPInstanceUID] and (outcome.sent, outcome.waiting) == (1, 1)
    [left] = outbox.pending()
    assert left.sop_instance_uid == "1.2.3" and "not DICOM" in left.last_error


# -- F9: a damaged or changed entry of the trainer's decoded cache is rebuilt, with a note -------------------
@pytest.fixture
def one_cached(tmp_path):
    from octviewer.model import Preprocess
    from trainer.cache import build_cache
    from trainer.manifest import Record

    rec = Record(2, __import__("pathlib").Path("resources/samples/demo_normal_OD.dcm").resolve(), "P1", "OD",
                 "2020-01-01", 0, {}, "", {}, "x")
    pre = Preprocess(size=32)
    [good] = build_cache([rec], pre, tmp_path / "cache", workers=1)
    [entry] = (tmp_path / "cache").glob("*.npy")
    return rec, pre, np.array(good), entry


@pytest.mark.parametrize("damage", ["cut", "empty", "other shape", "well-formed zeros"])
def test_damaged_cache_entry_is_rebuilt_with_a_note(one_cached, capsys, damage):
    from trainer.cache import build_cache

    rec, pre, good, entry = one_cached
    if damage == "cut":
        entry.write_bytes(entry.read_bytes()[:100])
    elif damage == "empty":
        entry.write_bytes(b"")
    elif damage == "other shape":
        np.save(entry, np.full((2, 3), 7.5))
    else:
        np.save(entry, np.zeros((1, 32, 32), np.uint8))
    capsys.readouterr()
    [again] = build_cache([rec], pre, entry.parent, workers=1)
    assert np.array_equal(np.asarray(again), good)
    err = capsys.readouterr().err
    assert f"cache entry {entry.name}" in err and "rebuilt" in err


def test_sound_cache_entry_is_reused_without_a_note(one_cached, capsys):
    from trainer.cache import build_cache

    rec, pre, good, entry = one_cached
    before = entry.stat().st_mtime_ns
    capsys.readouterr()
    [again] = build_cache([rec], pre, entry.parent, workers=1)
    assert np.array_equal(np.asarray(again), good) and entry.stat().st_mtime_ns == before
    assert "rebuilt" not in capsys.readouterr().err


# -- F20: fit --init with another input size or VF modules is one line, exit 2, before the cache ----------
@pytest.mark.parametrize("flags", [["--image-size", "32"],
                                   ["--variant", "semt", "--image-size", "160", "--reg-channels", "16"]])
def test_fit_init_mismatch_is_one_line_before_the_cache(tmp_path, capsys, flags):
    from pathlib import Path

    from trainer.cli import main

    manifest = _manifest(tmp_path, str(Path("resources/samples/demo_normal_OD.dcm").resolve()))
    rc = main(["fit", "--data", str(manifest), "--out", str(tmp_path / "run"), "--init",
               "resources/models/demo_semt.safetensors", "--epochs", "1", "--device", "cpu", *flags])
    err = capsys.readouterr().err
    assert rc == 2 and "--init demo_semt.safetensors" in err and "Traceback" not in err
    assert ("channels" in err) == ("--reg-channels" in flags)
    assert not (tmp_path / "run" / "cache").exists()


# -- F14: --cluster without a port is refused at once ------------------------------------------------------
@pytest.mark.parametrize("address", ["garbage", "tcp://host-without-port", "tcp://10.0.0.5:0", "tcp://h:99999"])
def test_predict_cluster_without_a_port_is_refused_at_once(tmp_path, capsys, address):
    from octviewer.pipeline.predict_cli import main

    with pytest.raises(SystemExit) as info:
        main(["resources/samples/demo_normal_OD.dcm", "--out", str(tmp_path / "p.csv"), "--no-store",
              "--cluster", address])
    assert info.value.code == 2 and "no scheduler address" in capsys.readouterr().err


# -- F21: fit --epochs 0 says so, before anything is read ----------------------------------------------------
@pytest.mark.parametrize("flags", [["--epochs", "0"], ["--epochs", "-2"], ["--epochs", "1", "--stage1-epochs", "-1"]])
def test_fit_with_no_epochs_says_so(tmp_path, capsys, flags):
    from trainer.cli import main

    manifest = _manifest(tmp_path, "a.dcm")
    assert main(["fit", "--data", str(manifest), "--out", str(tmp_path / "run"), "--device", "cpu", *flags]) == 2
    err = capsys.readouterr().err
    assert "epochs" in err and "at least" in err and "resume" not in err


# -- F10: Ctrl-C in octviewer-synth and the demo study writer is one line, exit 130 -------------------------
def _interrupted(*args, **kwargs):
    raise KeyboardInterrupt


def test_synth_ctrl_c_is_one_line(tmp_path, capsys, monkeypatch):
    import octviewer.synth as synth
    from octviewer.synth.cli import main

    monkeypatch.setattr(synth, "generate_cohort", _interrupted)
    assert main(["--out", str(tmp_path / "c"), "--patients", "1", "--preset", "tiny"]) == 130
    err = capsys.readouterr().err
    assert "stopped" in err and "Traceback" not in err


def test_demo_study_ctrl_c_is_one_line(tmp_path, capsys, monkeypatch):
    import octviewer.study.demo as demo

    monkeypatch.setattr(demo, "write_demo_study", _interrupted)
    assert demo.main(["--out", str(tmp_path / "d"), "--patients", "1", "--visits", "1"]) == 130
    assert "stopped" in capsys.readouterr().err


# -- F13: one scan named several ways in one run is one row --------------------------------------------------
def test_one_scan_named_several_ways_is_measured_once(tmp_path, capsys, monkeypatch):
    import os
    import shutil

    from octviewer.pipeline.measure_cli import main

    folder = tmp_path / "f"
    folder.mkdir()
    a = folder / "a.dcm"
    shutil.copy("resources/samples/demo_normal_OD.dcm", a)
    os.link(a, folder / "hard.dcm")
    out = tmp_path / "m.csv"
    monkeypatch.chdir(folder)
    assert main(["a.dcm", "./a.dcm", str(a), str(folder), "hard.dcm", "--out", str(out), "--no-store"]) == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == 1
    assert "5 input(s) name a scan given already" in capsys.readouterr().err


# -- F18: --cam-out inside an input folder: its CAMs are not read back as scans ------------------------------
def test_predict_reads_no_cam_of_its_own_cam_out_as_a_scan(tmp_path, monkeypatch, capsys):
    import shutil

    import octviewer.pipeline.predict_cli as predict_cli
    from octviewer.pipeline.outputs import OutputError

    folder = tmp_path / "in"
    (folder / "cams").mkdir(parents=True)
    shutil.copy("resources/samples/demo_normal_OD.dcm", folder / "a.dcm")
    np.save(folder / "cams" / "vol-0123456789abcdef_cam.npy", np.zeros((64, 160), np.float32))
    seen = []

    def check_outputs(inputs, *args, **kwargs):  # stop the run here: only the inputs are of interest
        seen.extend(inputs)
        raise OutputError("stop")

    monkeypatch.setattr(predict_cli, "check_outputs", check_outputs)
    predict_cli.main([str(folder), "--out", str(tmp_path / "p.csv"), "--cam-out", str(folder / "cams"), "--no-store"])
    assert [p.name for p in seen] == ["a.dcm"]
    assert "1 CAM file(s)" in capsys.readouterr().err
