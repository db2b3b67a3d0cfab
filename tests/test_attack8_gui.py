"""Attack run 8 (session 14): the window's exports and the study trend (A8-1, A8-2, A8-11, A8-17)."""
import datetime as dt
import math

from octviewer.study.trend import trend


def test_values_exactly_on_a_line_have_no_p_value_or_ci():
    """A8-11: VFI 98, 96, 94 a year apart read "CI -2.00 to -2.00, p=0.000 - significant change"."""
    t = trend({dt.date(2018, 1, 15): 98, dt.date(2019, 1, 15): 96, dt.date(2020, 1, 15): 94}, "vfi")
    assert math.isnan(t.p) and math.isnan(t.ci[0]) and not t.significant
    assert t.slope_per_year < 0 and "exactly on a line" in t.describe("%") and "p=" not in t.describe("%")


def _window(volume_source=None, index=None):
    from types import SimpleNamespace

    volume = SimpleNamespace(source=volume_source) if volume_source else None
    return SimpleNamespace(state=SimpleNamespace(volume=volume), study=SimpleNamespace(index=index))


def test_the_b_scans_of_the_folder_on_screen_are_in_use(tmp_path):
    """A8-1: with a folder of B-scan PNGs open, Export CSV/PDF onto FOLDER/b005.png replaced that B-scan."""
    from octviewer.gui.export.scan_exports import files_in_use
    from octviewer.gui.export.targets import target_problem

    (tmp_path / "b005.png").write_bytes(b"")  # empty: the kinds' rule lets it be replaced
    assert "has open" in target_problem(str(tmp_path / "b005.png"), files_in_use(_window(str(tmp_path))), None, "csv")
    assert target_problem(str(tmp_path / "new.csv"), files_in_use(_window(str(tmp_path))), None, "csv") == ""


def test_a_study_folder_manifest_and_its_problem_files_are_in_use(tmp_path):
    """A8-2: exports replaced the study's own manifest.csv and a damaged scan the index lists as a problem."""
    from octviewer.gui.export.scan_exports import files_in_use
    from octviewer.gui.export.targets import target_problem
    from octviewer.study.index import StudyIndex

    (tmp_path / "scans").mkdir()
    damaged, manifest = tmp_path / "scans" / "damaged.dcm", tmp_path / "manifest.csv"
    damaged.write_bytes(b"")
    manifest.write_text("level,path,patient_id\n")  # begins like a results CSV: the kinds' rule lets it go
    index = StudyIndex(root=str(tmp_path), problems=[(str(damaged), "not a DICOM file")])
    in_use = files_in_use(_window(index=index))
    assert "has open" in target_problem(str(damaged), in_use, None, "pdf")
    assert "has open" in target_problem(str(manifest), in_use, None, "csv")
    assert target_problem(str(tmp_path / "results.csv"), in_use, None, "csv") == ""


def test_the_ou_asymmetry_tooltips_show_a_damaged_scans_name_as_written(qtbot):
    """A8-17: the asymmetry table's "n/a" tooltips held a damaged scan's error, naming the file, raw: a file
    named <h1><font color="red">NORMAL.dcm showed a big red NORMAL on hover."""
    from PySide6.QtGui import Qt, QTextDocumentFragment

    from octviewer.gui.study.ou_view import OUView
    from octviewer.study.ou import EyeSummary, VisitSummary

    hostile = '<h1><font color="red">NORMAL.dcm: the pixel data is truncated'
    view = OUView()
    qtbot.addWidget(view)
    view.show_summary(VisitSummary("P1", "2024-04-02", {"OD": EyeSummary("OD", [], error=hostile)}))
    table = view.asymmetry_table
    tips = [table.item(i, 0).toolTip() for i in range(table.rowCount()) if table.item(i, 0).toolTip()]
    assert tips and all(QTextDocumentFragment.fromHtml(t).toPlainText() == hostile for t in tips)
    assert not any(Qt.mightBeRichText(t) and "<h1>" in t for t in tips)


def test_the_study_demo_writes_only_into_a_new_empty_or_its_own_folder(tmp_path, capsys):
    """`python -m octviewer.study.demo --out CLINIC` put SYNTHETIC patients beside a clinic's real scans,
    exit 0: one study of both (A8-9). An earlier demo's folder is written again."""
    from octviewer.study.demo import main

    clinic = tmp_path / "clinic"
    (clinic / "scans").mkdir(parents=True)
    (clinic / "scans" / "Doe_John_OD.dcm").write_bytes(b"real scan")
    args = ["--patients", "1", "--visits", "1", "--preset", "tiny"]
    assert main(["--out", str(clinic), *args]) == 3
    err = capsys.readouterr().err
    assert "the demo did not write" in err and "Doe" not in err
    assert sorted(p.name for p in clinic.rglob("*")) == ["Doe_John_OD.dcm", "scans"]
    own = tmp_path / "demo"
    assert main(["--out", str(own), *args]) == 0 and main(["--out", str(own), *args]) == 0


def test_a8_7_pacs_find_prints_each_study_on_one_line(tmp_path, capsys, monkeypatch):
    """`octviewer-pacs find --show-patient` printed an archive's PatientName holding a newline as is: a
    forged line of its own under the real one (ESC was escaped already)."""
    import datetime as dt

    import octviewer.pacs.cli as cli
    from octviewer.pacs.net import StudyHit

    hit = StudyHit("1.2.3", dt.date(2024, 1, 2), "Glaucoma", ("OPT",), 1, patient_id="P1",
                   patient_name="DOE^JANE\n9.9.9  OPT  forged  study 9.9.9")
    monkeypatch.setattr(cli, "find_studies", lambda *a, **k: [hit])
    monkeypatch.setattr(cli, "_settings", lambda args: None)
    assert cli.main(["--settings", str(tmp_path / "pacs.json"), "find", "--patient-id", "P1", "--show-patient"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and "DOE^JANE\\n9.9.9" in lines[0] and lines[1] == "1 study found"


def test_the_ou_view_and_ou_report_say_what_the_wheels_colours_mean(qtbot, tmp_path):
    """The OU view and the OU report drew red, green and grey sector wheels and "~" values with nothing saying
    what they meant, that NS/NI are µm only, or whose normal ranges classed them (eighth walk-through)."""
    from types import SimpleNamespace

    from octviewer.gui.export.ou_pdf import ou_report_html
    from octviewer.gui.study.ou_view import OUView
    from octviewer.structure.normative import source_for
    from octviewer.study.ou import EyeSummary, VisitSummary

    structure = SimpleNamespace(norms_source=source_for("Spectralis"))
    summary = VisitSummary("P1", "2024-04-02", {e: EyeSummary(e, [], structure=None) for e in ("OD", "OS")})
    view = OUView()
    qtbot.addWidget(view)
    view.show_summary(summary)
    assert "none (nothing measured)" in view.wheel_key.text()
    summary = VisitSummary("P1", "2024-04-02", {"OD": EyeSummary("OD", [], structure=structure)})
    view.show_summary(summary)
    text = view.wheel_key.text()
    assert "yellow: borderline (1st-5th)" in text and "NS, NI always" in text and "~: approximate" in text
    from PySide6.QtCore import Qt

    assert "ANOTHER DEVICE'S NORMALS" in text and view.wheel_key.textFormat() == Qt.PlainText
    assert "Sector colours" in ou_report_html(summary, None)
