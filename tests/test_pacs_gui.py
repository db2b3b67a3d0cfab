"""The PACS dialogs through their widgets, against a real Orthanc: File > PACS settings… (test the
connection, save), File > Open from PACS… (search, expand, retrieve with progress, the scan opens and
is analysed), File > Send results to PACS (SR + PDF arrive in the archive); and the failures said."""

import os
import stat

import orthanc_server
import pytest
from conftest import open_window
from orthanc_server import DEMO_PATIENT, MANY_PATIENT, free_port
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialogButtonBox

from octviewer.pacs import load_settings, save_settings

orthanc, data_dir = orthanc_server.orthanc, orthanc_server.data_dir  # fixtures
MODEL = "resources/models/demo_semt.safetensors"


@pytest.fixture
def window(qtbot, monkeypatch, data_dir):
    yield from open_window(qtbot, monkeypatch, MODEL)


def test_preferences_test_connection_and_save(window, orthanc, qtbot, data_dir):
    window.menu_actions["pacs_settings"].trigger()
    dialog = window._pacs_actions.dialog
    fields = dialog.fields
    fields["archive_port"].setText(str(orthanc.dicom_port))
    fields["archive_ae"].setText("WRONG")
    dialog.test_button.click()
    qtbot.waitUntil(lambda: "check that the archive's AE title is 'WRONG'" in dialog.status.text(), timeout=60000)
    fields["archive_ae"].setText("ORTHANC")
    dialog.test_button.click()
    qtbot.waitUntil(lambda: dialog.status.text().startswith("The archive answered"), timeout=60000)
    fields["local_ae"].setText("A" * 20)
    dialog.buttons.button(QDialogButtonBox.Save).click()
    assert "Not saved" in dialog.status.text() and "AE title" in dialog.status.text() and dialog.isVisible()
    fields["local_ae"].setText("OCTVIEWER")
    dialog.buttons.button(QDialogButtonBox.Save).click()
    saved = data_dir / "pacs.json"
    assert stat.S_IMODE(os.stat(saved).st_mode) == 0o600
    assert load_settings(saved).archive_port == orthanc.dicom_port and not dialog.isVisible()


def _wait(qtbot, condition, window, timeout_ms=60000):
    """Wait as qtbot does, but a timeout fails with what the dialog and the window said: under two
    test processes a retrieve once timed out with nothing else to go on."""
    try:
        qtbot.waitUntil(condition, timeout=timeout_ms)
    except Exception:
        dialog = getattr(window._pacs_actions, "dialog", None)
        status = dialog.status.text() if dialog is not None else "(no dialog)"
        pytest.fail(f"timed out; the dialog says {status!r}; warnings {window.warnings[-3:]!r}; "
                    f"study panel {window.study.panel.status.text()!r}")


def _search(window, qtbot, patient_id):
    window.menu_actions["open_pacs"].trigger()
    dialog = window._pacs_actions.dialog
    dialog.patient_id.setText(patient_id)
    dialog.search_button.click()
    _wait(qtbot, lambda: dialog.results.topLevelItemCount() == 1, window)
    study = dialog.results.topLevelItem(0)
    study.setExpanded(True)
    _wait(qtbot, lambda: study.childCount() > 0, window)
    return dialog, study


def test_open_from_pacs_analyse_and_send_results(window, orthanc, qtbot, data_dir):
    save_settings(orthanc.settings())
    dialog, study = _search(window, qtbot, DEMO_PATIENT)
    assert DEMO_PATIENT in study.text(4) and "OPT" in study.text(1)
    kinds = [study.child(i).text(1) for i in range(study.childCount())]
    assert kinds == ["OPT", "OPV"]
    if os.environ.get("OCTVIEWER_PACS_SHOT"):
        dialog.grab().save(os.environ["OCTVIEWER_PACS_SHOT"])
    dialog.results.setCurrentItem(study.child(1))  # the visual field first: read and shown, not opened
    dialog.retrieve_button.click()
    _wait(qtbot, lambda: "visual field OS" in dialog.status.text(), window)
    assert "MD -4.1" in dialog.status.text() and "VFI 88.0" in dialog.status.text()
    dialog.results.setCurrentItem(study.child(0))
    assert dialog.retrieve_button.isEnabled()
    with qtbot.waitSignal(window.settled, timeout=180000):
        dialog.retrieve_button.click()
    qtbot.waitUntil(lambda: window.state.prediction is not None and window.state.structure is not None,
                    timeout=180000)
    assert window.state.volume.laterality == "OS" and not dialog.isVisible()
    assert str(window.state.volume.source).startswith(str(data_dir / "pacs"))

    window.menu_actions["send_pacs"].trigger()
    qtbot.waitUntil(lambda: hasattr(window._pacs_actions, "last_outcome"), timeout=60000)
    assert window._pacs_actions.last_outcome.sent == 2 and window.infos and "2 object(s) sent" in window.infos[-1]
    modalities = {orthanc.rest(f"/instances/{i['ID']}/series")["MainDicomTags"].get("Modality")
                  for i in orthanc.instances_of(DEMO_PATIENT)}
    assert {"SR", "DOC"} <= modalities
    pdf = next(orthanc.dataset(i["ID"]) for i in orthanc.instances_of(DEMO_PATIENT)
               if orthanc.rest(f"/instances/{i['ID']}/series")["MainDicomTags"].get("Modality") == "DOC")
    document = bytes(pdf.EncapsulatedDocument)
    assert document.startswith(b"%PDF") and len(document) > 10000  # the window's report, images and all

    save_settings(orthanc.settings(archive_port=free_port(), timeout_s=2.0))  # the archive goes down
    del window._pacs_actions.last_outcome
    window.menu_actions["send_pacs"].trigger()
    qtbot.waitUntil(lambda: hasattr(window._pacs_actions, "last_outcome"), timeout=60000)
    assert "kept in the outbox" in window.warnings[-1] and "nothing answers" in window.warnings[-1]


def test_retrieve_cancelled_from_the_dialog(window, orthanc, qtbot, data_dir, monkeypatch):
    import threading

    import octviewer.pacs.net as net

    save_settings(orthanc.settings())
    dialog, study = _search(window, qtbot, MANY_PATIENT)
    dialog.results.setCurrentItem(study.child(0))
    arrived, release = threading.Event(), threading.Event()
    real = net._Receiver.on_store

    def slow(self, event):  # the first instance stored, then wait for the user's Cancel
        status = real(self, event)
        arrived.set()
        release.wait(10)
        return status

    monkeypatch.setattr(net._Receiver, "on_store", slow)
    dialog.retrieve_button.click()
    # 60 s, and the dialog's own words if it never comes: once, in a full CI run, no instance arrived in 20 s
    # (not reproduced alone); the status says whether the retrieve failed or was only slow
    try:
        qtbot.waitUntil(arrived.is_set, timeout=60000)
    except Exception:
        pytest.fail(f"no instance arrived; the dialog says: {dialog.status.text()!r}")
    assert dialog.work.slot.cancel_button.isVisible()
    qtbot.mouseClick(dialog.work.slot.cancel_button, Qt.LeftButton)
    release.set()
    qtbot.waitUntil(lambda: dialog.status.text().startswith("Stopped"), timeout=60000)
    assert not list(data_dir.glob("pacs/*/*")), "nothing of the cancelled retrieve is kept"
    assert window.state.volume is None


def test_a_whole_study_opens_in_the_study_browser(window, orthanc, qtbot, data_dir):
    save_settings(orthanc.settings())
    dialog, study = _search(window, qtbot, DEMO_PATIENT)
    dialog.results.setCurrentItem(study)
    assert dialog.retrieve_button.text().startswith("Retrieve study")
    dialog.retrieve_button.click()
    panel = window.study.panel
    _wait(qtbot, lambda: panel.index is not None, window)
    assert [(s.patient_id, s.eye) for s in panel.index.scans] == [(DEMO_PATIENT, "OS")]
    [vf] = panel.index.vf
    assert (vf.eye, round(vf.md_db, 1), round(vf.vfi)) == ("OS", -4.1, 88)
    assert panel.index.root.startswith(str(data_dir / "pacs"))


def test_a_corrupt_instance_is_named_and_the_window_keeps_running(window, orthanc, qtbot, data_dir):
    from orthanc_server import CORRUPT_PATIENT

    save_settings(orthanc.settings())
    dialog, study = _search(window, qtbot, CORRUPT_PATIENT)
    dialog.results.setCurrentItem(study.child(0))
    dialog.retrieve_button.click()
    qtbot.waitUntil(lambda: bool(window.warnings), timeout=60000)
    [path] = list(data_dir.glob("pacs/*/*/*.dcm"))
    assert path.name in window.warnings[-1] and window.state.volume is None
    window.menu_actions["send_pacs"].trigger()  # nothing on screen: nothing to send, said
    assert "Nothing to send yet" in window.infos[-1]
