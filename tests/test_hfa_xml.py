"""The HFA CZM XML perimetry export: the indices, pattern, date, eye and reliability read from a file in
the export's layout (written here), and a clear error for unknown or contradictory fields."""

import datetime as dt
import os
import subprocess
import sys
import threading

import pytest

from octviewer.study.hfa_xml import read_hfa_xml
from octviewer.study.vf import VfReadError, main, read_vf_file, write_opv

FIELDS = dict(patient="HFA-PAT-9",
              site="1", visit="2019-03-04", series_time="2019-03-04T10:57:20", display="SS-24-2 Thr", pattern="25",
              strategy="4", fp="3", fn="5", trials="17", errors="2", md="-4.56", md_p="2", psd="5.12", psd_p="1",
              vfi="88", ght="Outside Normal Limits")


def hfa_xml(tmp_path, name="exam.xml", extra="", **changes):
    f = {**FIELDS, **changes}
    text = f"""<?xml version="1.0" encoding="UTF-8"?>
<HFA_EXPORT>
  <PATIENT>
    <PATIENT_ID>{f['patient']}</PATIENT_ID><LAST_NAME>SYNTHETIC</LAST_NAME><GIVEN_NAME>TEST</GIVEN_NAME>
    <BIRTH_DATE>1950-01-01</BIRTH_DATE>
    <STUDY>
      <VISIT_DATE>{f['visit']}</VISIT_DATE>
      <SERIES>
        <SERIES_DATE_TIME>{f['series_time']}</SERIES_DATE_TIME><MODALITY>OPV</MODALITY><SITE>{f['site']}</SITE>
        <INSTRUMENT_NAME>HFA II-i</INSTRUMENT_NAME><DISPLAY_NAME>{f['display']}</DISPLAY_NAME>
        <FIELD_EXAM>
          <EXAM_TIME>10:57:20</EXAM_TIME><PUPIL_DIAMETER>3.0</PUPIL_DIAMETER>
          <STATIC_TEST>
            <TEST_PATTERN>{f['pattern']}</TEST_PATTERN><TEST_STRATEGY>{f['strategy']}</TEST_STRATEGY>
            <STIMULUS_COLOR>0</STIMULUS_COLOR><STIMULUS_SIZE>3</STIMULUS_SIZE>
            <FALSE_NEGATIVE_METHOD>1</FALSE_NEGATIVE_METHOD><FALSE_NEGATIVE_PERCENT>{f['fn']}</FALSE_NEGATIVE_PERCENT>
            <FALSE_POSITIVE_METHOD>1</FALSE_POSITIVE_METHOD><FALSE_POSITIVE_PERCENT>{f['fp']}</FALSE_POSITIVE_PERCENT>
            <FIXATION_CHECK><TRIALS>{f['trials']}</TRIALS><ERRORS>{f['errors']}</ERRORS></FIXATION_CHECK>
            <THRESHOLD_TEST>
              <SF_STATUS>0</SF_STATUS><NUM_THRESHOLD_POINTS>54</NUM_THRESHOLD_POINTS>
              <STATPAC>
                <GHT>{f['ght']}</GHT>
                <GLOBAL_INDICES>
                  <MD>{f['md']}</MD><MD_PROBABILITY>{f['md_p']}</MD_PROBABILITY>
                  <PSD>{f['psd']}</PSD><PSD_PROBABILITY>{f['psd_p']}</PSD_PROBABILITY>
                  <VFI>{f['vfi']}</VFI>{extra}
                </GLOBAL_INDICES>
              </STATPAC>
            </THRESHOLD_TEST>
          </STATIC_TEST>
        </FIELD_EXAM>
      </SERIES>
    </STUDY>
  </PATIENT>
</HFA_EXPORT>
"""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_the_indices_pattern_date_eye_and_reliability(tmp_path):
    [exam] = read_hfa_xml(hfa_xml(tmp_path))
    m = exam.measurement
    assert (m.patient_id, m.eye, m.date) == ("HFA-PAT-9", "OD", dt.date(2019, 3, 4))
    assert (m.md_db, m.psd_db, m.vfi) == (-4.56, 5.12, 88.0)
    assert (exam.test_pattern, exam.strategy, exam.ght) == ("24-2", "SITA Standard", "Outside Normal Limits")
    assert (exam.fixation_losses, exam.false_positive_pct, exam.false_negative_pct) == ("2/17", 3.0, 5.0)
    assert (exam.md_probability, exam.psd_probability) == ("2", "1")
    left = read_hfa_xml(hfa_xml(tmp_path, site="0", display="SF-30-2 Thr", pattern="", ght="2"))[0]
    assert (left.measurement.eye, left.test_pattern, left.strategy, left.ght) == ("OS", "30-2", "SITA Fast",
                                                                                  "GHT code 2")


def test_read_vf_file_dispatches_xml_beside_opv_and_csv(tmp_path):
    [m] = read_vf_file(hfa_xml(tmp_path))
    assert m.md_db == -4.56 and m.source.endswith("exam.xml")


@pytest.mark.parametrize("changes, field", [
    (dict(site="3"), "SITE is '3'"),
    (dict(site=""), "SITE is missing"),
    (dict(display="SS-10-2 Thr"), "TEST_PATTERN 25 is 24-2, but DISPLAY_NAME 'SS-10-2 Thr' says 10-2"),
    (dict(pattern="99", display="Custom"), "TEST_PATTERN '99' is not a pattern"),
    (dict(series_time="2019-03-05T09:00:00"), "VISIT_DATE 2019-03-04 and SERIES_DATE_TIME"),
    (dict(errors="20"), "20 errors in 17 trials"),
    (dict(fp="140"), "FALSE_POSITIVE_PERCENT is 140 %"),
    (dict(md="-400"), "MD is -400 dB"),
    (dict(vfi="abc"), "VFI is 'abc', not a number"),
    (dict(md="-4_5"), "MD is '-4_5', not a number"),  # float() read it as -45
    (dict(vfi="\u0668\u0668"), "VFI is '\u0668\u0668', not a number"),  # Arabic-Indic 88
    (dict(trials="1_7"), "FIXATION_CHECK/TRIALS is '1_7', not a number"),
    (dict(ght="Maybe"), "GHT is 'Maybe'"),
    (dict(md="", psd="", vfi=""), "none of MD, PSD and VFI"),
])
def test_unknown_or_contradictory_fields_name_the_file_and_field(tmp_path, changes, field):
    path = hfa_xml(tmp_path, **changes)
    with pytest.raises(VfReadError) as info:
        read_hfa_xml(path)
    assert str(path) in str(info.value) and field in str(info.value)


def test_a_field_given_twice_must_agree_and_entities_are_refused(tmp_path):
    with pytest.raises(VfReadError, match="MD is given 2 times with different values"):
        read_hfa_xml(hfa_xml(tmp_path, extra="<MD>-1.0</MD>"))
    assert read_hfa_xml(hfa_xml(tmp_path, extra="<MD>-4.56</MD>"))[0].measurement.md_db == -4.56
    bomb = tmp_path / "bomb.xml"
    bomb.write_text('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><PATIENT>&a;</PATIENT>')
    with pytest.raises(VfReadError, match="bomb.xml: the XML declares a document type"):
        read_hfa_xml(bomb)
    (tmp_path / "other.xml").write_text("<html><body/></html>")
    with pytest.raises(VfReadError, match="no PATIENT element"):
        read_hfa_xml(tmp_path / "other.xml")
    (tmp_path / "cut.xml").write_text("<HFA_EXPORT><PATIENT>")
    with pytest.raises(VfReadError, match="cut.xml: not well-formed XML"):
        read_hfa_xml(tmp_path / "cut.xml")


@pytest.mark.parametrize("codec, bom", [("utf-8", b""), ("utf-8", b"\xef\xbb\xbf"), ("utf-16-le", b"\xff\xfe"),
                                        ("utf-16-le", b""), ("utf-16-be", b"\xfe\xff"), ("utf-16-be", b"")])
def test_entities_are_refused_in_every_encoding(codec, bom, tmp_path):
    """The DOCTYPE check searched the raw bytes for ``<!DOCTYPE``: a UTF-16 file passed it and its
    internal entity expanded into the patient ID."""
    declared = "UTF-8" if codec == "utf-8" else "UTF-16"
    text = hfa_xml(tmp_path).read_text(encoding="utf-8").replace('encoding="UTF-8"', f'encoding="{declared}"')
    text = text.replace("<HFA_EXPORT>", '<!DOCTYPE HFA_EXPORT [<!ENTITY id "INJECTED-ID">]>\n<HFA_EXPORT>', 1)
    text = text.replace(FIELDS["patient"], "&id;")
    crafted = tmp_path / "crafted.xml"
    crafted.write_bytes(bom + text.encode(codec))
    with pytest.raises(VfReadError, match="crafted.xml: the XML declares a document type"):
        read_hfa_xml(crafted)
    # the same export without the declaration reads in that encoding
    plain = hfa_xml(tmp_path).read_text(encoding="utf-8").replace('encoding="UTF-8"', f'encoding="{declared}"')
    crafted.write_bytes(bom + plain.encode(codec))
    assert read_hfa_xml(crafted)[0].measurement.patient_id == FIELDS["patient"]


def test_a_fifo_named_xml_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "exam.xml"
    os.mkfifo(fifo)
    outcome = {}

    def read():
        try:
            read_hfa_xml(fifo)
        except VfReadError as exc:
            outcome["error"] = str(exc)

    worker = threading.Thread(target=read, daemon=True)
    worker.start()
    worker.join(5)
    if worker.is_alive():  # unblock the stuck reader so the test run can go on
        with open(fifo, "wb"):
            pass
    assert not worker.is_alive(), "the XML reader blocked on a named pipe"
    assert "exam.xml" in outcome["error"] and "named pipe" in outcome["error"]


def test_command_line_prints_the_checked_values_without_the_patient(tmp_path, capsys):
    xml = hfa_xml(tmp_path)
    opv = write_opv(tmp_path / "field.dcm", "OPV-PAT-3", "OS", dt.date(2020, 5, 6), md_db=-2.5, psd_db=1.75, vfi=97)
    assert main([str(xml), str(opv)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (f"{xml}: OD 2019-03-04  MD -4.56 dB  PSD 5.12 dB  VFI 88 %  (24-2, SITA Standard, "
                      "GHT: Outside Normal Limits, fixation losses 2/17, false pos. 3 %, false neg. 5 %)")
    assert out[1] == f"{opv}: OS 2020-05-06  MD -2.50 dB  PSD 1.75 dB  VFI 97 %"
    assert not any("PAT" in line.split(": ", 1)[1] for line in out)  # no patient ID
    bad = hfa_xml(tmp_path, name="bad.xml", md="-400")
    assert main([str(bad), str(xml)]) == 1
    captured = capsys.readouterr()
    assert captured.err.strip() == f"refused: {bad}: MD is -400 dB, outside the -35 to 5 dB a perimeter reports"
    assert captured.out.startswith(f"{xml}: OD 2019-03-04")


def test_python_dash_m_runs_the_same_reader(tmp_path):
    """Also without runpy's RuntimeWarning ("'octviewer.study.vf' found in sys.modules after import of
    package 'octviewer.study', but prior to execution"): the package imported the module it was asked
    to run (attack run L6)."""
    bad = hfa_xml(tmp_path, name="bad.xml", site="")
    run = subprocess.run([sys.executable, "-m", "octviewer.study.vf", str(hfa_xml(tmp_path)), str(bad)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stderr
    assert "MD -4.56 dB" in run.stdout and f"{bad}: SITE is missing" in run.stderr and "Traceback" not in run.stderr
    assert "RuntimeWarning" not in run.stderr, run.stderr


@pytest.mark.parametrize("encoding", ["Shift_JIS", "GB18030", "UTF-7", "zlib", "x-no-such-codec"])
def test_an_encoding_the_parser_cannot_take_is_named_not_raised(encoding, tmp_path):
    """An export declaring a multi-byte code page (a Japanese HFA's Shift_JIS), a codec that is no text
    encoding or an unknown name ended ``python -m octviewer.study.vf`` in a raw ValueError, LookupError
    or UnicodeError traceback (the study index called it "not a supported OCT file")."""
    path = hfa_xml(tmp_path)
    path.write_text(path.read_text(encoding="utf-8").replace('encoding="UTF-8"', f'encoding="{encoding}"'),
                    encoding="utf-8")
    with pytest.raises(VfReadError, match="exam.xml: the XML declares an encoding this reader cannot decode"):
        read_hfa_xml(path)


def test_a_contradictory_patient_id_is_not_shown_and_control_characters_are_refused(tmp_path, capsys):
    """PATIENT_ID given twice put both patient IDs into the message (stderr of the command, the study's
    list of left-out files); a character reference (``&#10;``) put a line break into the patient ID,
    which the CSV and OPV readers refuse."""
    path = hfa_xml(tmp_path, patient="HFA-PAT-9</PATIENT_ID><PATIENT_ID>HFA-PAT-7")
    assert main([str(path)]) == 1
    err = capsys.readouterr().err
    assert "PATIENT_ID is given 2 times" in err and "HFA-PAT-9" not in err and "HFA-PAT-7" not in err
    with pytest.raises(VfReadError, match="PATIENT_ID holds the control character"):
        read_hfa_xml(hfa_xml(tmp_path, patient="HFA-PAT-9&#10;OTHER"))
