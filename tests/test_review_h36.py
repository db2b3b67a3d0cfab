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
