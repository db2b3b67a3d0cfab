"""Attack run 15, A15-2 and A15-17: one scan found in two places by its decoded content, not only by a shared
DICOM UID: a copy given new UIDs (an anonymiser, a re-keying export) under another patient, as the other eye, or
at another visit. Each through File > Open study folder or Open study manifest, as a user opens a study."""
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


def _rekeyed(source: Path, target: Path, patient: str | None = None, laterality: str = "", date: str = "",
             frame: int | None = None) -> Path:
    """``source`` saved again as an anonymiser or re-keying export writes it: new Study/Series/SOP Instance UIDs,
    pixels untouched; under ``patient``, relabelled (``laterality`` R or L) or re-dated (``date``, YYYYMMDD)
    where asked. ``frame``: that B-scan's pixels changed (another scan, the middle B-scan the same)."""
    import pydicom
    from pydicom.uid import generate_uid

    ds = pydicom.dcmread(source)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SeriesInstanceUID, ds.StudyInstanceUID = generate_uid(), generate_uid()
    if patient:
        ds.PatientID = patient
    if laterality:
        ds.ImageLaterality = laterality
        for group in getattr(ds, "SharedFunctionalGroupsSequence", []):
            for item in getattr(group, "FrameAnatomySequence", []):
                item.FrameLaterality = laterality
    if date:
        for name in ("AcquisitionDateTime", "ContentDate", "StudyDate", "SeriesDate"):
            if name in ds:
                ds.data_element(name).value = date + ("101010" if name == "AcquisitionDateTime" else "")
    if frame is not None:
        pixels = ds.pixel_array.copy()
        pixels[frame, :4, :] ^= 1
        ds.PixelData = pixels.tobytes()
    target.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(target)
    return target


def _text(panel) -> str:
    return " ".join(panel.problems.text().replace("\u200b", "").split())


@pytest.mark.gui
def test_a_copy_with_new_uids_under_another_patient_or_as_the_other_eye_is_listed_and_not_used(
        qtbot, window, monkeypatch, demo, tmp_path):
    """A15-2: A14-18's rule needed the same DICOM UID, so a copy given new UIDs and filed under another patient
    (their tree, OU view and trend showed the first patient's eye as theirs) or as the other eye (the OU view
    compared one image with itself) was used, nothing said; the trainer refused the same files by content."""
    root = Path(shutil.copytree(demo, tmp_path / "study"))
    od = _scans(root, "OD")[0]
    other = next(p for p in (root / "scans").iterdir() if p.is_dir() and p != od.parent)
    _rekeyed(od, other / "OD_copy.dcm", patient=other.name)
    os_ = next(p for p in _scans(root, "OS") if p.parent == od.parent)
    _rekeyed(os_, os_.with_name("OD_was_os.dcm"), laterality="R")  # filed as OD beside the OS original
    panel = open_study_folder(qtbot, window, monkeypatch, root)
    used = {s.path for s in panel.index.scans}
    assert not {str(od), str(other / "OD_copy.dcm"), str(os_), str(os_.with_name("OD_was_os.dcm"))} & used, used
    text = _text(panel)
    assert (f"scans/{od.parent.name}/{od.name}, scans/{other.name}/OD_copy.dcm are one scan (the same pixel data "
            f"under other header fields) filed under the patients {od.parent.name} and {other.name}: whose scan it "
            "is cannot be told; neither is used") in text, text
    one_eye = [line for line in panel.index.problems if "filed as OD and as OS" in line[1]]
    assert {Path(p).name for p, _ in one_eye} == {os_.name, "OD_was_os.dcm"}, text
    assert {f"scans/{od.parent.name}/{os_.name}", f"scans/{od.parent.name}/OD_was_os.dcm"} == set(
        one_eye[0][1].split(" are one scan")[0].split(", ")), one_eye
    assert ("are one scan (the same pixel data under other header fields) filed as OD and as OS: which eye it is "
            "cannot be told; neither is used") in text, text


@pytest.mark.gui
def test_a_copy_with_new_uids_under_another_patient_is_listed_by_open_study_manifest(qtbot, window, monkeypatch,
                                                                                      demo, tmp_path):
    """A15-2, the manifest route: the rows file the original under its patient and the re-keyed copy under
    another; both were used."""
    from PySide6.QtWidgets import QFileDialog

    root = Path(shutil.copytree(demo, tmp_path / "study"))
    od = _scans(root, "OD")[0]
    other = next(p for p in (root / "scans").iterdir() if p.is_dir() and p != od.parent)
    copy = _rekeyed(od, tmp_path / "export" / "scan.dcm", patient=other.name)
    mine = next(p for p in _scans(root, "OS") if p.parent == other)
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(f"path,patient_id,eye,visit\n{od},{od.parent.name},OD,\n{copy},{other.name},OD,\n"
                        f"{mine},{other.name},OS,\n")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(manifest), ""))
    with qtbot.waitSignal(window.study.panel.index_ready, timeout=60000):
        window.menu_actions["open_study_manifest"].trigger()
    panel = window.study.panel
    assert [Path(s.path).name for s in panel.index.scans] == [mine.name], panel.index.scans
    text = _text(panel)
    assert (f"are one scan (the same pixel data under other header fields) filed under the patients "
            f"{od.parent.name} and {other.name}: whose scan it is cannot be told; neither is used") in text, text
    assert "export/scan.dcm" in text and f"scans/{od.parent.name}/{od.name}" in text, text


@pytest.mark.gui
def test_one_scan_re_dated_with_new_uids_is_said_as_the_same_scan_at_two_visits(qtbot, window, monkeypatch, demo,
                                                                               tmp_path):
    """A15-17 with new UIDs: a copy re-dated and re-keyed (a date-shifting anonymiser) was a second visit of the
    eye in the trend, nothing said. Both are used (which date is right cannot be told), with a check on each."""
    root = Path(shutil.copytree(demo, tmp_path / "study"))
    od = _scans(root, "OD")[0]
    _rekeyed(od, od.with_name("OD_shifted.dcm"), date="20050607")
    panel = open_study_folder(qtbot, window, monkeypatch, root)
    assert {str(od), str(od.with_name("OD_shifted.dcm"))} <= {s.path for s in panel.index.scans}
    two = [w for w in panel.index.warnings if w.kind == "two visits"]
    assert {Path(w.path).name for w in two} == {od.name, "OD_shifted.dcm"}, panel.index.warnings
    shown = " ".join(window.study.panel.problems.text().replace("\u200b", "").split())
    date = f"{od.stem[3:7]}-{od.stem[7:9]}-{od.stem[9:11]}"
    assert (f"the same scan as scans/{od.parent.name}/OD_shifted.dcm (the same pixel data under other header "
            f"fields), listed at the visits 2005-06-07, {date}: ") in shown, shown
    assert "a trend would count it twice; which date is right cannot be told" in shown, shown


@pytest.mark.gui
def test_different_scans_of_one_geometry_are_not_called_copies(qtbot, window, monkeypatch, demo, tmp_path):
    """The false-positive side: the demo's scans (one geometry, every eye and visit) open with no check and
    nothing left out; a scan whose middle B-scan equals another patient's (the cheap first sign) but whose other
    B-scans differ is another scan, used, because the whole content is compared before anything is said."""
    root = Path(shutil.copytree(demo, tmp_path / "study"))
    panel = open_study_folder(qtbot, window, monkeypatch, root)
    assert not panel.index.problems and not panel.index.warnings and not panel.index.copies, panel.problems.text()
    od = _scans(root, "OD")[0]
    other = next(p for p in (root / "scans").iterdir() if p.is_dir() and p != od.parent)
    _rekeyed(od, other / "OD_lookalike.dcm", patient=other.name, frame=0)
    panel = open_study_folder(qtbot, window, monkeypatch, root)
    assert {str(od), str(other / "OD_lookalike.dcm")} <= {s.path for s in panel.index.scans}
    assert not panel.index.problems and not [w for w in panel.index.warnings if w.kind == "two visits"], \
        panel.problems.text()


@pytest.mark.gui
def test_a_study_reopens_without_reading_pixels_and_cancel_stops_the_new_decodings(qtbot, window, monkeypatch,
                                                                                  demo, tmp_path):
    """The content check's cost: each scan's sample (one B-scan) and the digests of the scans it matches are kept
    in the study's header cache, so a study reopened in a new window reads no pixels; Cancel is checked before each
    reading, so a first opening that decodes copies stops at the next one (A14-8's rule)."""
    import octviewer.io.content as content
    from octviewer.study import index_folder
    from octviewer.study.index import IndexCancelled

    root = Path(shutil.copytree(demo, tmp_path / "study"))
    od = _scans(root, "OD")[0]
    other = next(p for p in (root / "scans").iterdir() if p.is_dir() and p != od.parent)
    _rekeyed(od, other / "OD_copy.dcm", patient=other.name)
    read = []
    real_frame, real_digest = content._dicom_middle_frame, content.content_digest
    monkeypatch.setattr(content, "_dicom_middle_frame", lambda path: read.append("frame") or real_frame(path))
    monkeypatch.setattr(content, "content_digest", lambda volume: read.append("volume") or real_digest(volume))
    monkeypatch.setattr(content, "_CACHE", {})
    monkeypatch.setattr(content, "_SAMPLES", {})
    panel = open_study_folder(qtbot, window, monkeypatch, root)
    assert read.count("frame") == len(list((root / "scans").rglob("*.dcm"))) and read.count("volume") == 2, read
    assert "OD_copy.dcm" in panel.problems.text().replace("\u200b", "")
    monkeypatch.setattr(content, "_CACHE", {})  # as a new process
    monkeypatch.setattr(content, "_SAMPLES", {})
    read.clear()
    panel = open_study_folder(qtbot, window, monkeypatch, root)
    assert read == [] and "OD_copy.dcm" in panel.problems.text().replace("\u200b", "")

    cancel = {"now": False}

    def decode(volume):  # the user presses Cancel during the first decoding
        cancel["now"] = True
        return real_digest(volume)

    monkeypatch.setattr(content, "content_digest", decode)
    monkeypatch.setattr(content, "_CACHE", {})
    monkeypatch.setattr(content, "_SAMPLES", {})
    _rekeyed(_scans(root, "OS")[0], other / "OS_copy.dcm", patient=other.name)
    with pytest.raises(IndexCancelled):
        index_folder(root, cancel=lambda: cancel["now"], cache_dir=tmp_path / "fresh")


def test_a_sample_key_reads_one_b_scan_and_agrees_with_the_loaded_volume(demo, tmp_path):
    """The cheap first sign reads one B-scan of a DICOM (RLE, JPEG 2000 too) or a Heidelberg .vol; it must equal
    what the loaded volume's middle B-scan gives, so a file and its copy in another format or encoding meet, and a
    volume the key cannot read another way (NumPy) is keyed from the loaded volume."""
    import hashlib
    import os

    import numpy as np
    import pydicom
    from pydicom.uid import RLELossless

    import octviewer.io.content as content
    from octviewer.io import load_volume
    from octviewer.io.dicom import write_dicom

    od = _scans(demo, "OD")[0]
    ds = pydicom.dcmread(od)
    ds.compress(RLELossless, ds.pixel_array)
    ds.save_as(tmp_path / "rle.dcm")
    np.save(tmp_path / "export.npy", load_volume(od).data)
    write_dicom(load_volume(od), tmp_path / "j2k.dcm", compression="jpeg2000")
    samples = os.environ.get("OCTVIEWER_SAMPLES")  # the shared .vol samples, where set
    vols = sorted(Path(samples).rglob("*.vol")) if samples and Path(samples).is_dir() else []
    for path in [od, tmp_path / "rle.dcm", tmp_path / "j2k.dcm", tmp_path / "export.npy", *vols]:
        data = load_volume(path).data
        voxels = content.canonical_voxels(np.asarray(data[data.shape[0] // 2]))
        expected = (f"{content.SAMPLE_KIND}:{'x'.join(str(n) for n in data.shape)}:{voxels.dtype.str}:"
                    f"{hashlib.blake2b(memoryview(voxels).cast('B'), digest_size=16).hexdigest()}")
        assert content.sample_key(path) == expected, path.name
    assert len({content.sample_key(p) for p in (od, tmp_path / "rle.dcm", tmp_path / "j2k.dcm",
                                                tmp_path / "export.npy")}) == 1
