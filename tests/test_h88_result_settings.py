"""A result carries the analysis settings it was made with (H88, after attack run 13's A13-11). The identified PDF
report names its figures' settings, and `octviewer-pacs send SCAN --pdf REPORT` refuses a report made otherwise; the
window named the CURRENT Analysis > Quality check tick and View > Segmentation, which apply to the next analysis. After
a toggle, a report named settings its figures were not made with: send refused a good report, or filed one made with
the check off beside its own SR. Now the result's own settings (``ViewerState.made_with``, ``ScanResult.settings``,
kept in the results store) are named."""

import dataclasses
import json

import pytest
from test_attack13_pacs import GATE_WORDS, _down, _scan_of

from octviewer.pacs.cli import main

data_dir = pytest.importorskip("orthanc_server").data_dir  # fixture

ON = b"octviewer report settings [quality gate on, vendor segmentation where the file has it (else own)]"
OFF = b"octviewer report settings [quality gate off, vendor segmentation where the file has it (else own)]"
OFF_WORDS = ("quality gate off", "vendor segmentation where the file has it (else own)")
UNNAMED = "the report does not name the analysis settings it was made with"


@pytest.fixture
def window(qtbot, monkeypatch, data_dir):
    from conftest import open_window

    from octviewer.resources import DEMO_MODEL

    yield from open_window(qtbot, monkeypatch, DEMO_MODEL)  # Analysis > Quality check unticked, as it leaves it


def _export(qtbot, w, monkeypatch, tmp_path, name: str) -> bytes:
    """File > Export PDF report, identified (the reference with the settings is in identified reports only)."""
    from test_gui_walkthrough_h2 import _export_pdf

    _export_pdf(qtbot, w, monkeypatch, tmp_path, identify=True, name=name)
    return (tmp_path / name).read_bytes()


def _send(conf, scan, pdf, capsys) -> tuple[int, str]:
    """`octviewer-pacs send SCAN --pdf PDF` through its main: (exit status, stdout and stderr)."""
    code = main([*conf, "send", str(scan), "--pdf", str(pdf), "--device", "cpu"])
    out = capsys.readouterr()
    return code, out.out + out.err


def test_a_result_made_with_the_check_on_is_reported_so_after_the_ticks_moved(qtbot, window, monkeypatch, tmp_path,
                                                                              capsys):
    """Analysis > Quality check on, File > Open a good scan, then the check unticked and View > Segmentation > own
    (the scan has no lines of its own, so nothing is analysed again): the result on screen was made with the check
    on and the file's lines where it has them. File > Export PDF and File > Send results to PACS name those, and
    `send --pdf` files the report (it analyses so too); the report named "quality gate off, own segmentation" and
    send refused it."""
    from test_gui_walkthrough import _open_by_menu

    from octviewer.gui.pacs.actions import PacsActions
    from octviewer.pacs import save_settings
    from octviewer.pacs.config import PacsSettings

    w = window
    w.menu_actions["quality_gate"].trigger()
    assert w.state.options.gate
    scan = _scan_of(tmp_path, "ON-8801", "SETTINGS^ON")
    _open_by_menu(qtbot, w, scan, monkeypatch, timeout=240000)
    assert w.state.prediction is not None and w.state.structure is not None and w.state.structure.quality.ok
    w.menu_actions["quality_gate"].trigger()
    w.menu_actions["segmentation_own"].trigger()
    assert not w.state.options.gate and w.state.options.segmentation == "own" and w.state.prediction is not None

    assert ON in _export(qtbot, w, monkeypatch, tmp_path, "on.pdf")
    conf = _down(tmp_path, capsys)
    code, said = _send(conf, scan, tmp_path / "on.pdf", capsys)
    assert code == 1 and "2 kept in the outbox" in said, said  # filed (the archive is down: queued), not refused

    save_settings(PacsSettings(archive_ae="ARCHIVE", archive_host="127.0.0.1", archive_port=_free_port(),
                               timeout_s=5))
    sent = []
    real = PacsActions._report_pdf
    monkeypatch.setattr(PacsActions, "_report_pdf", lambda self: sent.append(real(self)) or sent[-1])
    w.menu_actions["send_pacs"].trigger()
    qtbot.waitUntil(lambda: not w._pacs_actions.work.busy(), timeout=60000)
    assert len(sent) == 1 and ON in sent[0]


def _free_port() -> int:
    import orthanc_server

    return orthanc_server.free_port()


def test_a_result_made_with_the_check_off_is_reported_so_after_it_was_ticked(qtbot, window, monkeypatch, tmp_path,
                                                                             capsys):
    """The converse: a good scan analysed with the check off, the check ticked afterwards. The report names
    "quality gate off" and send refuses it; it named "on" (the scan passes the check, so nothing on screen said
    otherwise) and send filed a report of figures made without the check beside its own SR made with it."""
    from test_gui_walkthrough import _open_by_menu

    w = window
    scan = _scan_of(tmp_path, "OFF-8802", "SETTINGS^OFF")
    _open_by_menu(qtbot, w, scan, monkeypatch, timeout=240000)
    assert w.state.prediction is not None and w.state.structure.quality.ok
    w.menu_actions["quality_gate"].trigger()
    assert w.state.options.gate and w.state.prediction is not None

    pdf = _export(qtbot, w, monkeypatch, tmp_path, "off.pdf")
    assert OFF in pdf and ON not in pdf
    code, said = _send(_down(tmp_path, capsys), scan, tmp_path / "off.pdf", capsys)
    assert code == 2 and f"--pdf {tmp_path / 'off.pdf'}: {GATE_WORDS}" in said and "Traceback" not in said, said
    assert w.state.made_with == OFF_WORDS


def test_a_result_from_the_results_store_keeps_its_settings(qtbot, window, monkeypatch, tmp_path, capsys):
    """A result remembered in the results store comes back with the settings it was made with: opened again
    (from the store), the check ticked afterwards, its report names "quality gate off" and send refuses it. A row
    remembered before results carried their settings still reads (settings not known) and is made again, with
    them, rather than shown with a report that could not say how it was made."""
    from test_gui_walkthrough import _open_by_menu

    from octviewer.pipeline.store import ResultsStore

    w = window
    store = ResultsStore(tmp_path / "results.sqlite")
    w.tasks.store = store
    results = []
    w.tasks.analysed.connect(lambda generation, result: results.append(result))
    scan = _scan_of(tmp_path, "STORE-8803", "SETTINGS^STORE")
    try:
        _open_by_menu(qtbot, w, scan, monkeypatch, timeout=240000)
        assert not results[-1].from_store
        _open_by_menu(qtbot, w, scan, monkeypatch, timeout=240000)  # the same file again: from the store
        assert results[-1].from_store and w.state.prediction.remembered
        w.menu_actions["quality_gate"].trigger()
        assert w.state.options.gate
        assert OFF in _export(qtbot, w, monkeypatch, tmp_path, "stored.pdf")
        code, said = _send(_down(tmp_path, capsys), scan, tmp_path / "stored.pdf", capsys)
        assert code == 2 and GATE_WORDS in said, said
        assert results[-1].settings == OFF_WORDS and w.state.made_with == OFF_WORDS

        # the row as a store written before this change holds it: no settings in its document
        (key, doc, blob, network), = store._db.execute("SELECT key, doc, arrays, network FROM results").fetchall()
        old = json.loads(doc)
        assert old.pop("settings") == {"__tuple__": list(OFF_WORDS)}
        old = json.dumps(old)
        store._db.execute("UPDATE results SET doc = ?, mac = ? WHERE key = ?",
                          (old, store._mac("results", key, old, blob, network), key))
        held = store.get(key)
        assert held is not None and held.settings is None and held.prediction is not None  # read, not refused
        w.menu_actions["quality_gate"].trigger()  # unticked again: the stored row's options
        _open_by_menu(qtbot, w, scan, monkeypatch, timeout=240000)
        assert not results[-1].from_store and results[-1].settings == OFF_WORDS  # made again, not served
        assert w.state.made_with == OFF_WORDS and store.get(key).settings == OFF_WORDS
    finally:
        w.tasks.store = None
        store.close()


def test_a_result_whose_settings_are_not_known_is_reported_without_any(qtbot, window, monkeypatch, tmp_path,
                                                                       capsys):
    """A result that does not say how it was made (``ScanResult.settings`` None) has a report naming no
    settings, which send refuses ("export it again from the window"): the window named its ticks for it."""
    from test_gui_walkthrough import _open_by_menu

    from octviewer.pipeline import scan as pipeline_scan

    real = pipeline_scan._finish

    def unknown(*args, **kwargs):
        result = real(*args, **kwargs)
        return dataclasses.replace(result, settings=None) if hasattr(result, "settings") else result
    monkeypatch.setattr(pipeline_scan, "_finish", unknown)
    w = window
    scan = _scan_of(tmp_path, "UNKNOWN-8804", "SETTINGS^UNKNOWN")
    _open_by_menu(qtbot, w, scan, monkeypatch, timeout=240000)
    assert w.state.prediction is not None
    pdf = _export(qtbot, w, monkeypatch, tmp_path, "unknown.pdf")
    assert b"octviewer report settings [" not in pdf and b"octviewer report of scan " in pdf
    code, said = _send(_down(tmp_path, capsys), scan, tmp_path / "unknown.pdf", capsys)
    assert code == 2 and UNNAMED in said and "export it again from the window" in said, said
    assert w.state.made_with is None
