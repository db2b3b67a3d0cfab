"""Attack run 16, A16-6: the structured report filed in the archive gave every quadrant, sector and clock hour as a
plain measurement and class, where the window, the PDF and the CSV print the approximate ones "~" and the class
"uncertain"; its quality notes were cut at 64 characters in mid-word."""

import orthanc_server
import pydicom
import pytest
from pydicom.uid import generate_uid

from octviewer.pacs.cli import main

orthanc, data_dir = orthanc_server.orthanc, orthanc_server.data_dir  # fixtures


@pytest.mark.slow  # one tiny demo cube analysed on the CPU
def test_sent_sr_says_which_rnfl_regions_are_approximate_and_keeps_whole_notes(orthanc, data_dir, tmp_path):
    from test_attack14_pacs import _conf

    from octviewer.io import load_volume
    from octviewer.pacs.sr import QUALITY_NOTE, RNFL_APPROXIMATE, sr_values
    from octviewer.pipeline.scan import analyse_scan
    from octviewer.study.demo import write_demo_study

    study = write_demo_study(tmp_path / "study", patients=1, visits=1)
    [scan] = sorted(study.glob("scans/*/OD_*.dcm"))
    ds = pydicom.dcmread(scan)
    orthanc_server._file_with_patient(ds, "APPROX-1606", "APPROX^SR", generate_uid(), "20240101", series_number=1)
    scan = tmp_path / "od.dcm"
    ds.save_as(scan, enforce_file_format=True)
    # what the window and the CSV show of this scan: most of the circle unsure, the regions printed "~"
    report = analyse_scan(load_volume(str(scan)), None).structure
    assert report.too_unsure_to_classify and report.uncertain_quadrants and report.uncertain_clock_hours

    assert main([*_conf(orthanc, tmp_path), "send", str(scan), "--device", "cpu"]) == 0
    [sr] = [orthanc.dataset(i["ID"]) for i in orthanc.instances_of("APPROX-1606")
            if orthanc.rest(f"/instances/{i['ID']}/series")["MainDicomTags"].get("Modality") == "SR"]
    values = sr_values(sr)
    rnfl, quality = values["RNFL"], values["quality"]
    quadrant = report.uncertain_quadrants[0]
    assert rnfl[f"RNFL class, quadrant {quadrant}"].startswith("uncertain: ")
    assert rnfl["RNFL class, global mean"].startswith("uncertain: ")  # too unsure to classify
    approximate = rnfl[RNFL_APPROXIMATE]
    assert f"quadrant{'s' if len(report.uncertain_quadrants) > 1 else ''} {', '.join(report.uncertain_quadrants)}" \
        in approximate and "clock hours 1, 2" in approximate
    notes = [v for k, v in quality.items() if k.startswith(QUALITY_NOTE)]
    assert notes and any(len(n) > 64 for n in notes)  # whole, not cut at 64
    assert {" ".join(str(r).split()) for r in report.quality.reasons[:8]} == set(notes)
