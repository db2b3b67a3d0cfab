"""Issue 27, attack runs 13/14 leftovers in the study index: copies of one scan at a visit found by content."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import open_study_folder
from test_study_headers import _scans  # noqa: E402


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """Two SYNTHETIC patients, two yearly visits, both eyes."""
    from octviewer.study.demo import write_demo_study

    return write_demo_study(tmp_path_factory.mktemp("demo") / "study", patients=2, visits=2, preset="tiny", seed=5)


def _reencoded(source: Path, target: Path, rle: bool) -> None:
    """``source`` saved again under a new SOPInstanceUID, its Pixel Data RLE-compressed (lossless) if ``rle``."""
    import pydicom
    from pydicom.uid import RLELossless, generate_uid

    ds = pydicom.dcmread(source)
    pixels = ds.pixel_array
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    if rle:
        ds.compress(RLELossless, pixels)
    ds.save_as(target)


@pytest.mark.gui
def test_a_losslessly_reencoded_copy_at_a_visit_is_used_once_through_open_study_folder(qtbot, window, monkeypatch,
                                                                                        demo, tmp_path):
    """H79's recheck of A12-3: the index compared a DICOM's stored Pixel Data bytes, so a copy re-encoded RLE
    (new UID, the same voxels) was a second scan of its visit, counted twice in the OU view's and the trend's
    mean; the trainer already compared decoded voxels. Both call ``io.content.volume_digest`` now. A repeat
    scan (other voxels) at the same visit is still used."""
    import numpy as np
    import pydicom
    from pydicom.uid import generate_uid

    root = Path(shutil.copytree(demo, tmp_path / "study"))
    od = _scans(root, "OD")[0]
    _reencoded(od, od.with_name("Z_rle_copy.dcm"), rle=True)
    _reencoded(od, od.with_name("Y_plain_copy.dcm"), rle=False)
    ds = pydicom.dcmread(od)
    pixels = np.frombuffer(ds.PixelData, dtype=np.uint8).copy()
    pixels[-10:] ^= 1  # a repeat scan of the visit: other voxels, its own UID
    ds.PixelData, ds.SOPInstanceUID = pixels.tobytes(), generate_uid()
    ds.save_as(od.with_name("X_repeat.dcm"))
    panel = open_study_folder(qtbot, window, monkeypatch, root)
    at_visit = sorted(Path(s.path).name for s in panel.index.scans if Path(s.path).parent == od.parent
                      and s.eye == "OD" and s.visit == next(x.visit for x in panel.index.scans if x.path == str(od)))
    assert at_visit == sorted([od.name, "X_repeat.dcm"]), at_visit
    assert sorted(Path(p).name for p in panel.index.copies) == ["Y_plain_copy.dcm", "Z_rle_copy.dcm"]
    text = panel.problems.text().replace("\u200b", "")
    assert "Z_rle_copy.dcm" in text and "Y_plain_copy.dcm" in text and "listed 3 times at the visit" in text, text


@pytest.mark.gui
def test_the_problems_list_says_which_copy_is_cut_short_and_whose_folder_a_copy_lies_in(qtbot, window, monkeypatch,
                                                                                         demo, tmp_path):
    """Walk-through H82, W13: a copy cut short was "a smaller one may be cut short" (the folder study) where a
    manifest names it "cut short: ..."; a copy of one patient's scan in another patient's folder was only "the
    same scan as ...". The list says which file is cut short and how, and whose folder the copy lies in."""
    root = Path(shutil.copytree(demo, tmp_path / "study"))
    od = _scans(root, "OD")[0]
    data = od.read_bytes()
    od.with_name("Z_cut.dcm").write_bytes(data[: len(data) // 2])  # the same UID, its pixels cut short
    theirs = _scans(root, "OS")[0]
    other = next(p for p in (root / "scans").iterdir() if p.is_dir() and p != theirs.parent)  # another patient's
    shutil.copy(theirs, other / theirs.name)
    panel = open_study_folder(qtbot, window, monkeypatch, root)
    text = " ".join(panel.problems.text().replace("\u200b", "").split())
    assert (f"scans/{od.parent.name}/Z_cut.dcm is cut short: it ends inside its pixel data, {len(data) // 2} of "
            f"{len(data)} bytes") in text, text
    assert "may be cut short" not in text
    assert (f"scans/{other.name}/{theirs.name} lies in the folder of the patient {other.name}") in text, text


@pytest.mark.gui
def test_a_manifests_left_out_rows_are_named_relative_to_its_folder_as_its_checks_are(qtbot, window, monkeypatch,
                                                                                       demo, tmp_path):
    """Walk-through H82, W13: in a manifest study the files left out were named by their absolute paths, the
    scans to check relative to the manifest's folder; both relative now."""
    from PySide6.QtWidgets import QFileDialog

    root = Path(shutil.copytree(demo, tmp_path / "study"))
    od = _scans(root, "OD")[0]
    data = od.read_bytes()
    cut = root / "elsewhere" / "cut.dcm"
    cut.parent.mkdir()
    cut.write_bytes(data[:6000])
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(f"path,patient_id,eye,visit\n{od},{od.parent.name},OD,\n{cut},{od.parent.name},OD,\n")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(manifest), ""))
    with qtbot.waitSignal(window.study.panel.index_ready, timeout=30000):
        window.menu_actions["open_study_manifest"].trigger()
    listed = window.study.panel.problems.text().replace("\u200b", "")
    assert "study/elsewhere/cut.dcm: row 3: cut short" in listed and str(tmp_path) not in listed, listed


@pytest.mark.gui
def test_a_manifest_row_listing_a_device_a_table_or_a_folder_of_dicoms_is_listed_not_used(qtbot, window, monkeypatch,
                                                                                          demo, tmp_path):
    """Attack run 14, A14-5: rows whose path is /dev/zero, the manifest itself or a folder of DICOM files were
    counted scans of their patient, eye and visit with "nothing skipped", refused only when the visit was
    clicked (a study folder lists special files; the trainer refuses such rows). Listed now, not used."""
    from PySide6.QtWidgets import QFileDialog

    root = Path(shutil.copytree(demo, tmp_path / "study"))
    od = _scans(root, "OD")[0]
    patient = od.parent.name
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,patient_id,eye,visit\n"
                        f"{od},{patient},OD,\n/dev/zero,{patient},OD,2001-01-01\n{manifest},{patient},OS,2001-01-01\n"
                        f"{od.parent},{patient},OS,2002-01-01\n")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(manifest), ""))
    with qtbot.waitSignal(window.study.panel.index_ready, timeout=30000):
        window.menu_actions["open_study_manifest"].trigger()
    panel = window.study.panel
    assert [s.path for s in panel.index.scans] == [str(od)]
    listed = " ".join(panel.problems.text().replace("\u200b", "").split())
    assert "/dev/zero: row 3: this is a character device" in listed, listed
    assert "manifest.csv: row 4: unknown file format" in listed, listed
    assert "row 5: a folder without B-scan images, not a scan; it is not used" in listed, listed
    assert "3 rows listing no scan" in " ".join(panel.status.text().replace("\u200b", "").split()), panel.status.text()


@pytest.mark.gui
def test_two_swapped_rows_of_a_one_scan_per_patient_manifest_are_left_out_without_a_used_as_listed_warning(
        qtbot, window, monkeypatch, demo, tmp_path):
    """A13-16 (H87) left the two swapped rows' scans out, listed; their "the row's is used" warnings stayed in
    the list under "Check (used as listed)" as well, saying the opposite."""
    from PySide6.QtWidgets import QFileDialog

    ods = _scans(demo, "OD")
    a = ods[0]
    b = next(p for p in ods if p.parent.name != a.parent.name)  # the other patient's
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(f"path,patient_id,eye,visit\n{a},{b.parent.name},OD,\n{b},{a.parent.name},OD,\n")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(manifest), ""))
    with qtbot.waitSignal(window.study.panel.index_ready, timeout=30000):
        window.menu_actions["open_study_manifest"].trigger()
    panel = window.study.panel
    listed = " ".join(panel.problems.text().replace("\u200b", "").split())
    assert panel.index.scans == [] and listed.count("(rows swapped?): another patient's scan is not used") == 2, listed
    assert "the row's is used" not in listed and not panel.index.warnings, listed


def _repeat_scan(od: Path, name: str) -> Path:
    """A repeat acquisition of ``od``'s visit: other voxels, its own UIDs (same pattern and B-scan count)."""
    import numpy as np
    import pydicom
    from pydicom.uid import generate_uid

    ds = pydicom.dcmread(od)
    pixels = np.frombuffer(ds.PixelData, dtype=np.uint8).copy()
    pixels[-10:] ^= 1
    ds.PixelData, ds.SOPInstanceUID = pixels.tobytes(), generate_uid()
    ds.save_as(od.with_name(name))
    return od.with_name(name)


@pytest.mark.gui
def test_repeat_scans_are_decoded_once_a_study_reopens_from_its_header_cache(qtbot, window, monkeypatch, demo,
                                                                            tmp_path):
    """Attack run 14, A14-8: since copies are compared by decoded voxels, every repeat scan of a visit was
    decoded at EVERY opening of the study (the digests lived for the process only): ~0.8 s per 40 MB pair.
    Their digests now live in the study's header cache; opened again (a new process: the in-process cache
    emptied), nothing is decoded."""
    import octviewer.io.content as content

    root = Path(shutil.copytree(demo, tmp_path / "study"))
    for od in _scans(root, "OD")[:2]:
        _repeat_scan(od, f"Z_{od.stem}_repeat.dcm")
    decoded = []
    real = content.content_digest
    monkeypatch.setattr(content, "content_digest", lambda volume: decoded.append(1) or real(volume))
    monkeypatch.setattr(content, "_CACHE", {})
    panel = open_study_folder(qtbot, window, monkeypatch, root)
    first = len(decoded)
    assert first >= 4 and len([s for s in panel.index.scans if s.path.endswith("_repeat.dcm")]) == 2, first
    monkeypatch.setattr(content, "_CACHE", {})  # as a new process
    open_study_folder(qtbot, window, monkeypatch, root)
    assert len(decoded) == first  # served from the header cache


def test_cancel_stops_indexing_between_the_decodings_of_repeat_scans(demo, tmp_path, monkeypatch):
    """Attack run 14, A14-8: Cancel was not checked while repeat scans were decoded (5.4 s for 6 pairs of
    Cirrus-size cubes with Cancel pressed at 1 s). It is checked before each decoding."""
    import octviewer.io.content as content
    from octviewer.study import index_folder
    from octviewer.study.index import IndexCancelled

    root = Path(shutil.copytree(demo, tmp_path / "study"))
    for od in _scans(root, "OD"):
        _repeat_scan(od, f"Z_{od.stem}_repeat.dcm")
    cancel = {"now": False}
    real = content.content_digest

    def decode(volume):  # the user presses Cancel during the first decoding
        cancel["now"] = True
        return real(volume)

    monkeypatch.setattr(content, "content_digest", decode)
    monkeypatch.setattr(content, "_CACHE", {})
    with pytest.raises(IndexCancelled):
        index_folder(root, cancel=lambda: cancel["now"], cache_dir=tmp_path / "cache")


@pytest.mark.gui
def test_a_scan_whose_header_names_two_patients_is_refused_by_the_manifest_study_as_by_the_folder(
        qtbot, window, monkeypatch, demo, tmp_path):
    """Attack run 14, A14-9: a header PatientID with two values is refused by a study folder, the viewer and PACS
    send; listed by a manifest row, it was that row's patient's visit with no word (check_header took the
    header's ID as absent)."""
    import pydicom
    from PySide6.QtWidgets import QFileDialog

    od = _scans(demo, "OD")[0]
    two = tmp_path / "two.dcm"
    ds = pydicom.dcmread(od)
    ds.PatientID = [od.parent.name, "SOMEONE-ELSE"]
    ds.save_as(two)
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(f"path,patient_id,eye,visit\n{two},{od.parent.name},OD,\n")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(manifest), ""))
    with qtbot.waitSignal(window.study.panel.index_ready, timeout=30000):
        window.menu_actions["open_study_manifest"].trigger()
    listed = " ".join(window.study.panel.problems.text().replace("\u200b", "").split())
    assert window.study.panel.index.scans == [], listed
    assert "row 2 lists a scan whose PatientID holds 2 values: one scan belongs to one patient; it is not used" \
        in listed, listed


@pytest.mark.gui
def test_two_different_scans_of_a_visit_under_one_uid_are_both_used_and_the_clash_is_said(qtbot, window, monkeypatch,
                                                                                         demo, tmp_path):
    """Attack run 14, A14-16: a scan sharing another's SOPInstanceUID was "the same scan" and left out, though
    its images differ (an export reusing UIDs): maybe the good repeat was dropped. Both are used now, said; a
    copy cut short under the same UID is still left out (A10-5)."""
    import pydicom

    root = Path(shutil.copytree(demo, tmp_path / "study"))
    od = _scans(root, "OD")[0]
    repeat = _repeat_scan(od, "Z_repeat.dcm")
    ds = pydicom.dcmread(repeat)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.dcmread(od).SOPInstanceUID
    ds.save_as(repeat)
    data = od.read_bytes()
    od.with_name("Y_cut.dcm").write_bytes(data[: len(data) // 2])
    panel = open_study_folder(qtbot, window, monkeypatch, root)
    used = sorted(Path(s.path).name for s in panel.index.scans if Path(s.path).parent == od.parent)
    assert od.name in used and "Z_repeat.dcm" in used and "Y_cut.dcm" not in used, used
    text = " ".join(panel.problems.text().replace("\u200b", "").split())
    assert "Z_repeat.dcm share a DICOM UID but hold different images (an export that reuses UIDs?); both are used" \
        in text and "Y_cut.dcm is cut short" in text, text


@pytest.mark.gui
def test_a_scan_date_field_of_two_values_gives_no_visit_date_in_the_study_as_in_the_viewer(qtbot, window,
                                                                                           monkeypatch, demo,
                                                                                           tmp_path):
    """Attack run 14, A14-15: the study index read StudyDate before ContentDate and took a field of two values'
    other field, filing the scan at a date the viewer did not give it. One rule (io.dicom.scan_date): a field of
    several values gives no date, said in the problems list."""
    import pydicom

    from octviewer.io import load_volume

    root = Path(shutil.copytree(demo, tmp_path / "study"))
    od = _scans(root, "OD")[0]
    ds = pydicom.dcmread(od)
    ds.AcquisitionDateTime = ["20190924101010", "20200101101010"]
    ds.save_as(od)
    panel = open_study_folder(qtbot, window, monkeypatch, root)
    [scan] = [s for s in panel.index.scans if s.path == str(od)]
    assert scan.date is None and load_volume(od).acquired is None
    text = " ".join(panel.problems.text().replace("\u200b", "").split())
    assert "AcquisitionDateTime holds 2 values (20190924101010\\20200101101010): one field, one value; the date is " \
           "unknown" in text, text


@pytest.mark.gui
def test_one_scan_filed_as_both_eyes_or_under_two_patients_is_listed_and_not_used(qtbot, window, monkeypatch, demo,
                                                                               tmp_path):
    """Attack run 14, A14-18: a copy of a scan with its laterality relabelled (the same UID and images) was the OS
    scan of the visit beside the OD original, and a copy re-saved under another patient's ID that patient's scan:
    copies were looked for within one eye's visit only. Neither place can be told right: both listed, not used."""
    import pydicom

    root = Path(shutil.copytree(demo, tmp_path / "study"))
    od = _scans(root, "OD")[0]
    ds = pydicom.dcmread(od)
    ds.ImageLaterality = "L"
    for frame in getattr(ds, "SharedFunctionalGroupsSequence", []):
        for item in getattr(frame, "FrameAnatomySequence", []):
            item.FrameLaterality = "L"
    ds.save_as(od.with_name("relabelled.dcm"))
    other = next(p for p in _scans(root, "OD") if p.parent != od.parent)
    ds = pydicom.dcmread(other)
    ds.PatientID = od.parent.name
    ds.save_as(od.with_name("refiled.dcm"))
    panel = open_study_folder(qtbot, window, monkeypatch, root)
    used = {Path(s.path).name for s in panel.index.scans if Path(s.path).parent == od.parent}
    assert not {"relabelled.dcm", "refiled.dcm", od.name} & used, used
    assert str(other) not in {s.path for s in panel.index.scans}
    text = " ".join(panel.problems.text().replace("\u200b", "").split())
    assert "relabelled.dcm are one scan (the same DICOM UID and images) filed as OD and as OS: which eye it is " \
           "cannot be told; neither is used" in text, text
    assert "refiled.dcm, " in text and "are one scan (the same DICOM UID and images) filed under the patients " \
        f"{od.parent.name} and {other.parent.name}: whose scan it is cannot be told; neither is used" in text, text


@pytest.mark.gui
def test_two_people_under_one_patient_id_are_said_on_each_scan(qtbot, window, monkeypatch, demo,
                                                                                    tmp_path):
    """Attack run 14, A14-19 (the study's side): scans under one PatientID from two hospitals' ID ranges (another
    issuer, name, birth date) were filed as one patient, the OU view pairing one person's right eye with the
    other's left. Each scan carries a check now (the OU view shows it above the eyes): said, not hidden, since one
    name written two ways must not hide a patient's history (attack run 15, A15-1, A15-16); one person's exports
    whose names differ only in a middle name, case or punctuation get no check."""
    import pydicom

    root = tmp_path / "study" / "scans"
    root.mkdir(parents=True)
    od, os_ = _scans(demo, "OD")[0], _scans(demo, "OS")[0]
    people = ((od, "a.dcm", ("ALPHA^ANN", "", "")), (os_, "z.dcm", ("ZULU^ZED", "HOSP_B", "19400101")),
              (od, "c.dcm", ("DOE^JOHN", "", "19500101")), (os_, "d.dcm", ("Doe^John^A", "", "")),
              (_scans(demo, "OD")[1], "e.dcm", ("DOE, JOHN", "", "19500101")))  # one person, two devices' ways
    for source, name, person in people:
        ds = pydicom.dcmread(source)
        ds.PatientID = "MRN1000" if name in ("a.dcm", "z.dcm") else "MRN2000"
        ds.PatientName, ds.IssuerOfPatientID, ds.PatientBirthDate = person
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
        pixels = bytearray(ds.PixelData)  # each its own scan: one image under two IDs is one scan in two places
        pixels[len(name)] ^= 1 + ord(name[0]) % 7
        ds.PixelData = bytes(pixels)
        ds.save_as(root / name)
    panel = open_study_folder(qtbot, window, monkeypatch, root.parent)
    assert len(panel.index.scans) == 5
    people = {Path(w.path).name: w.text for w in panel.index.warnings if w.kind == "people"}
    assert sorted(people) == ["a.dcm", "z.dcm"], people
    assert people["a.dcm"].startswith('the scans of the patient "MRN1000" name different people in their headers')
    text = " ".join(panel.problems.text().replace("\u200b", "").split())
    assert "name different people in their headers" in text and "ZULU" not in text and "1940" not in text, text


@pytest.mark.gui
def test_a_repeat_scan_of_a_visit_is_said_and_which_copy_is_used(qtbot, window, monkeypatch, demo, tmp_path):
    """Walk-through H91: W12, a repeat scan of an eye at a visit was mentioned nowhere while the OU view and the
    trend used the mean of the two; W11, "it is used once" did not say which file, nor for whom a copy lying in
    another patient's folder counts."""
    root = Path(shutil.copytree(demo, tmp_path / "study"))
    od = _scans(root, "OD")[0]
    _repeat_scan(od, "Z_repeat.dcm")
    theirs = _scans(root, "OS")[0]
    other = next(p for p in (root / "scans").iterdir() if p.is_dir() and p != theirs.parent)
    shutil.copy(theirs, other / "copy.dcm")
    panel = open_study_folder(qtbot, window, monkeypatch, root)
    text = " ".join(panel.problems.text().replace("\u200b", "").split())
    assert "OD: 2 scans at the visit" in text, text
    assert "the OU view averages their network results and shows one scan's" in text, text
    assert "the trend averages their VF estimates and RNFL" in text, text  # A16-9: not "one scan's" there
    assert "it is used once: this file, not the copy" in text, text
    assert (f"lies in the folder of the patient {other.name}: it counts for {theirs.parent.name}, whose scan its "
            f"header says it is, not for {other.name}") in text, text


@pytest.mark.gui
def test_one_scan_re_dated_in_its_header_is_said_as_the_same_scan_at_two_visits(qtbot, window, monkeypatch, demo,
                                                                              tmp_path):
    """Attack run 15, A15-17: a scan saved again with another date (the same UID and pixels: a date-shifting
    export) was a second visit of the eye in a study folder's trend, nothing said; a manifest study warned."""
    import pydicom

    root = Path(shutil.copytree(demo, tmp_path / "study"))
    od = _scans(root, "OD")[0]
    ds = pydicom.dcmread(od)
    for name in ("AcquisitionDateTime", "ContentDate", "StudyDate"):
        if name in ds:
            ds.data_element(name).value = "20050607" + ("101010" if name == "AcquisitionDateTime" else "")
    ds.save_as(od.with_name("redated.dcm"))
    panel = open_study_folder(qtbot, window, monkeypatch, root)
    two = [w for w in panel.index.warnings if w.kind == "two visits"]
    assert {Path(w.path).name for w in two} == {od.name, "redated.dcm"}, panel.index.warnings
    assert "a trend would count it twice" in two[0].text


@pytest.mark.gui
@pytest.mark.samples
def test_a_vol_and_a_dicom_of_two_birth_dates_under_one_id_are_said(qtbot, window, monkeypatch, demo, tmp_path):
    """Attack run 15, A15-8: the 'two people under one ID' check read DICOM headers only; a Heidelberg .vol and a
    DICOM of another birth date under the same patient ID were one patient without a word."""
    import os

    import pydicom

    from octviewer.io.heidelberg import vol_patient_id

    sample = next(Path(os.environ["OCTVIEWER_SAMPLES"]).rglob("Willis_B_716_2.vol"))
    root = tmp_path / "study"
    root.mkdir()
    shutil.copy(sample, root / "circle.vol")
    ds = pydicom.dcmread(_scans(demo, "OD")[0])
    ds.PatientID = vol_patient_id(sample.read_bytes()[:2048])
    ds.PatientBirthDate = "19000102"
    ds.save_as(root / "cube.dcm")
    panel = open_study_folder(qtbot, window, monkeypatch, root)
    people = {Path(w.path).name for w in panel.index.warnings if w.kind == "people"}
    assert people == {"circle.vol", "cube.dcm"}, panel.index.warnings


@pytest.mark.gui
def test_a_measured_field_of_another_person_under_the_patients_id_is_not_shown_as_theirs(qtbot, window, monkeypatch,
                                                                                        demo, tmp_path):
    """Attack run 15, A15-15: a perimeter DICOM under the patient's ID but of another person (other issuer, name,
    birth date) was shown as the patient's measured VF; the person check covered scans only."""
    import pydicom

    root = Path(shutil.copytree(demo, tmp_path / "study"))
    fields = sorted(root.rglob("perimetry/*.dcm"))
    assert fields
    patient = pydicom.dcmread(fields[0]).PatientID
    for scan in (root / "scans" / patient).glob("*.dcm"):
        ds = pydicom.dcmread(scan)
        ds.PatientName, ds.PatientBirthDate = "ALPHA^ANN", "19500101"
        ds.save_as(scan)
    ds = pydicom.dcmread(fields[0])
    ds.PatientName, ds.PatientBirthDate, ds.IssuerOfPatientID = "ZULU^ZED", "19400101", "HOSP_B"
    ds.save_as(fields[0])
    panel = open_study_folder(qtbot, window, monkeypatch, root)
    assert str(fields[0]) not in {m.source for m in panel.index.vf}
    text = " ".join(panel.problems.text().replace("\u200b", "").split())
    assert "its header names another person (another birth date) than this patient's scans; it is not used" in text \
        and "ZULU" not in text, text


def test_a_manifest_row_pointing_at_a_visual_field_dicom_is_not_a_scan(demo, tmp_path):
    """Attack run 15, A15-13: a study manifest row pointing at a perimeter's DICOM was listed as the OD scan of
    its visit ("nothing skipped"); the folder index and the trainer refuse it."""
    from octviewer.study.index import index_manifest

    field = sorted(demo.rglob("perimetry/*.dcm"))[0]
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(f"path,patient_id,eye,visit\n{field},P1,OD,\n")
    index = index_manifest(manifest)
    assert index.scans == [] and index.problems == [(str(field), "row 2: not an OCT scan (a visual field); it is "
                                                                 "not used")], index.problems
