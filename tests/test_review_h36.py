"""Review H36's findings on the attack run 6 fixes (helper H40): an older version's results CSV,
an existing --key-file that is no key file, a synth --out over a clinic's scans, the HEYEX XML eye
and spacing, DICOM PresentationLUTShape INVERSE, and the quadratic "key given twice" check."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from octviewer import load_volume
from octviewer.io.errors import VolumeReadError


# Item 5: a MONOCHROME2 file with PresentationLUTShape INVERSE (shown inverted) loaded as stored, no note.
def _dicom(tmp_path, edit) -> Path:
    import pydicom

    from octviewer.core import OctVolume, Spacing
    from octviewer.io.dicom import write_dicom

    path = tmp_path / "scan.dcm"
    data = (np.random.default_rng(0).random((4, 32, 32)) * 200).astype(np.uint8)
    write_dicom(OctVolume(data=data, spacing=Spacing(0.05, 0.004, 0.01), laterality="OD"), path)
    ds = pydicom.dcmread(path)
    edit(ds)
    ds.save_as(path, enforce_file_format=True)
    return path


def test_dicom_presentation_lut_inverse_is_refused(tmp_path):
    path = _dicom(tmp_path, lambda ds: setattr(ds, "PresentationLUTShape", "INVERSE"))
    with pytest.raises(VolumeReadError, match="PresentationLUTShape is not IDENTITY"):
        load_volume(path)


def test_dicom_presentation_lut_inverse_in_the_functional_groups_is_refused(tmp_path):
    from pydicom.dataset import Dataset

    def edit(ds):
        item = Dataset()
        item.PresentationLUTShape = "INVERSE"
        ds.SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence = [item]

    with pytest.raises(VolumeReadError, match="PresentationLUTShape is not IDENTITY"):
        load_volume(_dicom(tmp_path, edit))


def test_dicom_presentation_lut_identity_loads(tmp_path):
    volume = load_volume(_dicom(tmp_path, lambda ds: setattr(ds, "PresentationLUTShape", "IDENTITY")))
    assert volume.data.shape == (4, 32, 32)


# Item 6: `k in keys[:i]` made the duplicate-key check quadratic: 60,000 keys took 98 s.
def test_config_with_60000_keys_is_checked_in_linear_time(tmp_path):
    from trainer.config import ConfigFileError, read_config_file

    path = tmp_path / "many.yaml"
    path.write_text("".join(f"k{i}: 1\n" for i in range(60_000)) + "k59999: 2\n")
    start = time.monotonic()
    with pytest.raises(ConfigFileError, match="gives 'k59999' twice"):
        read_config_file(path)
    assert time.monotonic() - start < 30  # a generous bound against a quadratic check, not a timing claim


# Item 4: eyepy reads any HEYEX XML Laterality but "R" as OS; a ScaleX of -1 was "no physical spacing".
def _heyex(tmp_path, old: str, new: str) -> Path:
    import os
    import shutil

    source = Path(os.environ.get("OCTVIEWER_SAMPLES", "/work/shared/samples")) / "eyepy_synthetic/heyex_xml/test_volume"
    if not source.is_dir():
        pytest.skip("the eyepy HEYEX XML sample is not here")
    folder = tmp_path / "export"
    shutil.copytree(source, folder)
    xml = folder / "test_dummy.xml"
    text = xml.read_text()
    assert old in text
    xml.write_text(text.replace(old, new))
    return xml


@pytest.mark.parametrize("stated", ["X", "", "OD"])
def test_heyex_xml_laterality_that_is_not_r_or_l_is_an_unknown_eye_with_a_note(tmp_path, stated):
    volume = load_volume(_heyex(tmp_path, "<Laterality>R</Laterality>", f"<Laterality>{stated}</Laterality>"))
    assert volume.laterality is None
    assert "the XML's Laterality is neither R nor L: the eye is unknown" in volume.notes


def test_heyex_xml_laterality_l_is_os(tmp_path):
    volume = load_volume(_heyex(tmp_path, "<Laterality>R</Laterality>", "<Laterality>L</Laterality>"))
    assert volume.laterality == "OS" and volume.notes == ()


def test_heyex_xml_implausible_scale_x_names_the_unknown_spacing(tmp_path):
    volume = load_volume(_heyex(tmp_path, "<ScaleX>0.011819</ScaleX>", "<ScaleX>-1</ScaleX>"))
    assert volume.spacing.ascan_mm is None and volume.spacing.depth_mm is not None
    assert volume.notes == ("the file states no plausible A-scan spacing: those distances are unknown",)


# Item 1: a results CSV of an older version was refused as "not a results CSV of this command" (exit 3),
# so the weekly `octviewer-predict scans --out results.csv` failed after every upgrade.
_STRUCTURE_BEFORE_SEGMENTATION_USED = [  # octviewer.structure.COLUMNS before a0e2a25
    "laterality", "scan_pattern", "quality", "rnfl_global_um", "rnfl_T_um", "rnfl_TS_um", "rnfl_TI_um", "rnfl_N_um",
    "rnfl_NS_um", "rnfl_NI_um", "rnfl_class", "cup_to_disc", "rim_area_mm2", "cup_to_disc_average", "disc_area_mm2",
    "cup_area_mm2", "bmo_mrw_um", "rnfl_unsure_pct", "rnfl_uncertain_sectors"]
_S = _STRUCTURE_BEFORE_SEGMENTATION_USED
_PREDICT_HEADERS = {
    # the header predict wrote at d64e05c (the reviewed range's base): the same as today's
    "d64e05c": None,
    # before a0e2a25 (no segmentation_used), 72c1e0a (no settings), 464eb2f (no model digest and signature)
    "a0e2a25^": ["file", *_S[:3], "probability", "decision", "threshold", "vfi", "md", "psd", *_S[3:], "seconds",
                 "error", "notice", "model_digest", "model_signature", "settings"],
    "72c1e0a^": ["file", *_S[:3], "probability", "decision", "threshold", "vfi", "md", "psd", *_S[3:], "seconds",
                 "error", "notice", "model_digest", "model_signature"],
    "464eb2f^": ["file", *_S[:3], "probability", "decision", "threshold", "vfi", "md", "psd", *_S[3:], "seconds",
                 "error", "notice"],
}


def _csv(path: Path, header: list[str]) -> Path:
    path.write_text(",".join(header) + "\n" + ",".join("x" for _ in header) + "\n")
    return path


@pytest.mark.parametrize("version", sorted(_PREDICT_HEADERS))
def test_predict_out_written_by_an_older_version_may_be_replaced(tmp_path, version):
    from octviewer.pipeline.outputs import check_outputs
    from octviewer.pipeline.predict_cli import COLUMNS, RETIRED_COLUMNS

    out = _csv(tmp_path / "results.csv", _PREDICT_HEADERS[version] or COLUMNS)
    check_outputs([], out, columns=COLUMNS, retired=RETIRED_COLUMNS)  # no OutputError


def test_measure_out_written_by_an_older_version_may_be_replaced(tmp_path):
    from octviewer.pipeline.measure_cli import RETIRED_COLUMNS, _columns
    from octviewer.pipeline.outputs import check_outputs

    out = _csv(tmp_path / "results.csv", ["file", *_S, "notice", "settings"])
    check_outputs([], out, columns=_columns(), retired=RETIRED_COLUMNS)


@pytest.mark.parametrize("header", [
    ["path", "patient_id", "eye", "visit", "label"],        # a study's manifest.csv
    ["file", "laterality", "probability", "patient_name"],  # a column no version wrote
    ["laterality", "file"],                                  # "file" not first
])
def test_out_that_no_version_wrote_is_still_refused(tmp_path, header):
    from octviewer.pipeline.outputs import OutputError, check_outputs
    from octviewer.pipeline.predict_cli import COLUMNS, RETIRED_COLUMNS

    out = _csv(tmp_path / "results.csv", header)
    with pytest.raises(OutputError, match="is not a results CSV of this command"):
        check_outputs([], out, columns=COLUMNS, retired=RETIRED_COLUMNS)


def test_synth_out_holding_a_first_generator_cohort_is_ours(tmp_path):
    """The manifest the first generator (7fd61a1) wrote, with its rnfl_mean_um and damage_location."""
    from octviewer.synth.cli import not_ours

    _csv(tmp_path / "manifest.csv", ["path", "patient_id", "eye", "visit", "label", "vfi", "md", "psd", "split",
                                     "synthetic", "severity", "cup_to_disc", "rnfl_mean_um", "damage_location"])
    assert not_ours(tmp_path) == ""


def test_resume_still_needs_this_versions_columns(tmp_path):
    """--resume keeps rows: those of another version's columns are not this run's (exact header)."""
    from octviewer.pipeline.outputs import OutputError, ResumableCsv
    from octviewer.pipeline.predict_cli import COLUMNS

    _csv(tmp_path / "results.csv.partial", _PREDICT_HEADERS["72c1e0a^"])
    with pytest.raises(OutputError, match="not a results CSV of this command or version"):
        ResumableCsv(tmp_path / "results.csv", COLUMNS, resume=True)


# Item 9: the CSV header was read by io.limits.not_our_csv for --out and by DictReader for --resume,
# differently; one reader (core.files.csv_header) now serves check_outputs, --resume and synth.
def test_one_reader_of_a_csv_header():
    from octviewer.io import limits

    assert not hasattr(limits, "not_our_csv")


# Item 2: `octviewer-predict/measure --key-file STUDY/vf.csv` replaced the study's VF table with the key file.
def test_key_file_naming_a_studys_vf_table_is_refused(tmp_path, capsys):
    from octviewer.pipeline.measure_cli import main

    vf = tmp_path / "study" / "vf.csv"
    vf.parent.mkdir()
    vf.write_text("patient_id,date,eye,vfi\nCLINIC-0042,2024-01-01,OD,90\n")
    before = vf.read_bytes()
    scans = tmp_path / "scans"
    scans.mkdir()
    assert main([str(scans), "--out", str(tmp_path / "r.csv"), "--key-file", str(vf), "--no-store"]) == 3
    assert f"--key-file {vf} exists and is not a key file of this command" in capsys.readouterr().err
    assert vf.read_bytes() == before


def test_key_file_this_command_wrote_may_be_replaced(tmp_path):
    from octviewer.core.pseudonym import write_key_file
    from octviewer.pipeline.outputs import check_outputs
    from octviewer.pipeline.predict_cli import COLUMNS

    key_file = write_key_file(tmp_path / "keys.csv", {"k1": "/scans/a.vol"})
    check_outputs([], tmp_path / "r.csv", files={"--key-file": key_file}, columns=COLUMNS)  # no OutputError


# Item 3: `octviewer-synth --out CLINIC` over a folder of scans without manifest.csv wrote beside them.
def test_synth_refuses_a_clinic_folder_of_scans_without_a_manifest(tmp_path, capsys, monkeypatch):
    import octviewer.synth as synth
    from octviewer.synth.cli import main

    def never(*args, **kwargs):
        raise AssertionError("rendered")

    monkeypatch.setattr(synth, "generate_cohort", never)
    clinic = tmp_path / "clinic"
    (clinic / "scans").mkdir(parents=True)
    (clinic / "scans" / "Doe_John_OD.vol").write_bytes(b"precious")
    (clinic / "vf.csv").write_text("patient_id,date,eye,vfi\nCLINIC-0042,2024-01-01,OD,90\n")
    assert main(["--out", str(clinic), "--patients", "1", "--preset", "tiny"]) == 3
    err = capsys.readouterr().err
    assert f"{clinic} holds 2 file(s) or folder(s) octviewer-synth did not write" in err
    assert "Doe_John" not in err
    assert sorted(p.name for p in clinic.rglob("*")) == ["Doe_John_OD.vol", "scans", "vf.csv"]


def test_trainer_import_and_evaluate_replace_only_their_own_kind_of_file(tmp_path):
    """`octviewer-train import harvard ROOT --out STUDY/vf.csv` replaced a study's VF table with a manifest,
    exit 0, and `evaluate --out` wrote over any file (review H36, item 2, the trainer's part). An existing
    --out is replaced only when it is a manifest (import) or an evaluation report (evaluate)."""
    from trainer.command import OutputPathError, check_out, is_evaluation, is_manifest

    vf = tmp_path / "vf.csv"
    vf.write_text("patient_id,eye,date,md_db\nP1,OD,2020-01-01,-1.0\n")
    with pytest.raises(OutputPathError, match="not a file this command writes"):
        check_out(vf, ours=is_manifest)
    with pytest.raises(OutputPathError, match="not a file this command writes"):
        check_out(vf, ours=is_evaluation)
    assert vf.read_text().startswith("patient_id")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,patient_id,eye,visit,label\nv/a.npz,P1,OD,1,normal\n")
    check_out(manifest, ours=is_manifest)  # a re-import replaces the manifest it wrote
    report = tmp_path / "report.json"
    report.write_text('{"model": "m", "test_volumes": []}')
    check_out(report, ours=is_evaluation)
    check_out(tmp_path / "new.json", ours=is_evaluation)  # a new file, as ever
