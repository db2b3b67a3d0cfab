"""Names under one ID written in two scripts that nothing told apart are said, not passed as one person.

A reading tells twins apart only where their given names differ in an initial, a consonant or an ending: boy and
girl twins 민수 / MINSEO, ゆうき / YUUKA, Arabic-script twins sharing consonants (حسن / HUSSEIN) and any name in kanji,
Hebrew or Thai (no reading here) passed as one person, with nothing said (attack runs 22 and 23: A22-4, A23-15).
One person's name from two devices looks the same, so the check says it could not compare them and leaves the
Trend's flags (``core.person.scripts_apart``).
"""

import pytest

from octviewer.core.person import Patient, name_traits, names_differ, scripts_apart


@pytest.mark.parametrize("first, second, scripts", [
    ("KIM^MINSEO", "김^민수", "Hangul and Latin"),  # A23-15: boy / girl twins, one vowel apart
    ("SATO^YUUKA", "さとう^ゆうき", "kana and Latin"),
    ("HASSAN^HUSSEIN", "حسن^حسن", "Arabic and Latin"),
    ("YAMADA^HANAKO", "山田^太郎", "Han and Latin"),  # A22-4: no reading here
    ("COHEN^DAVID", "כהן^דוד", "Hebrew and Latin"),
    ("PETROVA^MARIA", "ПЕТРОВА^МАРИЯ", "Cyrillic and Latin"),  # one person's two devices: said too
    ("山田^太郎", "やまだ^たろう", "Han and kana"),
    ("山田^勇気", "山田^ゆうき", "Han and kana"),  # A25-3: one kanji family name, a kanji and a kana given name
])
def test_names_in_two_scripts_are_said_as_not_compared(first, second, scripts):
    a, b = Patient("P1", "", first, "19620304"), Patient("P1", "", second, "19620304")
    assert not a.others(b)  # not refused: one person's two devices look the same
    assert scripts_apart([a.traits(), b.traits()]) == scripts
    assert names_differ([a, b])  # PACS screen and retrieve say it ("kept: check before comparing eyes or visits")


@pytest.mark.parametrize("first, second", [
    ("YAMADA^TARO=山田^太郎", "山田^太郎"),  # a common script: compared
    ("KIM^MINSU", "KIM^MINSU"),
    ("ХУРШИД", "ХУРШИД"),
])
def test_names_with_a_common_script_are_compared_as_before(first, second):
    assert scripts_apart([name_traits(first), name_traits(second)]) == ""


def test_uzbek_x_is_the_cyrillic_kh():
    """A23-3's residual: ТОШЕВ^ХУРШИД / TOSHEV^XURSHID (Uzbek Latin writes Х as X) was said as another name."""
    from octviewer.core.person import other_name

    a, b = (Patient("P1", "", n, "19620304").traits() for n in ("ТОШЕВ^ХУРШИД", "TOSHEV^XURSHID"))
    assert not other_name(a, b)
    a, b = (Patient("P1", "", n, "19620304").traits() for n in ("ЛЕБЕДЕВА^КСЕНИЯ", "LEBEDEVA^XENIA"))
    assert not other_name(a, b)


@pytest.mark.gui
def test_twins_in_two_scripts_get_a_check_through_open_study_folder(qtbot, window, monkeypatch, tmp_path):
    """File > Open study folder on a patient whose first visit's scans name KIM^MINSEO and second visit's 김^민수
    (one ID, one birth date): each scan carries the 'scripts' check, the Trend keeps its flags and says so."""
    from types import SimpleNamespace

    from conftest import open_study_folder
    from test_attack16_person import _rename

    from octviewer.gui.study.checks import study_check_entries
    from octviewer.gui.study.trend_view import eye_history
    from octviewer.study.demo import write_demo_study

    root = write_demo_study(tmp_path / "study", patients=1, visits=2, preset="tiny", seed=7)
    scans = sorted((root / "scans").rglob("*.dcm"))
    for scan in scans:
        _rename(scan, "KIM^MINSEO" if "_2018" in scan.name else "김^민수", "", "19620304")
    panel = open_study_folder(qtbot, window, monkeypatch, root)
    import octviewer.io

    load_volume = octviewer.io.load_volume
    monkeypatch.setattr("octviewer.io.load_volume", lambda path: path)
    kinds = [w.kind for w in panel.index.warnings]
    assert kinds.count("scripts") == len(scans) and "people" not in kinds, kinds
    entries = " ".join(study_check_entries(panel.index))
    assert "write the name in two scripts (Hangul and Latin), which are not compared" in entries, entries
    assert panel.problems_summary.text().startswith("Check (used as listed): 1 (a name in two scripts)")
    # which visit writes which, in place of the scans' files (walk-through H129, V1)
    first, second = sorted({s.visit for s in panel.index.scans})
    assert f"visits: {first} in Latin; {second} in Hangul" in entries, entries
    # the Trend of the eye (its analysis stood in for): the check said, the slopes not taken for two people's
    history = eye_history(panel.index, "DEMO07-000", "OD", lambda path, cancel: (None, SimpleNamespace(
        rnfl_global_um=90.0)), lambda *a: None, SimpleNamespace(is_set=lambda: 0))
    assert not history.mixed()
    assert any("two scripts" in n and "(visit 1 of 2 in one script; visit 2 of 2 in another)" in n
               and "flagged as for one person's scans" in n for n in history.check_notes()), history.check_notes()
    # the open scan's Results panel: the check under the verdict, above the VF estimates (walk-through H129, V7)
    from PySide6.QtCore import Qt

    monkeypatch.setattr("octviewer.io.load_volume", load_volume)  # the scan opened as a user opens it
    window.resize(1024, 700)
    od = panel.tree.topLevelItem(0).child(0).child(0)
    item = od.child(0) if od.childCount() else od
    panel.tree.scrollToItem(item)
    qtbot.mouseClick(panel.tree.viewport(), Qt.LeftButton, pos=panel.tree.visualItemRect(item).center())
    results = window.results
    qtbot.waitUntil(lambda: "write the name in two scripts" in results.study_checks.text(), timeout=60000)
    layout = results.study_checks.parentWidget().layout()
    assert layout.indexOf(results.study_checks) < layout.indexOf(results.vf_note) < layout.indexOf(results.extra)
    # File > Export PDF report: the check under the decision there too, above the estimates (walk-through H131, W2)
    from PySide6.QtWidgets import QFileDialog, QMessageBox

    from octviewer.gui.export import scan_pdf

    printed, real = {}, scan_pdf.write_report

    def spy(path, state, images, meta, patient_id=None, sections=(), measured="", checks=""):
        doc = scan_pdf.build_document(state, images, meta, patient_id, sections, measured, checks)
        printed[patient_id is not None] = doc.toPlainText()
        return real(path, state, images, meta, patient_id, sections, measured, checks)

    monkeypatch.setattr(scan_pdf, "write_report", spy)
    qtbot.waitUntil(lambda: window.state.prediction is not None and not window.state.measuring, timeout=120000)
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(tmp_path / "scan.pdf"), ""))
    for answer in (QMessageBox.Yes, QMessageBox.No):
        monkeypatch.setattr(QMessageBox, "question", lambda *a, answer=answer, **k: answer)
        window.menu_actions["export_pdf"].trigger()
    assert set(printed) == {True, False}
    for text in printed.values():
        assert text.index("decision:") < text.index("two scripts") < text.index("normal range"), text[:2000]
    # the open scan's and the OU view's identified line, and the OU report's (walk-through H131, W3)
    import html

    from octviewer.gui.export.ou_pdf import ou_report_html
    from octviewer.gui.study.checks import people_lines
    from octviewer.gui.study.ou_view import analyse_visit

    line = f"which visits write the name in which script: {first} in Latin; {second} in Hangul"
    checks = [w for w in panel.index.warnings if w.kind == "scripts"][:1]
    assert people_lines(panel.index, "DEMO07-000", checks) == [f"Check (study): {line}"]
    summary = analyse_visit(panel.index, "DEMO07-000", first, None, lambda *a: None, SimpleNamespace(is_set=lambda: 0))
    assert line in html.unescape(ou_report_html(summary, patient_id="DEMO07-000"))
    anonymised = html.unescape(ou_report_html(summary))
    assert "two scripts" in anonymised and line not in anonymised and first not in anonymised


@pytest.mark.gui
def test_a_field_in_another_script_than_every_scan_gets_the_check(qtbot, window, monkeypatch, tmp_path):
    """A24-2: a twin's measured field written KIM^MINSEO beside her brother's scans written 김^민수 (one ID, one
    birth date) was shown as his measured VF with nothing said; the scans of its eye now carry the 'scripts' check,
    and the field is still shown (one person's two devices look the same)."""
    from conftest import open_study_folder
    from test_attack16_person import _shown_with_a_scan, _study

    from octviewer.gui.study.checks import study_check_entries
    from octviewer.study.demo import write_demo_study

    demo = write_demo_study(tmp_path / "demo", patients=1, visits=2, preset="tiny", seed=7)
    root, od = _study(demo, tmp_path, ("김^민수", "", "19620304"), ("KIM^MINSEO", "", "19620304"))
    panel = open_study_folder(qtbot, window, monkeypatch, root)
    entries = " ".join(study_check_entries(panel.index))
    assert f"({od.name}) writes the name in another script than the scans (Hangul and Latin)" in entries, entries
    assert _shown_with_a_scan(panel.index, str(od))
    assert {w.kind for w in panel.index.warnings} == {"scripts"}


def test_a_long_free_text_name_is_read_at_once():
    """A24-9: every run of a free-text name's words was read for its consonants, O(n³): a header of 800 words (a PN
    element holds 64 kB) stalled File > Open study folder for two minutes, and Cancel waited for it."""
    import time

    words = " ".join(f"KA{i}MI" for i in range(9000)).translate(str.maketrans("0123456789", "ABCDEFGHIJ"))
    start = time.monotonic()
    mine, theirs = (Patient("P1", "", n, "1962").traits() for n in (words, words[::-1]))
    from octviewer.core.person import other_name

    other_name(mine, theirs)
    assert time.monotonic() - start < 10  # 0.3 s here; a cubic reading took days


@pytest.mark.gui
def test_two_people_and_a_name_in_another_script_get_both_checks(qtbot, window, monkeypatch, tmp_path):
    """H129's V13: visits written KIM^MINSEO, 김^민서 and KIM^JIHO got the 'people' check alone, which grouped the
    hangul visit with the first though nothing compared them; the 'scripts' check stands beside it now."""
    from conftest import open_study_folder
    from test_attack16_person import _rename

    from octviewer.study.demo import write_demo_study

    root = write_demo_study(tmp_path / "study", patients=1, visits=3, preset="tiny", seed=7)
    names = {}
    for scan in sorted((root / "scans").rglob("*.dcm")):
        year = scan.stem.split("_")[1][:4]
        names.setdefault(year, ("KIM^MINSEO", "김^민서", "KIM^JIHO")[min(len(names), 2)])
        _rename(scan, names[year], "", "19620304")
    panel = open_study_folder(qtbot, window, monkeypatch, root)
    assert {w.kind for w in panel.index.warnings} >= {"people", "scripts"}, panel.index.warnings
    # the Trend's notes do not contradict each other on flags (attack run 25, A25-4)
    from types import SimpleNamespace

    from octviewer.gui.study.trend_view import eye_history

    monkeypatch.setattr("octviewer.io.load_volume", lambda path: path)
    history = eye_history(panel.index, "DEMO07-000", "OD", lambda path, cancel: (None, SimpleNamespace(
        rnfl_global_um=90.0)), lambda *a: None, SimpleNamespace(is_set=lambda: 0))
    notes = " ".join(history.check_notes())
    assert history.mixed() and "two scripts" in notes and "flagged as for one person's scans" not in notes, notes


def test_a_long_hangul_word_is_read_in_bounded_memory():
    """A25-6: every suffix of a hangul or kana word written without a separator was kept: a PatientName of one
    40,000-syllable word took 1.6 GB, and a 434 kB DICOM ran File > Open study folder out of memory."""
    import resource

    word = "김" + "민수" * 20000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for name in (word, f"KIM={word}"):
        Patient("P1", "", name, "1962").traits()
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 400_000  # kB; 60 MB here, 1.6 GB before


@pytest.mark.parametrize("names", [
    ("IVANOVA=ИВАНОВА", "IVANOVA^ANNA=ИВАНОВА^АННА", "ИВАНОВА^АННА"),
    ("PETROVA^MARIA", "PETROVA MARIA A.", "PETROVA^MARIA"),
])
def test_one_persons_headers_are_one_person_in_any_order(names):
    """Attack run 29, A29-1: each header was compared with the traits of those before it merged, a blend of one
    header's Latin group and another's native one: one person's headers were two people when a form came first."""
    import itertools

    from octviewer.core.person import hashed_traits, one_set_of_traits

    for order in itertools.permutations(names):
        patients = [Patient("P1", "", name, "19620304") for name in order]
        assert one_set_of_traits([p.traits() for p in patients]), order
        assert one_set_of_traits([hashed_traits(p) for p in patients]), order
