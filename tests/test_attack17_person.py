"""Attack run 17 (H106), A17-1, A17-2, A17-5: false positives of the "whole other name" rule (A16-14): one person's
name with its parts in other components (DOE^JOHN / JOHN^DOE, NGUYEN^VAN AN / NGUYEN VAN^AN), two transliterations
beside the same birth date (MOHAMMED^AHMED / MUHAMMAD^AHMAD), or UTF-8 name bytes in a header that declares no
character set (MÜLLER read as "MÃ\\x9cLLER") made another person; and a name written without "^" escaped it (A17-2,
fixed with A16-17). The patient's own measured VF was left out as another person's."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("one, two, birth, same", [
    ("DOE^JOHN", "JOHN^DOE", "", True), ("NGUYEN^VAN AN", "NGUYEN VAN^AN", "", True),
    ("MOHAMMED^AHMED", "MUHAMMAD^AHMAD", "19500101", True),  # said (the name tier), not refused: the birth date ties
    ("MOHAMMED^AHMED", "MUHAMMAD^AHMAD", "", False),  # nothing ties them: A16-14's rule
    ("MÜLLER^JÜRGEN", "M\u00c3\u009cLLER^J\u00c3\u009cRGEN", "", True),  # undeclared UTF-8 read as Latin-1
    ("ALPHA^ANN", "ZULU ZED", "", False),  # A17-2: without "^"
    ("鈴木^花子", "ПЕТРОВА^МАРИЯ", "", False), ("YAMADA^TARO=山田^太郎", "山田^太郎", "", True)])  # other scripts
def test_the_whole_other_name_rule_keeps_one_persons_ways_of_writing_the_name(one, two, birth, same):
    from octviewer.core.person import Patient, hashed_traits, one_set_of_traits

    a, b = Patient("P", "", one, birth), Patient("P", "", two, birth)
    assert a.others(b) is not same
    assert one_set_of_traits([hashed_traits(a), hashed_traits(b)], names=False) is same  # the header cache alike


@pytest.mark.gui
def test_the_patients_own_field_with_swapped_name_parts_or_undeclared_utf8_is_shown(qtbot, window, monkeypatch,
                                                                                      fields_demo, tmp_path):
    import pydicom
    from conftest import open_study_folder
    from test_attack16_person import _problems, _shown_with_a_scan, _study

    root, od = _study(fields_demo, tmp_path, ("MÜLLER^JÜRGEN", "", "19500101"), ("JÜRGEN^MÜLLER", "", "19500101"))
    ds = pydicom.dcmread(od)  # the perimeter writes UTF-8 bytes and declares no character set (A17-5)
    del ds.SpecificCharacterSet
    ds.PatientName = "JÜRGEN^MÜLLER".encode()
    ds.save_as(od)
    panel = open_study_folder(qtbot, window, monkeypatch, root)
    assert _shown_with_a_scan(panel.index, str(od)), _problems(panel)
    assert "another person" not in _problems(panel)


def test_a17_10_an_issuer_in_hl7s_cx_form_is_its_namespace():
    from octviewer.core.person import Patient

    plain = Patient("P", "HOSP_A", "DOE^JOHN", "19500101")
    assert not plain.others(Patient("P", "HOSP_A&1.2.840.99&ISO", "DOE^JOHN", "19500101"))
    assert plain.others(Patient("P", "HOSP_B&1.2.840.98&ISO", "DOE^JOHN", "19500101"))

