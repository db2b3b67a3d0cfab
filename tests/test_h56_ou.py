"""The H56 walk-through's OU findings: the OU view gives an eye the measured field Results gives its scan (a
field a year off shown "not compared", not left blank), the OU report repeats the visit's study checks, and a
check is named by its kind (a copy in a plain folder is no "study manifest" disagreement)."""

from __future__ import annotations

import datetime as dt
import html
import shutil
import threading
from pathlib import Path

import pytest

from octviewer.study import index_folder


def _header_date(path: Path) -> dt.date:
    return dt.date.fromisoformat(f"{path.stem[3:7]}-{path.stem[7:9]}-{path.stem[9:11]}")


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    """One SYNTHETIC patient, one visit: the OD field 374 days before its scan, the OS field 2 days after its
    own, and a byte copy of the OS scan beside it (no manifest anywhere)."""
    from octviewer.study.demo import write_demo_study

    root = write_demo_study(tmp_path_factory.mktemp("h56") / "study", patients=1, visits=1, preset="tiny", seed=5)
    shutil.rmtree(root / "perimetry", ignore_errors=True)
    [od] = sorted(root.rglob("OD_*.dcm"))
    [os_scan] = sorted(root.rglob("OS_*.dcm"))
    shutil.copyfile(os_scan, os_scan.with_name("OS_copy.dcm"))
    patient = od.parent.name
    (root / "visual_fields.csv").write_text(
        "patient_id;eye;date;vfi;md;psd\n"
        f"{patient};OD;{_header_date(od) - dt.timedelta(days=374)};97,5;-0,49;1,6\n"
        f"{patient};OS;{_header_date(os_scan) + dt.timedelta(days=2)};71,0;-9,75;8,2\n")
    return root


def _ou_view(qtbot, index):
    from octviewer.gui.study.ou_view import OUView

    view = OUView()
    qtbot.addWidget(view)
    [patient] = index.patients()
    [visit] = index.visits(patient)
    with qtbot.waitSignal(view.ready, timeout=60000):
        view.show_visit(index, patient, visit.label)
    return view


def _asymmetry(view, label: str, column: int) -> str:
    table = view.asymmetry_table
    row = next(i for i in range(table.rowCount()) if table.verticalHeaderItem(i).text() == label)
    return table.item(row, column).text()


# ---------------------------------------------------------------- 5: the field Results gives the eye's scan

@pytest.mark.gui
def test_ou_view_shows_the_far_field_results_gives_the_scan_not_compared(qtbot, study):
    """Results showed the OD field of a year before "374 days before the scan: not compared" with its values;
    the OU view left OD's "measured" blank and the asymmetry table said "MD measured n/a"."""
    index = index_folder(study)
    [od] = index.scans_for(index.patients()[0], eye="OD")
    assert index.measured_vf_for_scan(od.path).md_db == pytest.approx(-0.49)  # what Results shows
    view = _ou_view(qtbot, index)
    column = view.columns["OD"]
    assert column.cell("md", 1).startswith("-0.5") and column.cell("md", 2) == "not compared"
    assert view.columns["OS"].cell("md", 1).startswith("-9.8")
    assert _asymmetry(view, "MD measured (dB)", 0) == "-0.5"
    assert _asymmetry(view, "MD measured (dB)", 2) == "not compared"  # a year-old field against this visit's
    view.tasks.shutdown()


def test_ou_report_does_not_set_a_far_field_against_the_other_eye(study):
    from octviewer.gui.export.ou_pdf import ou_report_html
    from octviewer.gui.study.ou_view import analyse_visit

    index = index_folder(study)
    patient = index.patients()[0]
    summary = analyse_visit(index, patient, index.visits(patient)[0].label, None, lambda *_: None,
                            threading.Event())
    page = ou_report_html(summary)
    assert "<td>MD measured (dB)</td><td>-0.5</td><td>-9.8</td><td>not compared</td>" in page
    assert "OD - OS of MD measured (dB), VFI measured (%): not compared: the OD field lies more than 180" in page
    # the eye's own differences: "n.c.", said in full under the table ("not compared" broke mid-word there)
    assert "<td style='white-space: nowrap'>-0.5</td><td style='white-space: nowrap'>n.c.</td>" in page
    assert "n.c. = not compared: the OD field 374 days before its scan" in page


# ---------------------------------------------------------------- 4: a check named by the kind that fired

def _controller_text(checks: list[str]):
    """The Results panel's and the scan PDF's study lines (StudyController's) for a scan with these checks."""
    from types import SimpleNamespace

    from octviewer.gui.study.controller import StudyController

    stub = SimpleNamespace(scan_checks=lambda: checks, comparison_rows=lambda: [], test_date=lambda *_: "",
                           fields_left_out=lambda: [], people_split=lambda: [])  # H112's Y8, Y6: none here
    stub.report_checks = lambda dated: StudyController.report_checks(stub, dated)  # the PDF's and CSV's list (Z5)
    return (StudyController.checks_text(stub), html.unescape(StudyController.checks_html(stub, dated=True)),
            html.unescape(StudyController.checks_html(stub, dated=False)))


def test_a_copy_in_a_plain_folder_is_named_as_a_copy_not_a_manifest_disagreement(study):
    """A byte copy in a folder with no manifest read "Check (study manifest)" in Results and, anonymised,
    "the study manifest and this scan's header disagree (...: a patient ID, a visit date or ...)"."""
    index = index_folder(study)
    [os_scan] = index.scans_for(index.patients()[0], eye="OS")
    checks = index.warnings_for([os_scan.path])
    assert len(checks) == 1 and "OS_copy.dcm" in checks[0].text and checks[0].kind == "copy"
    text, named, anonymised = _controller_text(checks)
    assert text.startswith("Check (study): the same scan as ") and "OS_copy.dcm" in text and "manifest" not in text
    assert "<b>Check (study):</b> the same scan as " in named and "manifest" not in named
    assert ("<b>Check (study):</b> a second copy of this scan at this visit, used once; details withheld: "
            "anonymised report") in anonymised
    assert "manifest" not in anonymised and "OS_copy" not in anonymised and os_scan.visit not in anonymised


def test_an_anonymised_check_names_each_kind_with_its_count():
    from octviewer.gui.study.checks import check_kind
    from octviewer.study.index import StudyWarning

    row = [StudyWarning("a.dcm", "patient", 'row 2 gives the patient "ROW-ID", the scan\'s own header says "P7"; the '
                        "row's is used"),
           StudyWarning("a.dcm", "date", "row 2 gives the visit 2023-03-04, the scan's own header dates it 2024-03-04; "
                        "the header's date is used")]
    two = [StudyWarning("a.dcm", "two visits", "the same scan as b.dcm (the same bytes), listed at the visits "
                        "2023-01-01, 2024-01-01: a trend would count it twice"),
           StudyWarning("a.dcm", "rows", "rows 2, 3 list it at the visits V1, V2: it is used once, at V1 (its first "
                        "row); correct the other rows")]
    assert [check_kind(c) for c in row + two] == ["patient", "date", "two visits", "rows"]
    text, _, anonymised = _controller_text(row + two)
    assert text.splitlines()[0].startswith('Check (study manifest): row 2 gives the patient "ROW-ID"')
    assert text.splitlines()[2].startswith("Check (study): the same scan as b.dcm")
    assert ("the study manifest and this scan's header disagree (2 checks: the patient ID and the visit date)"
            in anonymised)
    assert "<b>Check (study):</b> the same scan at two visits: a trend would count it twice" in anonymised
    assert "<b>Check (study manifest):</b> manifest rows list this scan at two visits; it is used once" in anonymised
    assert not any(s in anonymised for s in ("ROW-ID", "P7", "2023", "b.dcm", "V1"))


# ---------------------------------------------------------------- 6: the OU report repeats the visit's checks

@pytest.mark.gui
def test_ou_report_repeats_the_checks_the_ou_view_shows(qtbot, study, monkeypatch, tmp_path):
    """The OU view's header gave the visit's study check; the OU PDF had no check line at all."""
    from octviewer.gui.export import ou_pdf

    index = index_folder(study)
    view = _ou_view(qtbot, index)
    assert view.checks.text().startswith("Check (study): the same scan as ") and "OS_copy.dcm" in view.checks.text()
    pages = {}
    monkeypatch.setattr(ou_pdf, "write_pdf", lambda doc, path, *a, **k: pages.setdefault(path, doc.toPlainText()))
    ou_pdf.write_ou_report(str(tmp_path / "named.pdf"), view, patient_id=index.patients()[0])
    ou_pdf.write_ou_report(str(tmp_path / "anon.pdf"), view)
    named, anonymised = pages[str(tmp_path / "named.pdf")], pages[str(tmp_path / "anon.pdf")]
    assert view.checks.text() in named
    assert ("Check (study): a second copy of this scan at this visit, used once; details withheld: anonymised "
            "report") in anonymised
    assert "OS_copy" not in anonymised and view.summary.visit not in anonymised
    view.tasks.shutdown()


# ---------------------------------------------------------------- 1: the scan dated by its header, as in Results

def test_ou_view_dates_the_scan_by_its_header_as_results_does(study, tmp_path):
    """A manifest row gave the visit a year before the scan's header date, with the field on the row: Results
    (the volume's acquisition date) said "366 days before the scan: not compared", the OU view compared it."""
    from octviewer.gui.study.ou_view import analyse_visit
    from octviewer.study import index_manifest

    [od] = sorted(study.rglob("OD_*.dcm"))
    visit = _header_date(od) - dt.timedelta(days=366)
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,patient_id,eye,visit,vfi,md,psd\n{od},P1,OD,{visit},97.0,-0.8,1.5\n")
    index = index_manifest(manifest)
    [scan] = index.scans
    summary = analyse_visit(index, "P1", scan.visit, None, lambda *_: None, threading.Event())
    eye = summary.eyes["OD"]
    assert eye.vf_measured.md_db == pytest.approx(-0.8)
    assert eye.scan_date == _header_date(od) and not eye.vf_compared()
