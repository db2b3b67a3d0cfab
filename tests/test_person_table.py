"""Real-world name pairs under one PatientID and the verdict a clinic wants (``core.person``), as one table.

The person rule decides from free-text headers whether to hide a patient's own data or to show another person's;
four attack runs each found a pair it misjudged. A table of the pairs clinics meet (devices, transliterations,
marriages, twins, placeholders, scripts, partial dates) says more than another run, and every pair is checked on
the plain traits and on the header cache's digests alike (the study and the trainer compare those).

Verdicts: "same" (nothing said), "said" (another person, or one name written two ways: kept, with a check),
"other" (another person: refused or left out).
"""

import pytest

from octviewer.core.person import Patient, hashed_traits, other_name, other_person

U = "MÜLLER^JÜRGEN".encode().decode("latin-1")  # UTF-8 bytes in a header that declares no character set

# (name, birth date, issuer), (name, birth date, issuer), verdict, why
PAIRS = [
    # one person, written as devices and exports write it
    (("O'BRIEN^SEAN", "19620304", ""), ("OBRIEN^SEAN", "19620304", ""), "same", "apostrophe"),
    (("MÜLLER^JÜRGEN", "19620304", ""), ("MUELLER^JUERGEN", "19620304", ""), "same", "umlaut transliterated"),
    ((U, "19620304", ""), ("MÜLLER^JÜRGEN", "19620304", ""), "same", "undeclared UTF-8"),
    (("DE LA CRUZ^MARIA", "19620304", ""), ("DELACRUZ^MARIA", "19620304", ""), "same", "particles joined"),
    (("SMITH-JONES^ANN", "", ""), ("SMITH JONES^ANN", "", ""), "same", "hyphenated family name"),
    (("AL-HASSAN^ALI", "", ""), ("AL HASSAN^ALI", "", ""), "same", "al- particle"),
    (("DOE^JOHN", "", ""), ("JOHN DOE", "", ""), "same", "free text, other order"),
    (("DOE^JOHN", "", ""), ("DOE, JOHN", "", ""), "same", "comma form"),
    (("DOE^JOHN", "", ""), ("JOHN^DOE", "", ""), "same", "components swapped"),
    (("doe^john", "", ""), ("DOE^JOHN^^^", "", ""), "same", "case and empty components"),
    (("DOE^JOHN^A^DR^JR", "", ""), ("DOE^JOHN", "", ""), "same", "middle name, prefix, suffix"),
    (("DOE^JOHN A", "", ""), ("DOE^JOHN", "", ""), "same", "middle initial in the given component"),
    (("DOE", "", ""), ("DOE^JOHN", "", ""), "same", "family name only"),
    (("YAMADA^TARO=山田^太郎=やまだ^たろう", "", ""), ("YAMADA^TARO", "", ""), "same", "ideographic groups"),
    (("YAMADA^TARO=山田^太郎", "", ""), ("山田^太郎", "", ""), "same", "ideographic group alone"),
    (("ПЕТРОВА^МАРИЯ", "19620304", ""), ("ПЕТРОВА^МАРИЯ", "1962-03-04", ""), "same", "date with dashes"),
    (("DOE^JOHN", "19000101", ""), ("DOE^JOHN", "19620304", ""), "same", "placeholder birth date"),
    (("DOE^JOHN", "00000000", ""), ("DOE^JOHN", "19620304", ""), "same", "zero birth date"),
    (("DOE^JOHN", "1962", ""), ("DOE^JOHN", "19620304", ""), "same", "birth year only"),
    (("DOE^JOHN", "196203", ""), ("DOE^JOHN", "19620304", ""), "same", "birth year and month only"),
    (("DOE^JOHN", "", "HOSP_A&1.2.840.99&ISO"), ("DOE^JOHN", "", "hosp_a"), "same", "issuer in CX-4 form"),
    (("", "", ""), ("DOE^JOHN", "19620304", ""), "same", "an anonymous header contradicts nothing"),
    # one person or two: kept, said
    (("DOE^J", "19620304", ""), ("DOE^JOHN", "19620304", ""), "said", "initial only"),
    (("DOE^JON", "19620304", ""), ("DOE^JOHN", "19620304", ""), "said", "one-letter typo"),
    (("SMITH^ANN", "19620304", ""), ("JONES^ANN", "19620304", ""), "said", "marriage"),
    (("SMITH^ANN", "", ""), ("JONES^ANN", "", ""), "said", "marriage, no birth dates"),
    (("MOHAMMED^AHMED", "19620304", ""), ("MUHAMMAD^AHMAD", "19620304", ""), "said", "transliteration"),
    (("ALPHA^ANN", "19620304", ""), ("ZULU^ZED", "19620304", ""), "said", "whole other name, one birth date"),
    (("GARCIA^MARIA JOSE", "19620304", ""), ("GARCIA^MARIA ISABEL", "19620304", ""), "said",
     "twins: second given names differ"),
    (("DOE^JOHN", "19620304", ""), ("DOE^JANE", "19620304", ""), "said", "twins: given names differ"),
    (("山田^太郎", "", ""), ("山田^花子", "", ""), "said", "ideographic given names differ"),
    (("ПЕТРОВА^МАРИЯ", "", ""), ("PETROVA^MARIA", "", ""), "said", "Cyrillic and Latin, nothing ties"),
    (("김^민수", "", ""), ("KIM^MINSU", "", ""), "said", "Hangul and Latin, nothing ties"),
    (("YAMADA^TARO=山田^太郎", "", ""), ("YAMADA^TARO=山本^太郎", "", ""), "said", "ideographic family differs"),
    # another person: refused
    (("DOE^JOHN", "19620304", ""), ("DOE^JOHN", "19620403", ""), "other", "another birth date"),
    (("DOE^JOHN", "1962", ""), ("DOE^JOHN", "19710304", ""), "other", "another birth year"),
    (("DOE^JOHN", "", "HOSP_A"), ("DOE^JOHN", "", "HOSP_B"), "other", "another issuer"),
    (("ALPHA^ANN", "", ""), ("ZULU^ZED", "", ""), "other", "whole other name, nothing ties"),
    (("ALPHA^ANN", "19620304", ""), ("ZULU ZED", "", ""), "other", "whole other name, one birth date only"),
    (("ПЕТРОВА^МАРИЯ", "", ""), ("ИВАНОВ^ИВАН", "", ""), "other", "whole other Cyrillic name"),
]


def verdict(a: dict, b: dict) -> str:
    if other_person(a, b) or other_person(b, a):
        return "other"
    return "said" if other_name(a, b) or other_name(b, a) else "same"


@pytest.mark.parametrize("first, second, expected, why", PAIRS, ids=[p[3] for p in PAIRS])
@pytest.mark.parametrize("hashed", [False, True], ids=["traits", "hashed"])
def test_name_pair_verdict(first, second, expected, why, hashed):
    a, b = (Patient("P1", issuer, name, birth) for name, birth, issuer in (first, second))
    traits = hashed_traits if hashed else Patient.traits
    assert verdict(traits(a), traits(b)) == expected, why
    # the pair's verdict is the Patient's too (PACS screen/retrieve, one_person)
    assert a.others(b) == (expected == "other")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """One SYNTHETIC patient with its measured fields (OPV DICOM), as test_attack16_person's."""
    from octviewer.study.demo import write_demo_study

    return write_demo_study(tmp_path_factory.mktemp("demo") / "study", patients=1, visits=2, preset="tiny", seed=7)


@pytest.mark.gui
@pytest.mark.parametrize("scans, field", [
    (("ПЕТРОВА^МАРИЯ", "", ""), ("PETROVA^MARIA", "", "")),  # no common script: nothing tells them apart
    (("DOE^JOHN", "", "19620304"), ("DOE^JOHN", "", "1962")),  # the perimeter keeps the birth year only
], ids=["cyrillic-latin", "birth-year"])
def test_the_patients_own_field_is_shown_through_open_study_folder(qtbot, window, monkeypatch, demo, tmp_path,
                                                                     scans, field):
    """Before the table, both fields were left out as another person's: the Cyrillic and the Latin name shared no
    word ("another family and given name"), and 1962 was another birth date than 19620304."""
    from conftest import open_study_folder
    from test_attack16_person import _problems, _shown_with_a_scan, _study

    root, od = _study(demo, tmp_path, scans, field)
    panel = open_study_folder(qtbot, window, monkeypatch, root)
    assert _shown_with_a_scan(panel.index, str(od)), _problems(panel)
    assert "another person's" not in _problems(panel) and "another birth date" not in _problems(panel)


@pytest.mark.gui
def test_a_twins_field_under_one_id_and_birth_date_is_said(qtbot, window, monkeypatch, demo, tmp_path):
    """Twins under one PatientID and birth date (GARCIA^MARIA JOSE / GARCIA^MARIA ISABEL) read as one name: the
    sister's field was shown as the patient's with nothing said (A17-3's remnant). It is now said."""
    from conftest import open_study_folder
    from test_attack16_person import _study

    from octviewer.gui.study.checks import study_check_entries

    root, od = _study(demo, tmp_path, ("GARCIA^MARIA JOSE", "", "19620304"), ("GARCIA^MARIA ISABEL", "", "19620304"))
    panel = open_study_folder(qtbot, window, monkeypatch, root)
    entries = " ".join(study_check_entries(panel.index))
    assert f"({od.name}) names the patient otherwise in its header than the scans do" in entries, entries
    assert "ISABEL" not in entries
