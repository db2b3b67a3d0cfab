"""Attack run 16, A16-7: evaluate --attach on a model whose training scans' digests are of an older kind printed a
note in the terminal and stored the figures with no trace of it: Model > About and every scan's PDF then printed
them as "On independent data", though the cohort may hold the model's own training scans under other IDs."""

import pytest

pytestmark = pytest.mark.gui


def test_a16_7_the_stored_evaluation_keeps_the_old_digest_caveat_and_the_card_shows_it(qtbot, window, tiny_cohort,
                                                                                       tmp_path, monkeypatch, capsys):
    from PySide6.QtWidgets import QFileDialog, QMessageBox, QPlainTextEdit
    from test_attack11_trainer import _model_trained_on as trained_on

    from trainer.cli import main
    from trainer.evaluate_model import INDEPENDENCE_NOT_BY_CONTENT

    old = trained_on(tiny_cohort, tmp_path / "old.safetensors", patient_keys=[], volume_digests=["0" * 16])
    assert main(["evaluate", "--model", str(old), "--data", str(tiny_cohort), "--split", "all", "--device", "cpu",
                 "--attach"]) == 0
    assert "older version" in capsys.readouterr().err

    w = window
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(old), ""))
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: QMessageBox.Ok)  # unsigned: its warning answered
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.Yes)
    w.menu_actions["load_model"].trigger()
    qtbot.waitUntil(lambda: w.controller.predictor.model.meta.name == "a11", timeout=30000)
    assert w.controller.predictor.model.meta.evaluation["data"]["independence"] == INDEPENDENCE_NOT_BY_CONTENT
    w.menu_actions["about_model"].trigger()
    text = w.dialog.findChild(QPlainTextEdit, "text").toPlainText()
    independent = text.index("On independent data")
    assert text.index("CAVEAT: independence not checked by content", independent) < text.index("AUC", independent)
    # and on paper: File > Export PDF report of a scan analysed with this model prints the caveat beside the figures
    from test_h92 import PDFTOTEXT, _export_pdf_text

    from octviewer.resources import DEMO_SCAN

    if PDFTOTEXT.args[0]:
        return
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(DEMO_SCAN), ""))
    w.dialog.close()
    w.menu_actions["open"].trigger()
    qtbot.waitUntil(lambda: w.state.prediction is not None and w.controller.analysis_generation == -1, timeout=120000)
    text = _export_pdf_text(w, monkeypatch, tmp_path / "caveat.pdf")
    assert "Caveat: independence not checked by content" in text



def test_a16_7_recalibrate_keeps_the_old_digest_caveat_in_the_file_it_writes(tiny_cohort, tmp_path, capsys):
    """A16-7's sibling: `recalibrate` printed the note and wrote a model whose card said "refitted on N volumes of
    another cohort" with no caveat, though those volumes may be its own training scans re-keyed."""
    from test_attack11_trainer import _model_trained_on as trained_on

    from octviewer.gui.model.card import model_card_text
    from octviewer.model import load_model
    from trainer.cli import main

    old = trained_on(tiny_cohort, tmp_path / "old.safetensors", patient_keys=[], volume_digests=["0" * 16])
    out = tmp_path / "recal.safetensors"
    assert main(["recalibrate", "--model", str(old), "--data", str(tiny_cohort), "--split", "all",
                 "--out", str(out)]) == 0
    assert "older version" in capsys.readouterr().err
    card = model_card_text(load_model(out, "cpu").meta)
    assert "another cohort" in card and "independence not checked by content" in card, card
