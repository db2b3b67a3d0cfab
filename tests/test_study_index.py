"""Study indexing from headers: grouping, mixed folders, header-only reading, the cache, cancel, privacy."""

import csv
import logging
import os
import shutil
import stat
import threading

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from octviewer.study import IndexCancelled, index_folder, index_manifest
from octviewer.study.demo import write_demo_study


@pytest.fixture(scope="module")
def demo_study(tmp_path_factory):
    return write_demo_study(tmp_path_factory.mktemp("study") / "study", patients=2, visits=3, preset="tiny", seed=4)


@pytest.fixture
def study_copy(demo_study, tmp_path):
    return shutil.copytree(demo_study, tmp_path / "study")


def _ct_file(path):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = CTImageStorage, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality, ds.PatientID = CTImageStorage, generate_uid(), "CT", "CT-PAT"
    ds.save_as(path, enforce_file_format=True)


def test_folder_groups_patients_visits_and_eyes_from_headers(demo_study, tmp_path):
    index = index_folder(demo_study, cache_dir=tmp_path / "cache")
    assert index.patients() == ["DEMO04-000", "DEMO04-001"]
    for pid in index.patients():
        visits = index.visits(pid)
        assert len(visits) == 3
        assert [v.date for v in visits] == sorted(v.date for v in visits)
        for visit in visits:
            scans = index.scans_for(pid, visit.label)
            assert sorted(s.eye for s in scans) == ["OD", "OS"]
            assert all(s.scan_pattern == "volume" and s.n_bscans == 16 and s.synthetic for s in scans)
            # the scan's own date is in its file name (written by the demo): the header was read
            assert all(os.path.basename(s.path).endswith(f"{s.date:%Y%m%d}.dcm") for s in scans)
            for eye in ("OD", "OS"):
                vf = index.measured_vf(pid, eye, visit)
                assert vf is not None and vf.eye == eye and abs((vf.date - visit.date).days) <= 14
    scan = index.scans_for("DEMO04-001", eye="OS")[1]
    assert index.measured_vf_for_scan(scan.path) == index.measured_vf("DEMO04-001", "OS", index.visits("DEMO04-001")[1])
    assert index.measured_vf_for_scan(tmp_path / "elsewhere.dcm") is None
    # patient 0 has OPV files, patient 1 a CSV: 2 patients x 2 eyes x 3 visits measured fields
    assert len(index.vf) == 12
    assert {os.path.basename(m.source) for m in index.vf if m.patient_id == "DEMO04-001"} == {"visual_fields.csv"}
    assert not index.skipped


def test_the_same_field_in_a_table_and_an_opv_file_counts_once(study_copy, tmp_path):
    before = index_folder(study_copy, cache_dir=tmp_path / "cache")
    m = next(m for m in before.vf if m.source.endswith(".dcm"))
    with open(study_copy / "visual_fields.csv", "a") as f:
        f.write(f"{m.patient_id},{m.eye},{m.date.isoformat()},{m.vfi},{m.md_db},{m.psd_db}\n")
    after = index_folder(study_copy, cache_dir=tmp_path / "cache")
    assert len(after.vf) == len(before.vf)
    [kept] = [x for x in after.vf if (x.patient_id, x.eye, x.date) == (m.patient_id, m.eye, m.date)]
    assert kept.source == m.source


def test_mixed_folder_is_skipped_with_counts_never_an_error(study_copy, tmp_path):
    _ct_file(study_copy / "ct.dcm")
    (study_copy / "notes.txt").write_text("not a scan")
    (study_copy / "broken.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\xff" * 40)
    index = index_folder(study_copy, cache_dir=tmp_path / "cache")
    assert len(index.scans) == 12
    assert index.skipped["non-OCT DICOM files"] == 1
    assert index.skipped["other files"] + index.skipped["unreadable files"] == 2
    assert "skipped" in index.skipped_text()
    assert "CT-PAT" not in index.patients()


def test_headers_only_a_truncated_pixel_block_still_indexes(study_copy, tmp_path):
    scan = sorted((study_copy / "scans").rglob("*.dcm"))[0]
    raw = scan.read_bytes()
    scan.write_bytes(raw[: len(raw) - 60_000])  # pixel data cut short; the header is intact
    from octviewer import VolumeReadError, load_volume
    with pytest.raises(VolumeReadError):
        load_volume(scan)
    index = index_folder(study_copy, cache_dir=tmp_path / "cache")
    assert str(scan) in {s.path for s in index.scans}


def test_cache_makes_reopening_read_nothing_and_notices_changes(study_copy, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = index_folder(study_copy, cache_dir=cache)
    files = list(cache.iterdir())
    assert len(files) == 1 and stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert not any(p.name.endswith(".json") for p in study_copy.rglob("*"))  # never written into the folder

    import octviewer.study.index as index_module
    reads = []
    real = index_module.read_record
    monkeypatch.setattr(index_module, "read_record", lambda p: reads.append(p) or real(p))
    second = index_folder(study_copy, cache_dir=cache)
    assert reads == [] and second.from_cache == len(first.scans) + 6  # 6 OPV files of patient 0
    assert [s.path for s in second.scans] == [s.path for s in first.scans]

    changed = sorted((study_copy / "scans").rglob("*.dcm"))[0]
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))
    index_folder(study_copy, cache_dir=cache)
    assert reads == [changed]


def test_cancel_stops_and_keeps_what_was_read(study_copy, tmp_path):
    cancel = threading.Event()
    seen = []

    def progress(done, total):
        seen.append(done)
        if done == 3:
            cancel.set()

    with pytest.raises(IndexCancelled):
        index_folder(study_copy, progress=progress, cancel=cancel, cache_dir=tmp_path / "cache")
    assert seen == [1, 2, 3]
    again = index_folder(study_copy, cache_dir=tmp_path / "cache")
    assert again.from_cache == 3


def test_logs_carry_no_patient_identifier_or_file_name(study_copy, tmp_path, caplog):
    (study_copy / "broken.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\xff" * 40)  # pydicom complains
    with caplog.at_level(logging.DEBUG):
        index = index_folder(study_copy, cache_dir=tmp_path / "cache")
        index_folder(study_copy, cache_dir=tmp_path / "cache")
    assert caplog.records, "indexing should log its counts"
    text = "\n".join(r.getMessage() for r in caplog.records)
    for pid in index.patients():
        assert pid not in text
    assert "broken.dcm" not in text and str(study_copy) not in text


def test_manifest_and_folder_agree_on_a_generated_cohort(tmp_path):
    from octviewer.synth import generate_cohort

    manifest = generate_cohort(tmp_path / "cohort", patients=3, preset="tiny", seed=11)
    by_manifest = index_manifest(manifest)
    by_folder = index_folder(manifest.parent, cache_dir=tmp_path / "cache")
    with open(manifest) as f:
        rows = list(csv.DictReader(f))
    assert by_manifest.patients() == sorted({r["patient_id"] for r in rows})
    assert sorted(s.path for s in by_manifest.scans) == sorted(s.path for s in by_folder.scans)
    assert {(s.path, s.patient_id, s.eye, s.visit) for s in by_manifest.scans} == \
        {(s.path, s.patient_id, s.eye, s.visit) for s in by_folder.scans}
    with_vf = {(r["patient_id"], r["eye"], r["visit"]) for r in rows if r["md"]}
    assert {(m.patient_id, m.eye, m.visit) for m in by_manifest.vf} == with_vf
    assert by_folder.skipped["other files"] == len(rows)  # the truth/*.npz files, counted not failed


def test_a_manifest_in_the_folder_describes_files_without_headers(tmp_path):
    from octviewer.synth import generate_cohort

    manifest = generate_cohort(tmp_path / "npz", patients=2, preset="tiny", seed=5, fmt="npz")
    with open(manifest) as f:
        rows = list(csv.DictReader(f))
    index = index_folder(manifest.parent, cache_dir=tmp_path / "cache")
    assert sorted(s.path for s in index.scans) == sorted(str((manifest.parent / r["path"]).resolve()) for r in rows)
    assert {(s.patient_id, s.eye, s.visit) for s in index.scans} == {(r["patient_id"], r["eye"], r["visit"])
                                                                     for r in rows}


def test_manifest_lists_missing_files_as_skipped(tmp_path):
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,patient_id,eye,visit,label,vfi,md,psd\nnone.dcm,P1,OD,2020-01-01,normal,99,0.1,1.2\n")
    index = index_manifest(manifest)
    assert index.scans == [] and index.skipped["listed files missing"] == 1


def test_heidelberg_vol_header(samples_dir, tmp_path):
    from octviewer import load_volume

    source = samples_dir / "heidelberg_vol" / "valid.vol"
    if not source.exists():
        pytest.skip("valid.vol not in the samples")
    folder = tmp_path / "vol"
    folder.mkdir()
    os.symlink(source.resolve(), folder / "valid.vol")  # OCTVIEWER_SAMPLES may be relative (CI)
    index = index_folder(folder, cache_dir=tmp_path / "cache")
    volume = load_volume(source)
    [scan] = index.scans
    assert scan.eye == (volume.laterality or "")
    assert scan.n_bscans == volume.n_bscans and scan.scan_pattern == volume.scan_pattern
    if volume.acquired is not None:
        assert scan.date == (volume.acquired.date() if hasattr(volume.acquired, "date") else volume.acquired)


def test_study_package_imports_no_qt_and_no_torch():
    import subprocess
    import sys

    code = ("import sys, octviewer.study, octviewer.study.demo, octviewer.study.ou\n"
            "print(','.join(m for m in ('PySide6', 'pyqtgraph', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_demo_study_command_line(tmp_path, capsys):
    from octviewer.study.demo import main

    assert main(["--out", str(tmp_path / "d"), "--patients", "1", "--visits", "2", "--preset", "tiny"]) == 0
    assert "SYNTHETIC" in capsys.readouterr().out
    index = index_folder(tmp_path / "d", cache_dir=tmp_path / "cache")
    assert len(index.scans) == 4 and len(index.vf) == 4  # patient 0 gets OPV files
    assert all(m.source.endswith(".dcm") for m in index.vf)


def test_indexing_prints_no_file_names_to_stderr(tmp_path):
    """pydicom warns with the file's path (clinic file names carry patient IDs) on broken files."""
    import subprocess
    import sys

    import numpy as np

    from octviewer import save_volume
    from octviewer.core import OctVolume, Spacing

    volume = OctVolume(np.random.default_rng(0).integers(0, 255, (4, 32, 32), dtype=np.uint8),
                       Spacing(0.1, 0.01, 0.01), patient_id="PAT-SECRET")
    path = save_volume(volume, tmp_path / "study" / "PAT-SECRET_scan.dcm", compression="jpeg2000")
    data = path.read_bytes()
    (tmp_path / "study" / "PAT-SECRET_broken.dcm").write_bytes(data[:-40])
    (tmp_path / "study" / "PAT-SECRET_other.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\xff" * 40)
    code = ("import sys; from octviewer.study import index_folder; "
            "index_folder(sys.argv[1], cache_dir=sys.argv[2])")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "study"), str(tmp_path / "cache")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "PAT-SECRET" not in out.stderr + out.stdout
