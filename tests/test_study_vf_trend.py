"""Measured VF (DICOM OPV and CSV) and the progression statistics."""

import datetime as dt
import math

import numpy as np
import pydicom
import pytest
from scipy import stats

from octviewer.study import MIN_VISITS, VfReadError, read_opv, read_vf_table, trend, write_opv
from octviewer.study.vf import nearest_vf


def test_opv_round_trip_uses_the_standard_attributes(tmp_path):
    path = write_opv(tmp_path / "vf.dcm", "P-1", "OS", dt.date(2021, 3, 4), md_db=-4.25, psd_db=3.5, vfi=88.0)
    ds = pydicom.dcmread(path)
    assert ds.Modality == "OPV" and ds.SOPClassUID.name.startswith("Ophthalmic Visual Field Static Perimetry")
    assert ds[0x0024, 0x0066].value == pytest.approx(-4.25)  # Global Deviation From Normal (MD)
    assert ds[0x0024, 0x0068].value == pytest.approx(3.5)  # Localized Deviation From Normal (PSD)
    obs = ds.VisualFieldGlobalResultsIndexSequence[0].DataObservationSequence[0]
    assert obs.ConceptNameCodeSequence[0].CodeValue == "111852"  # DCM "Visual Field Index"
    m = read_opv(path)
    assert (m.patient_id, m.eye, m.date) == ("P-1", "OS", dt.date(2021, 3, 4))
    assert (m.md_db, m.psd_db, m.vfi) == (pytest.approx(-4.25), pytest.approx(3.5), pytest.approx(88.0))
    assert m.as_dict() == {"vfi": pytest.approx(88.0), "md": pytest.approx(-4.25), "psd": pytest.approx(3.5)}


def test_opv_reader_refuses_an_oct_file_naming_it(tmp_path, small_volume):
    from octviewer import save_volume

    path = save_volume(small_volume, tmp_path / "scan.dcm")
    with pytest.raises(VfReadError, match="scan.dcm: not a DICOM visual-field"):
        read_opv(path)


def test_vf_table_reports_every_bad_row(tmp_path):
    good = tmp_path / "vf.csv"
    good.write_text("patient_id,eye,date,vfi,md,psd\nP1,OD,2020-01-02,95,-1.5,2\nP1,OS,2020-01-02,,,\n")
    [m] = read_vf_table(good)
    assert (m.eye, m.date, m.md_db, m.psd_db, m.vfi) == ("OD", dt.date(2020, 1, 2), -1.5, 2.0, 95.0)
    bad = tmp_path / "bad.csv"
    bad.write_text("patient_id,eye,date,vfi,md,psd\nP1,XX,2020-01-02,95,-1,2\nP1,OD,2020-01-02,95,abc,2\n")
    with pytest.raises(VfReadError) as err:
        read_vf_table(bad)
    assert "row 2" in str(err.value) and "row 3" in str(err.value) and "bad.csv" in str(err.value)


def test_compare_vf_pairs_predicted_and_measured():
    from octviewer.study import VfMeasurement, compare_vf

    rows = compare_vf({"vfi": 90.0, "md": -3.0}, VfMeasurement("P", "OD", None, vfi=95.5, psd_db=2.0))
    assert [(r.name, r.predicted, r.measured, r.difference) for r in rows] == [
        ("vfi", 90.0, 95.5, -5.5), ("md", -3.0, None, None), ("psd", None, 2.0, None)]
    assert [r.difference for r in compare_vf({"md": -1.0}, None)] == [None, None, None]


def test_nearest_vf_matches_within_the_window_only(tmp_path):
    from octviewer.study import VfMeasurement

    ms = [VfMeasurement("P", "OD", dt.date(2020, 1, 20), md_db=-1.0),
          VfMeasurement("P", "OD", dt.date(2020, 6, 1), md_db=-2.0),
          VfMeasurement("P", "OS", dt.date(2020, 1, 2), md_db=-9.0)]
    assert nearest_vf(ms, "OD", dt.date(2020, 1, 1)).md_db == -1.0
    assert nearest_vf(ms, "OD", dt.date(2020, 5, 20)).md_db == -2.0
    assert nearest_vf(ms, "OD", dt.date(2020, 3, 25)) is None  # 65 and 68 days away
    assert nearest_vf(ms, "OS", dt.date(2021, 1, 1)) is None


def _dates(n, years=1.0):
    start = dt.date(2015, 3, 1)
    return [start + dt.timedelta(days=round(365.25 * years * k)) for k in range(n)]


def test_trend_agrees_with_scipy_linregress():
    rng = np.random.default_rng(0)
    dates = _dates(7, 0.5)
    years = np.array([(d - dates[0]).days / 365.25 for d in dates])
    values = -1.0 - 0.9 * years + rng.normal(0, 0.4, len(dates))
    t = trend(dict(zip(dates, values)), measure="md")
    ref = stats.linregress(years, values)
    assert t.slope_per_year == pytest.approx(ref.slope) and t.p == pytest.approx(ref.pvalue)
    half = stats.t.ppf(0.975, len(dates) - 2) * ref.stderr
    assert t.ci == (pytest.approx(ref.slope - half), pytest.approx(ref.slope + half))
    assert t.significant == (t.ci[1] < 0 and t.slope_per_year <= -0.5)
    fit, lo, hi = t.band(years)
    assert np.all(lo <= fit) and np.all(fit <= hi)
    widths = hi - lo
    assert np.argmin(widths) == np.argmin(abs(years - years.mean()))  # narrowest at the mean time


def test_flag_needs_both_a_ci_excluding_zero_and_a_clinical_rate():
    dates = _dates(5)
    steep = trend(zip(dates, [0.0, -1.0, -2.1, -2.9, -4.0]), measure="md")
    assert steep.significant and "significant change" in steep.describe("dB")
    slow = trend(zip(dates, [0.0, -0.2, -0.41, -0.6, -0.8]), measure="md")  # CI excludes 0, -0.2 dB/yr
    assert slow.ci[1] < 0 and not slow.significant
    noisy = trend(zip(dates, [0.0, -3.0, 1.0, -4.0, -2.5]), measure="md")  # steep but uncertain
    assert noisy.slope_per_year < -0.5 and noisy.ci[0] < 0 < noisy.ci[1] and not noisy.significant
    psd = trend(zip(dates, [2.0, 3.0, 4.1, 4.9, 6.0]), measure="psd")  # worse is upwards for PSD
    assert psd.significant
    rising_md = trend(zip(dates, [-4.0, -2.9, -2.1, -1.0, 0.0]), measure="md")
    assert rising_md.ci[0] > 0 and not rising_md.significant


def test_fewer_than_three_visits_give_no_interval_and_no_flag():
    dates = _dates(2)
    t = trend(zip(dates, [90.0, 80.0]), measure="rnfl")
    assert t.n == 2 < MIN_VISITS and not t.enough and not t.significant
    assert math.isnan(t.ci[0]) and "at least 3" in t.describe("um")
    same_day = trend([(dates[0], 90.0), (dates[0], 91.0), (dates[0], 89.0)], measure="rnfl")
    assert math.isnan(same_day.slope_per_year) and not same_day.significant
    assert trend({}, measure="md").n == 0


def test_an_empty_ou_cell_says_why():
    """A blank C/D or RNFL cell in the OU table and report carries its reason (third-session walk-through)."""
    from types import SimpleNamespace

    from octviewer.structure.quality import Quality
    from octviewer.study.ou import EyeSummary

    def eye(structure, **kw):
        return EyeSummary(eye="OD", paths=[], structure=structure, **kw)
    refused = SimpleNamespace(quality=Quality(False, 0.1, ("no signal",)), scan_pattern="volume")
    circle = SimpleNamespace(quality=Quality(True, 0.9, ()), scan_pattern="circle")
    sparse = SimpleNamespace(quality=Quality(True, 0.9, ("B-scans 0.24 mm apart: too sparse to measure the disc and "
                                                         "cup (not reported)",)), scan_pattern="volume")
    assert eye(None).missing_reason("cup_to_disc") == "no structure measurement"
    assert "no signal" in eye(refused).missing_reason("cup_to_disc")
    assert "circle scan" in eye(circle).missing_reason("cup_to_disc")
    assert "too sparse" in eye(sparse).missing_reason("cup_to_disc")
    assert "no visual field" in eye(circle).missing_reason("md_measured")
    assert eye(None, error="OD1.dcm: truncated or damaged").missing_reason("probability").startswith("OD1.dcm")


# -- impossible measured values are refused, naming the file and the field ----------------------------
def _opv_with(path, **values):
    """An OPV file holding values write_opv itself would refuse to format (NaN goes in as text)."""
    path = write_opv(path, "P-1", "OD", dt.date(2021, 3, 4), md_db=-2.0, psd_db=2.0, vfi=95.0)
    ds = pydicom.dcmread(path)
    if "vfi" in values:
        ds.VisualFieldGlobalResultsIndexSequence[0].DataObservationSequence[0].NumericValue = values["vfi"]
    if "md" in values:
        ds.GlobalDeviationFromNormal = values["md"]
    ds.save_as(path)
    return path


@pytest.mark.parametrize("values, field", [({"vfi": "NaN"}, "VFI"), ({"md": -500.0}, "MD"), ({"vfi": "250"}, "VFI")])
def test_opv_with_an_impossible_value_is_refused(tmp_path, values, field):
    # Old: VFI NaN was shown as "nan %", MD -500 dB beside the estimate and in the trend.
    path = _opv_with(tmp_path / "field.dcm", **values)
    with pytest.raises(VfReadError) as err:
        read_opv(path)
    assert str(err.value).startswith("field.dcm:") or "field.dcm" in str(err.value)
    assert field in err.value.problem


@pytest.mark.parametrize("row, field", [("250,-1,2", "VFI"), ("95,50,2", "MD"), ("95,-1,-3", "PSD"),
                                        ("95,nan,2", "MD"), ("inf,-1,2", "VFI")])
def test_vf_table_with_an_impossible_value_is_refused(tmp_path, row, field):
    # Old: a CSV VFI of 250 %, MD +50 dB and PSD -3 dB were all accepted.
    table = tmp_path / "vf.csv"
    table.write_text(f"patient_id,eye,date,vfi,md,psd\nP1,OD,2020-01-02,{row}\n")
    with pytest.raises(VfReadError) as err:
        read_vf_table(table)
    assert "vf.csv" in str(err.value) and "row 2" in str(err.value) and field in str(err.value)


def test_study_keeps_good_vf_rows_and_lists_the_impossible_ones(tmp_path):
    from octviewer.study import index_folder

    (tmp_path / "vf.csv").write_text("patient_id,eye,date,vfi,md,psd\nP1,OD,2020-01-02,95,-1,2\n"
                                     "P1,OS,2020-01-02,250,-1,2\n")
    _opv_with(tmp_path / "opv.dcm", md=-500.0)
    index = index_folder(tmp_path, cache_dir=tmp_path / "cache")
    assert [(m.eye, m.vfi) for m in index.vf] == [("OD", 95.0)]
    problems = dict(index.problems)
    assert "row 3" in problems[str(tmp_path / "vf.csv")] and "VFI" in problems[str(tmp_path / "vf.csv")]
    assert "MD" in problems[str(tmp_path / "opv.dcm")]


# -- visual_fields.csv: damage that cut rows short or merged them, numbers float() reads too kindly --------
HEADER = "patient_id,eye,date,vfi,md,psd\n"
GOOD = "P1,OD,2020-01-02,95,-1.5,2\n"


@pytest.mark.parametrize("body, where, why", [
    (GOOD + "P2,OD,2020-01-02,95,-1," + "x" * (200 << 10) + "\nP3,OS,2020-01-02,90,-2,3\n", "line 3", "128 KiB"),
    (GOOD + 'P2,OD,"2020-01-02,90,-2,3\nP3,OS,2020-01-03,80,-5,4\n', "row 3", "quote left open")])
def test_a_damaged_vf_table_is_refused_whole_and_named_in_the_study(body, where, why, tmp_path):
    """A cell over 128 KiB raised a raw _csv.Error (and the study counted the table as "other files",
    its good rows lost in silence); a quote left open swallowed the rows below it."""
    from octviewer.study import index_folder

    table = tmp_path / "visual_fields.csv"
    table.write_text(HEADER + body)
    with pytest.raises(VfReadError) as err:
        read_vf_table(table)
    assert str(err.value).startswith(f"{table}: {where}") and why in str(err.value)
    index = index_folder(tmp_path, cache_dir=tmp_path / "cache")
    assert index.vf == [] and why in dict(index.problems)[str(table)]


@pytest.mark.parametrize("row, why", [("P\x001,OD,2020-01-02,95,-1,2", "patient_id holds the control character"),
                                      ("P1,OD,2020-01-02,9_5,-1,2", "VFI is '9_5', not a number"),
                                      ("P1,OD,2020-01-02,95,-1_0,2", "MD is '-1_0', not a number"),
                                      ("P1,OD,2020-01-02,\u0669\u0665,-1,2", "VFI is"),
                                      ("P1,OD,2020-01-02,95,-1,1e999", "PSD is '1e999', not a number")])
def test_vf_table_rows_with_a_nul_byte_or_loose_numbers_are_refused_and_the_rest_kept(row, why, tmp_path):
    """float() read "1_0" as 10 and Arabic-Indic digits as a number; a NUL byte went into the patient ID."""
    from octviewer.study.vf import read_vf_rows

    table = tmp_path / "vf.csv"
    table.write_text(HEADER + GOOD + row + "\n", encoding="utf-8")
    good, problems = read_vf_rows(table)
    assert [(m.patient_id, m.vfi) for m in good] == [("P1", 95.0)]
    [problem] = problems
    assert problem.startswith("row 3: ") and why in problem


# -- DICOM OPV files that contradict themselves ---------------------------------------------------------
def _second_vfi(ds, value="88", unit="%"):
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    obs = Dataset()
    obs.ValueType = "NUMERIC"
    obs.ConceptNameCodeSequence = Sequence([ds.VisualFieldGlobalResultsIndexSequence[0].DataObservationSequence[0]
                                            .ConceptNameCodeSequence[0]])
    obs.NumericValue = value
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = unit, "UCUM", unit
    obs.MeasurementUnitsCodeSequence = Sequence([code])
    ds.VisualFieldGlobalResultsIndexSequence[0].DataObservationSequence.append(obs)


def _in_db(ds):
    ds.VisualFieldGlobalResultsIndexSequence[0].DataObservationSequence[0].MeasurementUnitsCodeSequence[0] \
        .CodeValue = "dB"


def _modality_opt(ds):
    ds.Modality = "OPT"


def _sop_class_opt(ds):
    from pydicom.uid import OphthalmicTomographyImageStorage

    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = OphthalmicTomographyImageStorage


@pytest.mark.parametrize("change, why", [
    (_second_vfi, "VFI (Visual Field Index) is given 2 times with different values (88, 95)"),
    (_in_db, "VFI (Visual Field Index) is given in 'dB'"),
    (lambda ds: setattr(ds, "PatientID", "A\\B"), "PatientID holds 2 values ('A\\\\B')"),
    (lambda ds: setattr(ds, "GlobalDeviationFromNormal", [-2.0, -9.0]), "MD (Global Deviation From Normal) holds 2"),
    (_modality_opt, "but the Modality is 'OPT'"),
    (_sop_class_opt, "contradicts itself about being a visual field")], ids=[
    "two VFI", "VFI in dB", "two patient IDs", "two MD", "modality OPT", "SOP class OPT"])
def test_an_opv_file_that_contradicts_itself_is_refused_naming_the_field(change, why, tmp_path):
    """Each was read without a word: the last VFI won, a VFI in dB was taken as %, "A\\B" became the
    patient "['A', 'B']", and an OPV file with Modality OPT was indexed as an OCT scan."""
    from octviewer.study import index_folder

    path = write_opv(tmp_path / "field.dcm", "P-1", "OD", dt.date(2021, 3, 4), md_db=-2.0, psd_db=2.0, vfi=95.0)
    ds = pydicom.dcmread(path)
    change(ds)
    ds.save_as(path)
    with pytest.raises(VfReadError) as err:
        read_opv(path)
    assert str(err.value).startswith(f"{path}: ") and why in err.value.problem
    index = index_folder(tmp_path, cache_dir=tmp_path / "cache")
    assert index.vf == [] and index.scans == [] and why in dict(index.problems)[str(path)]
    # the untouched file reads
    write_opv(path, "P-1", "OD", dt.date(2021, 3, 4), md_db=-2.0, psd_db=2.0, vfi=95.0)
    assert read_opv(path).vfi == pytest.approx(95.0)


def test_an_opv_value_pydicom_cannot_decode_is_refused_by_the_command(tmp_path, capsys):
    """pydicom decodes a value when it is first read: an MD (FL) stored in 6 bytes raised a raw
    BytesLengthException out of read_opv, a traceback from ``python -m octviewer.study.vf``."""
    from octviewer.study.vf import main

    path = write_opv(tmp_path / "field.dcm", "P-1", "OD", dt.date(2021, 3, 4), md_db=-2.0, psd_db=2.0, vfi=95.0)
    data = path.read_bytes()
    tag = b"\x24\x00\x66\x00FL\x04\x00"  # (0024,0066) Global Deviation From Normal, 4 bytes
    start = data.index(tag)
    path.write_bytes(data[:start] + b"\x24\x00\x66\x00FL\x06\x00" + b"\x01\x02\x03\x04\x05\x06" + data[start + 12:])
    with pytest.raises(VfReadError, match="field.dcm: not a readable DICOM file"):
        read_opv(path)
    assert main([str(path)]) == 1
    assert "not a readable DICOM file" in capsys.readouterr().err


def test_rows_of_one_eye_and_date_that_disagree_are_refused_naming_both(tmp_path):
    """Two rows for the same eye and date with different MD: the first was kept without a word, the
    second dropped as "the manifest repeats the visit's VF" (attack run L4). Rows that repeat the same
    values stay one measurement; a date written 20200102 is the same date as 2020-01-02."""
    from octviewer.study import index_folder
    from octviewer.study.vf import read_vf_rows

    table = tmp_path / "vf.csv"
    table.write_text(HEADER + GOOD + "P1,OS,2020-01-02,90,-2,3\nP1,OD,20200102,95,-7.5,2\nP1,OS,2020-01-02,90,-2,3\n")
    good, problems = read_vf_rows(table)
    assert [(m.eye, m.md_db) for m in good] == [("OS", -2.0)]
    [problem] = problems
    assert problem.startswith("rows 2, 4: ") and "MD -1.5" in problem and "MD -7.5" in problem and "P1" not in problem
    with pytest.raises(VfReadError, match="vf.csv: rows 2, 4"):
        read_vf_table(table)
    index = index_folder(tmp_path, cache_dir=tmp_path / "cache")
    assert [m.eye for m in index.vf] == ["OS"] and "rows 2, 4" in dict(index.problems)[str(table)]


def test_a_vf_table_with_a_column_given_twice_is_refused_whole(tmp_path):
    """`patient_id,eye,date,md,md`: csv.DictReader kept the last MD of each row without a word (found in
    the third attack round)."""
    table = tmp_path / "vf.csv"
    table.write_text("patient_id,eye,date,md,md\nP1,OD,2020-01-02,-1.5,-9.5\n")
    with pytest.raises(VfReadError, match="vf.csv: the column.s. md are given twice"):
        read_vf_table(table)


def test_the_vf_command_prints_a_tables_good_rows_beside_its_refused_ones(tmp_path, capsys):
    """``python -m octviewer.study.vf table.csv`` refused the whole table for one bad row, so none of its
    good measurements could be checked, while the study keeps the good rows and lists the bad one; and it
    printed VFI 97.5 as 98. Now it reads a table as the study does and keeps VFI's decimal."""
    from octviewer.study.vf import main

    table = tmp_path / "vf.csv"
    table.write_text(HEADER + "P1,OD,2020-01-02,97.5,-1.5,2\nP1,OS,2020-01-02,250,-2,3\n")
    assert main([str(table)]) == 1
    out, err = capsys.readouterr()
    assert "OD 2020-01-02" in out and "VFI 97.5 %" in out and "OS" not in out and "P1" not in out
    assert err.startswith(f"refused row: {table}: row 3") and "VFI" in err
