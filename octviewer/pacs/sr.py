"""The scan's findings as DICOM: a TID 1500 measurement report (highdicom) and the PDF report
as Encapsulated PDF, both filed in the source scan's study with its patient module.

Why a structured report: the next reader of the patient's record (in the archive's viewer, or
another program) gets the numbers with their meaning, not a picture of them. Concepts that DICOM
codes (VFI, glaucoma, normal) use those codes; the rest use this project's private scheme
``99OCTVIEWER`` with plain meanings, which is what PS3.16 provides for concepts without a code.

The report holds, in four measurement groups: the network's probability, decision and threshold
with the VF estimates and whether each was shown to beat the class-mean baseline (model card); the
RNFL (global, quadrants, sectors, each with its normative class; clock hours, thickness only); the optic disc (C/D,
rim, disc and cup area, BMO-MRW); and the quality verdict. The model's name and version are the
algorithm identification. ``sr_values`` reads such a report back (the tests read it from the
archive and check every value).
"""

from __future__ import annotations

import datetime as dt
import math

import highdicom as hd
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sr.codedict import codes
from pydicom.uid import EncapsulatedPDFStorage, ExplicitVRLittleEndian, generate_uid

from ..core import weak_vf_indices

SCHEME = "99OCTVIEWER"
MANUFACTURER = "octviewer"
SERIES_DESCRIPTION = "octviewer glaucoma screening (research use only)"
PDF_TITLE = "octviewer glaucoma screening report (research use only)"
WEAK_VF = "not shown to beat the baseline"
STRONG_VF = "shown to beat the baseline"
#: The TEXT item of the RNFL group that names the regions whose values are approximate (printed "~" elsewhere).
RNFL_APPROXIMATE = "RNFL regions approximate"
#: The TEXT items of the quality group: the quality check's notes, numbered ("Quality note 1", ...).
QUALITY_NOTE = "Quality note"
_CLASS_MEANINGS = {"normal": "within normal limits", "borderline": "borderline", "outside": "outside normal limits"}
#: The patient and study modules copied from the source into the PDF object (highdicom does it for the SR).
PATIENT_STUDY = ("PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex",
                 "OtherPatientIDsSequence", "PatientAge", "StudyInstanceUID", "StudyDate", "StudyTime", "StudyID",
                 "AccessionNumber", "ReferringPhysicianName", "StudyDescription")


class SrError(ValueError):
    """The findings cannot be written as DICOM (no DICOM source, nothing to report)."""


def code(value: str, meaning: str) -> hd.sr.CodedConcept:
    return hd.sr.CodedConcept(value, SCHEME, meaning[:64])


UM = hd.sr.CodedConcept("um", "UCUM", "micrometer")
MM2 = hd.sr.CodedConcept("mm2", "UCUM", "square millimeter")
DB = hd.sr.CodedConcept("dB", "UCUM", "decibel")
PERCENT = hd.sr.CodedConcept("%", "UCUM", "percent")
RATIO = hd.sr.CodedConcept("1", "UCUM", "no units")
VF_CONCEPTS = {  # name -> (concept, unit); VFI has a DICOM code (CID 4257)
    "vfi": (hd.sr.CodedConcept("111852", "DCM", "Visual Field Index"), PERCENT),
    "md": (code("MD-ESTIMATE", "Mean deviation, estimated from OCT"), DB),
    "psd": (code("PSD-ESTIMATE", "Pattern standard deviation, estimated from OCT"), DB),
}
VF_LABELS = {"vfi": "VFI", "md": "MD", "psd": "PSD"}
GLAUCOMA = hd.sr.CodedConcept("23986001", "SCT", "Glaucoma")
NORMAL = hd.sr.CodedConcept("17621005", "SCT", "Normal")


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(float(value))


def _group(name: str, algorithm, measurements, evaluations, source) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=generate_uid(), identifier=name),
        algorithm_id=algorithm, measurements=measurements or None, qualitative_evaluations=evaluations or None,
        source_images=[hd.sr.SourceImageForMeasurementGroup.from_source_image(source)])


def _screening_group(prediction, reasons, algorithm, source):
    measurements, evaluations = [], []
    if prediction is None:
        why = "; ".join(reasons) or "the network gives no result for this scan"
        evaluations.append(hd.sr.QualitativeEvaluation(code("NETWORK-RESULT", "Network result"),
                                                       code("NOT-GIVEN", f"not given: {why}"[:64])))
        return _group("glaucoma screening", algorithm, measurements, evaluations, source)
    measurements.append(hd.sr.Measurement(code("P-GLAUCOMA", "Probability of glaucoma"), float(prediction.probability),
                                          RATIO, algorithm_id=algorithm))
    measurements.append(hd.sr.Measurement(code("THRESHOLD", "Decision threshold"), float(prediction.threshold), RATIO,
                                          algorithm_id=algorithm))
    evaluations.append(hd.sr.QualitativeEvaluation(code("DECISION", "Screening decision"),
                                                   GLAUCOMA if prediction.decision == "glaucoma" else NORMAL))
    weak = weak_vf_indices(prediction.notes)
    for name, value in prediction.vf.items():
        if name not in VF_CONCEPTS or not _finite(value):
            continue
        concept, unit = VF_CONCEPTS[name]
        measurements.append(hd.sr.Measurement(concept, float(value), unit, algorithm_id=algorithm))
        status = WEAK_VF if name in weak else STRONG_VF
        evaluations.append(hd.sr.QualitativeEvaluation(
            code(f"VF-STATUS-{name.upper()}", f"{VF_LABELS[name]} estimate status (model card)"),
            code("NOT-BEAT-BASELINE" if name in weak else "BEATS-BASELINE", status)))
    if prediction.synthetic_model:
        evaluations.append(hd.sr.QualitativeEvaluation(code("MODEL-DATA", "Model training data"),
                                                       code("SYNTHETIC", "SYNTHETIC: no clinical validity")))
    return _group("glaucoma screening", algorithm, measurements, evaluations, source)


def _class_code(klass: str, uncertain: bool = False) -> hd.sr.CodedConcept:
    if uncertain:
        return code(f"UNCERTAIN-{klass.upper()}", f"uncertain: {_CLASS_MEANINGS[klass]}")
    return code(klass.upper(), _CLASS_MEANINGS[klass])


def _rnfl_group(report, algorithm, source):
    """Thickness and class per region. A region whose value rests on unsure A-scans (printed "~" in the window,
    the PDF and flagged in the CSV) has its class said "uncertain: ..." and the group names those regions in a TEXT
    item; the whole RNFL class is "uncertain" where the boundary is unsure on too much of the circle
    (``too_unsure_to_classify``). The SR, the one output that enters the archive, gave them as plain findings
    (attack run 16, A16-6)."""
    from ..structure.analysis import approximate_regions

    sectors = tuple(getattr(report, "uncertain_sectors", ()))
    quadrants, hours = tuple(report.uncertain_quadrants), tuple(report.uncertain_clock_hours)
    approximate = {"global": report.too_unsure_to_classify, **{f"sector_{k}": True for k in sectors},
                   **{f"quadrant_{k}": True for k in quadrants}, **{f"clock_{k}": True for k in hours}}
    measurements, evaluations = [], []
    regions = [("GLOBAL", "global", "global mean", report.rnfl_global_um)]
    regions += [(f"Q-{k}", f"quadrant_{k}", f"quadrant {k}", v) for k, v in report.quadrants.items()]
    regions += [(f"S-{k}", f"sector_{k}", f"sector {k}", v) for k, v in report.sectors.items()]
    regions += [(f"CLOCK-{k}", f"clock_{k}", f"clock hour {k}", v) for k, v in report.clock_hours.items()]
    for key, class_key, words, value in regions:
        if not _finite(value):
            continue
        measurements.append(hd.sr.Measurement(code(f"RNFL-{key}", f"RNFL thickness, {words}"), float(value), UM,
                                              algorithm_id=algorithm))
        klass = report.classes.get(class_key, "")
        if klass in _CLASS_MEANINGS:
            evaluations.append(hd.sr.QualitativeEvaluation(code(f"RNFL-CLASS-{key}", f"RNFL class, {words}"),
                                                           _class_code(klass, approximate.get(class_key, False))))
    if not measurements:
        return None
    group = _group("RNFL", algorithm, measurements, evaluations, source)
    where = approximate_regions(sectors, quadrants, hours, whole=getattr(report, "global_uncertain", False))
    if where:
        group[0].ContentSequence.append(hd.sr.TextContentItem(
            name=code("RNFL-APPROXIMATE", RNFL_APPROXIMATE), relationship_type=hd.sr.RelationshipTypeValues.CONTAINS,
            value=f"{where} approximate: the RNFL boundary is unsure there; read with the B-scans"))
    return group


def _disc_group(report, algorithm, source):
    figures = [("CD-VERTICAL", "Cup-to-disc ratio, vertical", report.cup_to_disc, RATIO),
               ("CD-AVERAGE", "Cup-to-disc ratio, average", report.cup_to_disc_average, RATIO),
               ("RIM-AREA", "Rim area", report.rim_area_mm2, MM2),
               ("DISC-AREA", "Disc area", report.disc_area_mm2, MM2),
               ("CUP-AREA", "Cup area", report.cup_area_mm2, MM2),
               ("BMO-MRW", "BMO minimum rim width", report.bmo_mrw_um, UM)]
    measurements = [hd.sr.Measurement(code(k, words), float(v), unit, algorithm_id=algorithm)
                    for k, words, v, unit in figures if _finite(v)]
    return _group("optic disc", algorithm, measurements, [], source) if measurements else None


def _quality_group(quality, algorithm, source):
    if quality is None:
        return None
    verdict = code("PASSED", "measured: passed the quality check") if quality.ok else \
        code("REFUSED", "refused by the quality check")
    measurements = []
    if _finite(quality.score):
        measurements.append(hd.sr.Measurement(code("SIGNAL", "Signal score (0-1)"), float(quality.score), RATIO,
                                              algorithm_id=algorithm))
    evaluations = [hd.sr.QualitativeEvaluation(code("QUALITY", "Quality verdict"), verdict)]
    group = _group("quality", algorithm, measurements, evaluations, source)
    for i, reason in enumerate(quality.reasons[:8], start=1):  # TEXT, whole: a coded meaning was cut at 64 (A16-6)
        group[0].ContentSequence.append(hd.sr.TextContentItem(
            name=code(f"QUALITY-REASON-{i}", f"{QUALITY_NOTE} {i}"), value=" ".join(str(reason).split()),
            relationship_type=hd.sr.RelationshipTypeValues.CONTAINS))
    return group


#: Patient and study attributes a report must carry even when empty (type 2); the project's own
#: writers and some exports leave them out.
TYPE2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
         "AccessionNumber", "ReferringPhysicianName", "StudyID")


def _with_type2(source: Dataset) -> Dataset:
    copy = Dataset()
    copy.update(source)
    if hasattr(source, "file_meta"):
        copy.file_meta = source.file_meta
    for keyword in TYPE2:
        if keyword not in copy:
            setattr(copy, keyword, "")
    return copy


#: The TEXT item of the screening group that says whether the model file was verified (``model_trust``).
MODEL_TRUST = "Model file verification"
#: ... that names the analysis settings of the result's figures (``ScanResult.settings``, the batch CSV's words).
ANALYSIS_SETTINGS = "Analysis settings"
#: ... that says a decision stands only because the quality check was off (``quality_check_off_note``).
QUALITY_CHECK_OFF = "Quality check off"


def quality_check_off_note(result) -> str:
    """What a report says beside the decision of a scan analysed with the quality check off that the check
    refuses (``result``: a ``pipeline.ScanResult``), or "": with the check on such a scan gets no result. The
    window's File > Send results to PACS filed "Screening decision: Normal" for such a scan with no word of it
    (attack run 14, A14-10), where the PDF and the Results panel say it (A13-11; the panel's
    ``results_panel.quality_check_off_note`` is this rule in the window's words). By the result's own settings;
    one whose settings are not known is judged by what stands: with the check on, no decision stands on a scan
    it refuses."""
    from ..pipeline.outputs import quality_check_cells

    return quality_check_cells(result.prediction, result.quality, getattr(result, "settings", None))[1]


def build_sr(source: Dataset, result, model_name: str, model_version: str, *, series_number: int = 901,
             when: dt.datetime | None = None, trust: str = "") -> hd.sr.Comprehensive3DSR:
    """The TID 1500 report of ``result`` (an ``octviewer.pipeline.ScanResult``) for the scan ``source``.

    ``source`` is the scan's DICOM dataset (pixel data not needed): its patient and study modules
    go into the report, which is filed in the same study and references the source series.
    ``trust`` (the model file's signature, ``results.model_trust``) goes into the screening group as a
    TEXT item: the archive's copy, read by other systems, is the result that travels furthest, and an
    unverified model's said nothing of it (attack run 12, A12-10); so do the result's analysis settings and,
    for a decision on a scan the quality check refuses, that the check was off (A14-10).
    """
    if "SOPInstanceUID" not in source or "StudyInstanceUID" not in source:
        raise SrError("the scan did not come from a DICOM file, so its findings cannot be filed with it")
    source = _with_type2(source)
    algorithm = hd.sr.AlgorithmIdentification(name=(model_name or "octviewer structure measurement")[:64],
                                              version=(model_version or "unknown")[:64])
    prediction = result.prediction
    groups = [_screening_group(prediction, result.reasons, algorithm, source)]
    texts = [("MODEL-TRUST", MODEL_TRUST, trust), ("QUALITY-OFF", QUALITY_CHECK_OFF, quality_check_off_note(result)),
             ("SETTINGS", ANALYSIS_SETTINGS, ", ".join(getattr(result, "settings", None) or ()))]
    for key, concept, value in texts:  # what a coded decision must travel with (A12-10, A14-10)
        if value:
            groups[0][0].ContentSequence.append(hd.sr.TextContentItem(
                name=code(key, concept), value=value, relationship_type=hd.sr.RelationshipTypeValues.CONTAINS))
    if result.structure is not None:
        groups += [_rnfl_group(result.structure, algorithm, source), _disc_group(result.structure, algorithm, source)]
    groups.append(_quality_group(result.quality, algorithm, source))
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=generate_uid(), name="octviewer", manufacturer_name=MANUFACTURER))
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=code("GLAUCOMA-OCT", "Glaucoma screening on optic-disc OCT"),
        imaging_measurements=[g for g in groups if g is not None])
    synthetic = bool(prediction is not None and prediction.synthetic_model) or \
        bool(result.structure is not None and result.structure.synthetic)
    sr = hd.sr.Comprehensive3DSR(
        evidence=[source], content=report[0], series_instance_uid=generate_uid(), series_number=series_number,
        sop_instance_uid=generate_uid(), instance_number=1, manufacturer=MANUFACTURER, is_complete=True,
        series_description=(SERIES_DESCRIPTION + (" SYNTHETIC" if synthetic else ""))[:64])
    when = when or dt.datetime.now()
    sr.ContentDate, sr.ContentTime = when.strftime("%Y%m%d"), when.strftime("%H%M%S")
    return sr


def encapsulated_pdf(source: Dataset, pdf: bytes, *, series_number: int = 902, title: str = PDF_TITLE,
                     when: dt.datetime | None = None) -> Dataset:
    """The PDF report as an Encapsulated PDF object in the source's study (patient module copied)."""
    if not pdf.startswith(b"%PDF"):
        raise SrError("the report is not a PDF file")
    if "StudyInstanceUID" not in source:
        raise SrError("the scan did not come from a DICOM file, so its report cannot be filed with it")
    when = when or dt.datetime.now()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = EncapsulatedPDFStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = EncapsulatedPDFStorage, meta.MediaStorageSOPInstanceUID
    for keyword in PATIENT_STUDY:
        if keyword in source:
            setattr(ds, keyword, source.data_element(keyword).value)
    for keyword in TYPE2:
        if keyword not in ds:
            setattr(ds, keyword, "")  # type 2: present, empty when the source had none
    ds.Modality = "DOC"
    ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber = generate_uid(), series_number, 1
    ds.SeriesDescription = title[:64]
    ds.Manufacturer = MANUFACTURER
    ds.ConversionType = "WSD"
    ds.ContentDate, ds.ContentTime = when.strftime("%Y%m%d"), when.strftime("%H%M%S")
    ds.AcquisitionDateTime = when.strftime("%Y%m%d%H%M%S")
    ds.BurnedInAnnotation = "YES"  # the PDF may print the patient ID when the user asked for it
    ds.DocumentTitle = title[:64]
    ds.ConceptNameCodeSequence = []
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocument = pdf + (b"\0" if len(pdf) % 2 else b"")
    ds.EncapsulatedDocumentLength = len(pdf)
    return ds


def sr_values(ds: Dataset) -> dict[str, dict[str, object]]:
    """A measurement report read back: {group name: {concept meaning: number or coded meaning}}, plus
    the algorithm's name and version under "algorithm" (as the report says them)."""
    out: dict[str, dict[str, object]] = {}

    def meaning(item, key="ConceptNameCodeSequence"):
        seq = item.get(key)
        return str(seq[0].CodeMeaning) if seq else ""

    for container in ds.get("ContentSequence", []):
        if meaning(container) != "Imaging Measurements":
            continue
        for group in container.get("ContentSequence", []):
            values: dict[str, object] = {}
            name = ""
            for item in group.get("ContentSequence", []):
                concept, kind = meaning(item), item.get("ValueType")
                if concept == "Tracking Identifier":
                    name = str(item.TextValue)
                elif kind == "NUM":
                    values[concept] = float(item.MeasuredValueSequence[0].NumericValue)
                    for sub in item.get("ContentSequence", []):
                        if meaning(sub) in ("Algorithm Name", "Algorithm Version"):
                            out.setdefault("algorithm", {})[meaning(sub)] = str(sub.TextValue)
                elif kind == "CODE":
                    values[concept] = meaning(item, "ConceptCodeSequence")
                elif kind == "TEXT" and concept in ("Algorithm Name", "Algorithm Version"):
                    out.setdefault("algorithm", {})[concept] = str(item.TextValue)
                elif kind == "TEXT" and (concept.startswith(QUALITY_NOTE) or concept in (
                        MODEL_TRUST, QUALITY_CHECK_OFF, ANALYSIS_SETTINGS, RNFL_APPROXIMATE)):
                    values[concept] = str(item.TextValue)
            out[name] = values
    return out
