"""DICOM networking with the archive through pynetdicom: echo, C-FIND, C-GET / C-MOVE and C-STORE.

Every failure becomes a ``PacsError`` whose message says what happened in words a user can act
on (nothing answers at the address, the archive refused this workstation's AE title, no answer in
time, the archive refused an object) and which settings to check. Nothing here logs a patient
identifier: the module's own log lines carry counts, AE titles and addresses only, and
``quiet_pynetdicom`` keeps pynetdicom's chatter (which can print a query's identifiers at debug
level) out of the application's log.

Retrieved instances land in a ``.part`` folder that is renamed into place only when the retrieve
finished, so a cancelled or failed retrieve never leaves a half series where a complete one is
expected.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import os
import re
import shutil
import socket
import ssl
import stat
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)
from pynetdicom import AE, build_role, evt
from pynetdicom.sop_class import (
    Comprehensive3DSRStorage,
    ComprehensiveSRStorage,
    EncapsulatedPDFStorage,
    EnhancedSRStorage,
    OphthalmicPhotography8BitImageStorage,
    OphthalmicPhotography16BitImageStorage,
    OphthalmicTomographyImageStorage,
    OphthalmicVisualFieldStaticPerimetryMeasurementsStorage,
    SecondaryCaptureImageStorage,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from ..core import Cancelled
from ..core.files import open_for_writing, private_folder
from ..core.person import Patient, issuer_matches, names_differ, one_person, what_differs
from ..io import dicom as _dicom_reader  # noqa: F401  its pydicom settings: no header values on stderr (F9)
from .config import PacsConfigError, PacsSettings, data_folder, folder_problem, tls_context

log = logging.getLogger(__name__)
# An archive's text in a character set pydicom does not know ("Found unknown escape sequence ...")
# was warned on stderr with pydicom's own path; the text is shown decoded as well as it can be, its
# hidden characters escaped (attack run 5, F16). Process-wide: catch_warnings is not thread-safe.
warnings.filterwarnings("ignore", category=UserWarning, module=r"pydicom\.charset",
                        message=r"Found unknown escape sequence")

#: What a glaucoma workstation retrieves and sends: OCT, perimetry, their localizer photographs,
#: reports (SR, PDF) and screenshots.
STORAGE_CLASSES = (OphthalmicTomographyImageStorage, OphthalmicVisualFieldStaticPerimetryMeasurementsStorage,
                   OphthalmicPhotography8BitImageStorage, OphthalmicPhotography16BitImageStorage,
                   Comprehensive3DSRStorage, ComprehensiveSRStorage, EnhancedSRStorage, EncapsulatedPDFStorage,
                   SecondaryCaptureImageStorage)
#: Accepted as stored (an archive keeps the modality's compression): OPT cubes are often JPEG 2000.
TRANSFER_SYNTAXES = [ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian,
                     JPEG2000Lossless, JPEG2000, JPEGLSLossless, JPEGLSNearLossless, RLELossless,
                     JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLosslessSV1]
MODALITIES = ("OPT", "OPV")
_UID = re.compile(r"[0-9]+(\.[0-9]+)*")
MAX_UID_CHARS = 64  # PS3.5 9.1
_STATUS_WORDS = {0xA700: "out of resources", 0xA701: "out of resources (too many matches)",
                 0xA702: "out of resources (could not perform the sub-operations)",
                 0xA801: "this workstation is not a known destination (move destination unknown)",
                 0xA900: "the request does not match the SOP class", 0xC000: "the archive could not process it",
                 0xFE00: "cancelled", 0x0122: "the archive does not support this kind of object",
                 0x0124: "this workstation is not authorised", 0x0211: "the archive does not know the SOP class",
                 0xB000: "some sub-operations failed"}


class PacsError(Exception):
    """Anything that went wrong talking to the archive; the message says what and what to check."""


class PacsQueryError(PacsError):
    """The search or retrieval asked for is itself wrong (no criteria, dates the wrong way round, a UID
    that is none): the user's input, not the archive; exit 2 (attack run 9, A9-7)."""


class PacsUnreachable(PacsError):
    """Nothing answers at the archive's address."""


class PacsRejected(PacsError):
    """The archive answered and refused the association (AE titles, or not allowed)."""


class PacsTimeout(PacsError):
    """The archive did not answer in time."""


class PacsTlsFailed(PacsError):
    """The TLS handshake with the archive failed: its certificate is not trusted, or it refused ours."""


class PacsRefused(PacsError):
    """The archive answered a C-STORE with a failure: this object, not the connection, is the problem."""

    def __init__(self, message: str, index: int):
        super().__init__(message)
        self.index = index  # which of the datasets handed to ``store``


def quiet_pynetdicom() -> None:
    """pynetdicom logs each association step and, at debug level, whole identifiers (patient ID and
    name included) to the application's log; warnings about failures are what a user needs."""
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)


def status_text(status: int) -> str:
    return f"status 0x{status:04X}" + (f", {_STATUS_WORDS[status]}" if status in _STATUS_WORDS else "")


# -- associations ---------------------------------------------------------------------------------
def _address(settings: PacsSettings) -> str:
    """The address the association goes to, looked up once: the host's first IPv4 address, else its
    first IPv6 one (pynetdicom's own rule). The connection check goes to the same address: checked
    on another one (``localhost`` answering on ::1 while the association went to 127.0.0.1), a
    refused connection was reported as a refused AE title."""
    try:
        entries = socket.getaddrinfo(settings.host_address, settings.archive_port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        entries = []
    found = ([e[4][0] for e in entries if e[0] == socket.AF_INET]
             or [e[4][0] for e in entries if e[0] == socket.AF_INET6])
    if not found:
        raise PacsUnreachable(f"the archive's host {settings.archive_host!r} is not known on this network "
                              "(check the host name in the PACS settings)")
    return found[0]


def _check_reachable(settings: PacsSettings, address: str) -> None:
    """A plain TCP connection (and the TLS handshake, with TLS) first: pynetdicom reports a refused
    connection, a failed handshake and a rejected AE title the same way (no association), and the
    user needs to know which it was."""
    where = f"{settings.archive_host}:{settings.archive_port}"
    if address != settings.host_address:
        where += f" ({address})"
    try:
        with socket.create_connection((address, settings.archive_port), timeout=settings.timeout_s) as sock:
            if settings.tls:
                with tls_context(settings).wrap_socket(sock, server_hostname=settings.host_address):
                    pass
    except ssl.SSLCertVerificationError as exc:
        raise PacsTlsFailed(f"the TLS handshake with {where} failed: the archive's certificate is not trusted "
                            f"({exc.verify_message}); check the CA certificate in the PACS settings and that the "
                            "host name is the one in the archive's certificate") from None
    except ssl.SSLError as exc:
        raise PacsTlsFailed(f"the TLS handshake with {where} failed ({exc.reason or exc}); check this workstation's "
                            "certificate and key, and that the archive speaks TLS on this port") from None
    except TimeoutError:
        raise PacsTimeout(f"no answer from {where} within {settings.timeout_s:g} s (is the archive running, "
                          "and is this port open in the firewall?)") from None
    except OSError as exc:
        raise PacsUnreachable(f"nothing answers at {where} ({exc.strerror or type(exc).__name__}): is the archive "
                              "running, and are its host and port right in the PACS settings?") from None


def _make_ae(settings: PacsSettings) -> AE:
    quiet_pynetdicom()
    ae = AE(ae_title=settings.local_ae)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = settings.timeout_s
    ae.connection_timeout = settings.timeout_s
    return ae


@contextlib.contextmanager
def association(settings: PacsSettings, contexts: Iterable[tuple[str, list[str]]], *, roles=(), handlers=()):
    """An established association with the archive, released (or aborted) on the way out."""
    address = _address(settings)
    _check_reachable(settings, address)
    ae = _make_ae(settings)
    for sop_class, syntaxes in contexts:
        ae.add_requested_context(sop_class, syntaxes)
    tls_args = (tls_context(settings), settings.host_address) if settings.tls else None
    started = time.monotonic()
    assoc = ae.associate(address, settings.archive_port, ae_title=settings.archive_ae,
                         ext_neg=[build_role(c, scp_role=True) for c in roles] or None, tls_args=tls_args,
                         evt_handlers=list(handlers) or None)
    if not assoc.is_established:
        _not_established(settings, assoc, time.monotonic() - started)
    log.info("association with %s established", settings.describe())
    try:
        yield assoc
    finally:
        if assoc.is_established:
            assoc.release()


def _not_established(settings: PacsSettings, assoc, seconds: float):
    """Why there is no association, once the connection (and the TLS handshake) is known to work
    (``_check_reachable``). A refusal is quick and silence lasts the timeout; a quick end without a
    rejection PDU read (the archive sends it and closes at once, and under load the close can be seen
    first; or a TLS port spoken to in plain DICOM, or no DICOM service on the port) is a refusal too."""
    where = f"{settings.archive_host}:{settings.archive_port}"
    titles = (f"check that the archive's AE title is {settings.archive_ae!r} and that it knows this workstation "
              f"as {settings.local_ae!r}")
    if assoc.is_rejected:
        raise PacsRejected(f"the archive at {where} refused this workstation: {titles}")
    if seconds < 0.8 * settings.timeout_s:
        if settings.tls:
            raise PacsRejected(f"the archive at {where} closed the TLS connection without accepting this "
                               f"workstation: it may not accept this workstation's certificate, or {titles}")
        raise PacsRejected(f"the archive at {where} closed the connection without accepting this workstation: "
                           f"{titles}; or it expects TLS (switch TLS on in the PACS settings), or no DICOM "
                           "service listens on that port")
    raise PacsTimeout(f"the archive at {where} did not answer the association request within "
                      f"{settings.timeout_s:g} s: is it a DICOM service?")


def _lost(settings: PacsSettings, what: str) -> PacsTimeout:
    return PacsTimeout(f"the archive stopped answering during the {what} (no reply within {settings.timeout_s:g} s "
                       "or the connection was closed)")


def echo(settings: PacsSettings) -> None:
    """C-ECHO: the Preferences dialog's "Test connection"."""
    with association(settings, [(Verification, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])]) as assoc:
        status = assoc.send_c_echo()
        if not status or "Status" not in status:
            raise _lost(settings, "connection test")
        if status.Status != 0:
            raise PacsError(f"the archive answered the connection test with {status_text(status.Status)}")


# -- C-FIND ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StudyHit:
    study_uid: str
    study_date: dt.date | None
    description: str = ""
    modalities: tuple[str, ...] = ()
    n_series: int | None = None
    patient_id: str = field(default="", repr=False)
    patient_name: str = field(default="", repr=False)
    issuer: str = field(default="", repr=False)  # IssuerOfPatientID: whose ID range the ID is of
    birth_date: str = field(default="", repr=False)

    @property
    def patient(self) -> Patient:
        return Patient(self.patient_id, self.issuer, self.patient_name, self.birth_date)


@dataclass(frozen=True)
class SeriesHit:
    study_uid: str
    series_uid: str
    modality: str
    laterality: str = ""  # OD / OS / ""
    series_date: dt.date | None = None
    description: str = ""
    series_number: int | None = None
    n_instances: int | None = None


def _date(text) -> dt.date | None:
    try:
        return dt.datetime.strptime(str(text or "")[:8], "%Y%m%d").date()
    except ValueError:
        return None


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _date_range(date_from: dt.date | None, date_to: dt.date | None) -> str:
    if date_from is None and date_to is None:
        return ""
    return f"{date_from.strftime('%Y%m%d') if date_from else ''}-{date_to.strftime('%Y%m%d') if date_to else ''}"


def _find(settings: PacsSettings, identifier: Dataset) -> list[Dataset]:
    syntaxes = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]
    out = []
    with association(settings, [(StudyRootQueryRetrieveInformationModelFind, syntaxes)]) as assoc:
        for status, found in assoc.send_c_find(identifier, StudyRootQueryRetrieveInformationModelFind):
            if not status or "Status" not in status:
                raise _lost(settings, "search")
            if status.Status in (0xFF00, 0xFF01):
                if found is not None:
                    out.append(found)
            elif status.Status != 0x0000:
                raise PacsError(f"the archive refused the search ({status_text(status.Status)})")
    return out


def check_query(patient_id: str = "", patient_name: str = "", date_from: dt.date | None = None,
                date_to: dt.date | None = None, modalities: Iterable[str] = (), exact_id: bool = False) -> None:
    """A search the archive can answer: something to search for, and a date range that is one (a --from
    after --to asked the archive and found nothing, without a word on why). A value holding '\\' (DICOM's
    separator of values) made the archive match either part: 'NOSUCH\\ID' found and screened the patient ID
    (attack run 10, A10-2); a patient ID longer than DICOM's 64 characters or a modality longer than 16
    can match nothing. ``exact_id`` (a single patient's screen) refuses '*' and '?' in the ID too: one
    typed '*' screened every patient the archive holds."""
    if not (patient_id.strip() or patient_name.strip() or date_from or date_to):
        raise PacsQueryError("give a patient ID, a name or a date range to search for")
    if date_from and date_to and date_from > date_to:
        raise PacsQueryError(f"the first date {date_from} is after the last {date_to}")
    for what, value in (("patient ID", patient_id), ("name", patient_name), *(("modality", m) for m in modalities)):
        if "\\" in value:
            raise PacsQueryError(f"the {what} holds a '\\', which DICOM reads as a list of values (the archive "
                                 "would match any of them); give one value")
    if len(patient_id.strip()) > 64:
        raise PacsQueryError("the patient ID is longer than DICOM's 64 characters; no archive holds such an ID")
    if too_long := [m for m in modalities if len(m.strip()) > 16]:
        raise PacsQueryError(f"the modality {too_long[0].strip()[:16]}... is longer than DICOM's 16 characters")
    if exact_id and any(c in patient_id for c in "*?"):
        raise PacsQueryError("the patient ID holds '*' or '?', which the archive takes as wildcards (other "
                             "patients would be screened); give the ID itself")
    if exact_id and any(c in patient_name for c in "*?"):  # --name '*' screened every patient (A12-7)
        raise PacsQueryError("the name holds '*' or '?', which the archive takes as wildcards (other patients "
                             "would be screened); give the patient ID")


def one_patient(hits: Iterable[StudyHit]) -> Patient | None:
    """The one person a screen's studies belong to, or ``PacsQueryError`` before anything is retrieved. A name
    matches as a prefix ('SMITH' finds SMITHSON too) and a date range alone finds everyone seen then: the
    screen's CSV, which names no patient, held several patients' verdicts (attack run 12, A12-7). Under one ID,
    studies of another issuer or birth date are another person's (``Patient.others``, A14-19), and the refusal says
    which differed; a name written otherwise is not (``two_ways_words``: said, A16-1). The refusal names each of
    screen's options that picks one of them: --issuer alone cannot where a person's studies carry no issuer
    (attack run 15, A15-10)."""
    hits = list(hits)
    ids = {h.patient_id.strip() for h in hits}
    if len(ids) > 1 or ("" in ids and len(hits) > 1):
        raise PacsQueryError(f"the search matches {len(ids)} patients' studies (or studies the archive gives no "
                             "patient ID for); screen takes one patient: give the patient ID (octviewer-pacs find "
                             "--show-patient lists them)")
    person = one_person(h.patient for h in hits)
    if hits and person is None:
        differed = what_differs(h.patient.traits() for h in hits)
        raise PacsQueryError(f"the studies of this patient ID name different people ({differed}: an archive holding "
                             "several hospitals' IDs, or a mis-filed study); screen takes one person: give --issuer "
                             "(where their studies carry one), --name, or --from/--to (where their study dates differ) "
                             "to pick one, or check the archive "
                             "(octviewer-pacs find --show-patient lists them)")
    return person


def two_ways_words(what: str) -> str:
    """The one sentence for ``what`` (the studies, the instances) of one person that write the name otherwise
    after ``core.person.fold_name``: kept and said, as the study index's 'people' check says it. Screen refused
    such a patient, and a retrieve dropped one series, as "another patient" (attack run 16, A16-1)."""
    return (f"{what} write the patient's name in different ways (the same ID, and no issuer or birth date that "
            "differs): one name written two ways, or another person under this ID; kept: check before "
            "comparing eyes or visits")


def find_studies(settings: PacsSettings, patient_id: str = "", patient_name: str = "",
                 date_from: dt.date | None = None, date_to: dt.date | None = None,
                 modalities: Iterable[str] = MODALITIES, issuer: str = "") -> list[StudyHit]:
    """Studies of a patient (ID and/or name, ``*`` and ``?`` as wildcards; a name without one matches
    as a prefix; ``issuer``: only IDs of that IssuerOfPatientID), in a date range, holding any of
    ``modalities`` (empty: any). Newest first."""
    modalities = tuple(m.strip().upper() for m in modalities if m.strip())
    check_query(patient_id, patient_name, date_from, date_to, modalities)
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.PatientID = patient_id.strip()
    ds.IssuerOfPatientID = ""  # a return key: the archive matches it exactly, the CX-4 form "HOSP_A&1.2...&ISO"
    ds.PatientBirthDate = ""   # is HOSP_A to the person rule (``issuer_matches``, A18-9)
    name = patient_name.strip()
    ds.PatientName = name if not name or any(c in name for c in "*?") else name + "*"
    ds.StudyDate = _date_range(date_from, date_to)
    ds.StudyInstanceUID = ""
    ds.StudyDescription = ""
    ds.ModalitiesInStudy = "\\".join(modalities)
    ds.NumberOfStudyRelatedSeries = ""
    hits = []
    for found in _find(settings, ds):
        value = found.get("ModalitiesInStudy") or ()
        in_study = tuple(str(m) for m in ([value] if isinstance(value, str) else value) if m)
        if modalities and in_study and not set(in_study) & set(modalities):
            continue  # an archive that ignores the modality key
        if issuer.strip() and not issuer_matches(issuer, str(found.get("IssuerOfPatientID", "") or "")):
            continue  # another hospital's ID range
        hits.append(StudyHit(str(found.get("StudyInstanceUID", "")), _date(found.get("StudyDate")),
                             str(found.get("StudyDescription", "") or ""), in_study,
                             _int(found.get("NumberOfStudyRelatedSeries")),
                             str(found.get("PatientID", "") or ""), str(found.get("PatientName", "") or ""),
                             str(found.get("IssuerOfPatientID", "") or ""),
                             str(found.get("PatientBirthDate", "") or "")))
    log.info("study search: %d studies", len(hits))
    return sorted(hits, key=lambda h: h.study_date or dt.date.min, reverse=True)


def find_series(settings: PacsSettings, study_uid: str, modalities: Iterable[str] = MODALITIES) -> list[SeriesHit]:
    """The series of one study, of the given modalities (empty: all)."""
    modalities = tuple(m.strip().upper() for m in modalities if m.strip())
    ds = Dataset()
    ds.QueryRetrieveLevel = "SERIES"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = ""
    ds.Modality = ""
    ds.SeriesDescription = ""
    ds.SeriesNumber = ""
    ds.SeriesDate = ""
    ds.Laterality = ""
    ds.NumberOfSeriesRelatedInstances = ""
    hits = []
    for found in _find(settings, ds):
        modality = str(found.get("Modality", "") or "")
        if modalities and modality not in modalities:
            continue
        side = {"R": "OD", "L": "OS"}.get(str(found.get("Laterality", "") or "").upper(), "")
        hits.append(SeriesHit(study_uid, str(found.get("SeriesInstanceUID", "")), modality, side,
                              _date(found.get("SeriesDate")), str(found.get("SeriesDescription", "") or ""),
                              _int(found.get("SeriesNumber")), _int(found.get("NumberOfSeriesRelatedInstances"))))
    log.info("series search: %d series", len(hits))
    return sorted(hits, key=lambda h: (h.modality, h.series_number or 0))


# -- C-GET / C-MOVE -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Retrieved:
    """A retrieved series (or study) in its local folder."""

    folder: Path
    files: tuple[Path, ...]
    failed: int = 0  # instances the archive could not send or this workstation could not store
    foreign: int = 0  # instances of another study or series sent while the retrieve ran: refused, not written
    other_patient: int = 0  # instances whose header names another patient (``other_patient``): refused
    same_id: int = 0  # of those, the ones under the patient's own ID naming another person (issuer, birth date)
    differed: str = ""  # what differed for those (``core.person.what_differs``)
    other_name: int = 0  # kept instances writing the patient's name otherwise (``two_ways_words``)
    persons: tuple[Patient, ...] = ()  # the people the kept instances' headers name (one person, written its ways)
    # of same_id: instances the person asked for does not contradict, refused only for differing from an instance
    # kept: which of the two is the patient cannot be told (an archive answering both names as "^", A19-12)
    ambiguous: int = 0

    @property
    def message(self) -> str:
        text = f"{len(self.files)} file(s) retrieved"
        if self.failed:
            text += (f", {self.failed} could not be retrieved (the archive holds them but did not send them intact; "
                     "ask its administrator)")
        if self.foreign:
            text += (f"; {self.foreign} instance(s) of another study or series were sent to this workstation "
                     "meanwhile and refused (not kept)")
        if self.other_patient:
            text += "; " + other_patient_words(self.other_patient, self.same_id, self.differed)
        if self.other_name:
            text += "; " + two_ways_words(f"{self.other_name} instance(s)")
        return text


def other_patient_words(n: int, same_id: int = 0, differed: str = "") -> str:
    """The one sentence for instances refused by ``other_patient`` (no identifier: the IDs are not printed);
    ``same_id`` of them under the patient's own PatientID, naming another person (``differed``: what differed,
    ``core.person.what_differs``). Those were said to have "the header's PatientID is not this patient's" though
    it was (attack run 15, A15-18)."""
    head = f"{n} instance(s) of another patient were refused (not kept): "
    other_id = "the header's PatientID is not this patient's (the archive files one study UID under two patients: " \
               "a mis-filed or half-merged record)"
    differed = differed or "another issuer of the ID or birth date"
    same = f"the header gives this patient's ID but {differed} (one ID, two people: an archive holding several " \
           "hospitals' IDs, or a mis-filed instance)"
    if not same_id:
        return head + other_id
    if same_id == n:
        return head + same
    return (head + f"{n - same_id} give another PatientID, {same_id} this patient's ID with {differed} (a mis-filed "
            "or half-merged record, or one ID, two people)")


class PacsOtherPatient(PacsError):
    """Every instance the archive sent for a series or study names another patient: nothing was kept.
    ``screen`` says it and goes on with the patient's other series (attack run 14, A14-2)."""

    def __init__(self, n: int, same_id: int = 0, differed: str = "", ambiguous: int = 0):
        super().__init__(f"nothing retrieved: {other_patient_words(n, same_id, differed)}")
        self.n, self.same_id, self.differed, self.ambiguous = n, same_id, differed, ambiguous


def is_uid(text) -> bool:
    """``text`` is a DICOM UID: digits in dot-separated parts, at most 64 characters. The one check of a UID
    an archive sent before it names a file or folder: ``re.match`` with ``$`` let "1.2.3\n" through (a
    folder name ending in a newline) and a 300-digit UID failed later at mkdir (attack run 6, A6-15)."""
    return isinstance(text, str) and len(text) <= MAX_UID_CHARS and _UID.fullmatch(text) is not None


def retrieved_folder(study_uid: str, series_uid: str | None = None) -> Path:
    """Where a series lands: ``<data folder>/pacs/<study UID>/<series UID>`` (UIDs only in the path)."""
    for uid in (study_uid, series_uid or "0"):
        if not is_uid(uid):
            raise PacsError(f"not a DICOM UID: {str(uid)[:70]!r}")
    return data_folder() / "pacs" / study_uid / (series_uid or "study")


def foreign_instance(ds: Dataset, study_uid: str, series_uid: str | None) -> bool:
    """``ds`` is not of the study (and, for a series retrieve, the series) asked for. The receiver kept
    every instance stored to the workstation while a retrieve ran: another patient's scan pushed by any
    node (a modality, a routing rule) landed in this patient's series folder and was screened and opened
    as this patient's (attack run 12, A12-2)."""
    if str(ds.get("StudyInstanceUID", "")) != study_uid:
        return True
    return series_uid is not None and str(ds.get("SeriesInstanceUID", "")) != series_uid


def other_patient(ds: Dataset, patient: Patient) -> bool:
    """``ds``'s header names another person than ``patient``, the one the retrieve is for (``Patient.others``:
    another PatientID, or another issuer or birth date under it; a name written otherwise is kept and said,
    ``two_ways_words``, attack run 16, A16-1). An archive that files one study UID
    under two patients (a mis-filed or half-merged record) sent both patients' instances for the study's
    series, and ``screen --patient-id P`` screened the other patient's eye as P's, nothing said (attack run 14,
    A14-2). A PatientID of several values is no one patient's; an empty one is not P's. Checked with
    ``foreign_instance`` on every instance received."""
    return patient.others(Patient.of(ds))


def study_patient(settings: PacsSettings, study_uid: str, patient_id: str = "") -> Patient | None:
    """The person the archive files ``study_uid`` under (under ``patient_id``, where the retrieve names one):
    ``None`` when the archive gives no patient ID for it (the first instance's patient then stands for the
    retrieve's; ``Patient(patient_id)`` where one was given); ``PacsQueryError`` when it files the study under
    several patients (or people: ``Patient.others``), whose instances one retrieve would mix (A14-2, A14-19).
    ``retrieve --patient-id P`` took a bare ``Patient(P)``, with no issuer, name or birth date to contradict, and
    kept two people's instances filed under P (attack run 15, A15-18): it asks the archive too."""
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = study_uid
    for keyword in ("PatientID", "IssuerOfPatientID", "PatientName", "PatientBirthDate"):
        setattr(ds, keyword, "")
    found = [p for p in (Patient.of(f) for f in _find(settings, ds)) if p is None or p.patient_id.strip()]
    if patient_id.strip():
        found = [p for p in found if p is not None and p.patient_id.strip() == patient_id.strip()]
        person = one_person(found) if found else Patient(patient_id)
        if person is None:
            raise PacsQueryError(f"the archive files study {study_uid} under this patient ID for different people "
                                 f"({what_differs(p.traits() for p in found)}: an archive holding several "
                                 "hospitals' IDs, or a mis-filed study); retrieve takes one person: check the archive "
                                 "(octviewer-pacs find --show-patient lists them)")
        return person
    person = one_person(found) if None not in found else None
    if found and person is None:
        raise PacsQueryError(f"the archive files study {study_uid} under several patients (one study UID in "
                             "several patients' records: mis-filed or half-merged); give the patient ID to retrieve "
                             "one patient's instances (octviewer-pacs find --show-patient lists them)")
    return person


def _patient(settings: PacsSettings, study_uid: str, patient: Patient | str | None) -> Patient | None:
    """A retrieve's patient: a ``Patient`` as given (a screen's, the window's: found with the study), else the
    person the archive files the study under, under the bare patient ID given (``study_patient``)."""
    if isinstance(patient, Patient) and patient.patient_id.strip():
        return patient
    return study_patient(settings, study_uid, patient if isinstance(patient, str) else "")


class _Receiver:
    """Writes each instance the archive sends into the ``.part`` folder; stops writing once cancelled.
    An instance of another study or series (``foreign_instance``) or of another patient (``other_patient``;
    ``patient`` None: the first instance's) is refused and counted, never written. What a kept instance says of
    its person (issuer, name, birth date) is added to ``patient`` (``Patient.merged``), so one retrieve keeps one
    person (``core.person.one_person``) even where the archive's answer named only the ID (A15-18)."""

    def __init__(self, folder: Path, cancel: threading.Event | None, progress: Callable | None,
                 study_uid: str = "", series_uid: str | None = None, patient: Patient | None = None,
                 seen: Sequence[Patient] = ()):
        self.folder, self.cancel, self.progress = folder, cancel, progress
        self.study_uid, self.series_uid, self.patient = study_uid, series_uid, patient
        self.asked = patient  # the person the retrieve is for, as asked (``patient`` grows with what is kept)
        # every header kept so far (this retrieve's and, in a screen, the earlier ones'), each compared with every
        # new one: the merged person blends them (an archive answering a name it cannot encode as "^" gave one
        # person's birth date to another's name) and two people passed as one (attack run 18, A18-7)
        self.seen: list[Patient] = list(seen)
        self.files: list[Path] = []
        self.failed = 0
        self.foreign = 0
        self.other_patient = 0
        self.same_id = 0  # of other_patient: the patient's ID, another person
        self.ambiguous = 0  # of same_id: refused only for differing from an instance kept, not from the person asked
        self.differed: list[Patient | None] = []  # the retrieve's person and the same_id ones: what differed
        self.other_name = 0  # kept, writing the name otherwise (two_ways_words)
        self.total: int | None = None
        self.lock = threading.Lock()

    @property
    def what_differed(self) -> str:
        return what_differs(p.traits() for p in self.differed if p) if self.differed else ""

    def on_store(self, event) -> int:
        if self.cancel is not None and self.cancel.is_set():
            return 0xFE00
        try:
            ds = event.dataset
            ds.file_meta = event.file_meta
            if foreign_instance(ds, self.study_uid, self.series_uid):
                log.warning("an instance of another study or series was sent during the retrieve; refused")
                with self.lock:
                    self.foreign += 1
                return 0xC000
            with self.lock:
                if self.patient is None:
                    self.patient = Patient.of(ds)  # the archive named none: the first instance's
                theirs = Patient.of(ds)
                if self.patient is None or other_patient(ds, self.patient) \
                        or any(p.others(theirs) for p in self.seen):
                    log.warning("an instance of another patient was sent during the retrieve; refused")
                    self.other_patient += 1
                    if self.patient is not None and theirs is not None \
                            and theirs.patient_id.strip() == self.patient.patient_id.strip():
                        self.same_id += 1
                        self.ambiguous += self.asked is not None and not self.asked.others(theirs)
                        self.differed += [next((p for p in self.seen if p.others(theirs)), self.patient), theirs]
                    # dropped, not failed: an archive stops a C-MOVE at its first failed sub-operation (Orthanc
                    # does), and the patient's own instances after it never came
                    return 0x0000
                # kept, said (A16-1): against every header kept so far, the archive's name being left out
                self.other_name += any(names_differ([p, theirs]) for p in [self.patient, *self.seen])
                self.patient = self.patient.merged(theirs)  # one person per retrieve (A15-18)
                if theirs is not None and theirs not in self.seen:
                    self.seen.append(theirs)
            uid = str(ds.SOPInstanceUID)
            with self.lock:
                name = f"{uid}.dcm" if is_uid(uid) else f"instance-{len(self.files) + 1}.dcm"
                path = self.folder / name
                # owner-only before its first byte: the patient's name, ID and birth date (A11-1)
                with os.fdopen(open_for_writing(path, 0o600), "wb") as f:
                    ds.save_as(f, enforce_file_format=True)
                self.files.append(path)
                done = len(self.files)
        except Exception as exc:  # an instance that cannot be decoded or written: counted, the rest go on
            log.warning("an instance could not be stored (%s)", type(exc).__name__)
            with self.lock:
                self.failed += 1
            return 0xA700
        if self.progress is not None:
            self.progress(done, self.total)
        return 0x0000


def _query_for(study_uid: str, series_uid: str | None) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "SERIES" if series_uid else "STUDY"
    ds.StudyInstanceUID = study_uid
    if series_uid:
        ds.SeriesInstanceUID = series_uid
    return ds


def retrieve(settings: PacsSettings, study_uid: str, series_uid: str | None = None, dest: Path | None = None,
             progress: Callable[[int, int | None], None] | None = None,
             cancel: threading.Event | None = None, patient_id: Patient | str | None = None,
             seen: Sequence[Patient] = ()) -> Retrieved:
    """Retrieve a series (or a whole study) with C-GET, or C-MOVE when the settings say so.

    ``patient_id``: the patient whose instances are kept (``other_patient``), a ``Patient``, or a bare ID (the
    person the archive files the study under with that ID: ``study_patient``); not given or empty, the one the
    archive files the study under. Nothing but another patient's instances: ``PacsOtherPatient``. ``seen``: the
    people earlier retrieves of one screen kept (``Retrieved.persons``), whom every instance must agree with too.

    ``progress(done, total)``: instances received so far, and the total once the archive has said it.
    ``cancel`` (threading.Event): the retrieve stops, the partial folder is removed and
    ``octviewer.core.Cancelled`` is raised. A retrieve that fails leaves nothing behind either; a
    complete one replaces an earlier copy of the same series.
    """
    dest = Path(dest) if dest is not None else retrieved_folder(study_uid, series_uid)
    patient = _patient(settings, study_uid, patient_id)
    if patient is not None:  # the archive's answer re-encodes the name (a Latin-1 answer drops Ř, writes 山田 as
        # "^"): the instances' own names are compared with each other instead (``_Receiver.seen``; A18-7, A18-12)
        patient = dataclasses.replace(patient, name="")
    part = dest.with_name(dest.name + ".part")
    try:
        _make_part(dest, part)
    except OSError as exc:
        raise PacsConfigError(folder_problem(dest.parent, exc)) from None
    receiver = _Receiver(part, cancel, progress, study_uid, series_uid, patient, seen)
    try:
        if settings.retrieve == "move":
            final = _move(settings, _query_for(study_uid, series_uid), receiver)
        else:
            final = _get(settings, _query_for(study_uid, series_uid), receiver)
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        if not receiver.files:
            if receiver.other_patient:
                raise PacsOtherPatient(receiver.other_patient, receiver.same_id, receiver.what_differed,
                                       receiver.ambiguous)
            if final in (0x0000, None):
                raise PacsError("the archive holds no instances for this series (it may have been deleted)")
            raise PacsError(f"the archive sent nothing ({status_text(final)})")
        try:  # inside the try: a copy that cannot be replaced leaves no .part behind either (A11-8)
            _remove(dest)
            part.replace(dest)
        except OSError as exc:
            raise PacsError(f"the retrieved series cannot replace the earlier copy {dest} "
                            f"({exc.strerror or type(exc).__name__}); nothing was kept") from None
    except BaseException:
        with contextlib.suppress(OSError):
            _remove(part)
        raise
    files = tuple(dest / p.name for p in receiver.files)
    log.info("retrieved %d instance(s), %d failed, %d foreign and %d of another patient refused", len(files),
             receiver.failed, receiver.foreign, receiver.other_patient)
    return Retrieved(dest, files, receiver.failed, receiver.foreign, receiver.other_patient, receiver.same_id,
                     receiver.what_differed, receiver.other_name, tuple(receiver.seen), receiver.ambiguous)


def _make_part(dest: Path, part: Path) -> None:
    """An empty owner-only ``.part`` folder beside ``dest``, in owner-only folders: the retrieved
    instances carry the patient's name, ID and birth date, and were world-readable in 0755 folders
    whenever a retrieve or ``configure`` made the data folder before the results store (attack run
    11, A11-1). ``pacs/`` and ``pacs/<study>/`` are octviewer's own, so an earlier version's 0755 is
    tightened too."""
    root = data_folder() / "pacs"
    for folder in ([root] if dest.parent.parent == root else []) + [dest.parent]:
        private_folder(folder, tighten=True)
    _remove(part)
    os.mkdir(part, 0o700)


def _remove(path: Path) -> None:
    """Remove a folder with what it holds, or a file or symbolic link itself (never what a link points
    to); nothing when there is none. An earlier series folder moved to another disk and linked back
    ended the next retrieve in "OSError: Cannot call rmtree on a symbolic link" with the new copy left
    in ``.part`` (attack run 11, A11-8): the link is replaced, the folder it points to is left."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISDIR(mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _follow(settings: PacsSettings, assoc, responses, receiver: _Receiver, model: str) -> int | None:
    """Read the C-GET/C-MOVE responses: totals for the progress, a cancel when asked; the final status."""
    final = None
    for status, _ in responses:
        if not status or "Status" not in status:
            raise _lost(settings, "retrieve")
        code = int(status.Status)
        counts = [_int(status.get(k)) or 0 for k in ("NumberOfRemainingSuboperations", "NumberOfCompletedSuboperations",
                                                       "NumberOfFailedSuboperations", "NumberOfWarningSuboperations")]
        if code in (0xFF00, 0xFF01):
            receiver.total = sum(counts)
            if receiver.cancel is not None and receiver.cancel.is_set():
                assoc.send_c_cancel(1, query_model=model)
                assoc.abort()
                raise Cancelled()
            continue
        final = code
        receiver.failed = max(receiver.failed, counts[2])
        if code not in (0x0000, 0xB000, 0xFE00) and not receiver.files and not receiver.other_patient:
            raise PacsError(f"the archive could not send the series ({status_text(code)})")
    return final


def _get(settings: PacsSettings, query: Dataset, receiver: _Receiver) -> int | None:
    # One context per compressed syntax: the archive accepts one syntax per context and would pick the
    # uncompressed one, then fail to transcode a JPEG 2000 cube into it (Orthanc does so).
    plain = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]
    contexts = [(StudyRootQueryRetrieveInformationModelGet, plain)]
    for sop_class in STORAGE_CLASSES:
        contexts += [(sop_class, plain)] + [(sop_class, [ts]) for ts in TRANSFER_SYNTAXES if ts not in plain]
    with association(settings, contexts, roles=STORAGE_CLASSES,
                     handlers=[(evt.EVT_C_STORE, receiver.on_store)]) as assoc:
        try:
            return _follow(settings, assoc, assoc.send_c_get(query, StudyRootQueryRetrieveInformationModelGet),
                           receiver, StudyRootQueryRetrieveInformationModelGet)
        except Cancelled:
            assoc.join(settings.timeout_s)  # the association's thread has ended: no handler writes after this
            raise


def _move(settings: PacsSettings, query: Dataset, receiver: _Receiver) -> int | None:
    """C-MOVE: the archive opens its own association to this workstation's storage service. Only the
    archive's AE title may open it: any node could store instances into a retrieve (attack run 12, A12-2)."""
    ae = _make_ae(settings)
    ae.require_calling_aet = [settings.archive_ae]
    for sop_class in STORAGE_CLASSES:
        ae.add_supported_context(sop_class, TRANSFER_SYNTAXES)
    try:
        server = ae.start_server(("", settings.local_port), block=False, ae_title=settings.local_ae,
                                 evt_handlers=[(evt.EVT_C_STORE, receiver.on_store)],
                                 ssl_context=None)
    except OSError as exc:
        raise PacsError(f"this workstation cannot listen on port {settings.local_port} for C-MOVE "
                        f"({exc.strerror or exc}); choose another port or use C-GET") from None
    try:
        contexts = [(StudyRootQueryRetrieveInformationModelMove, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])]
        with association(settings, contexts) as assoc:
            final = _follow(settings, assoc,
                            assoc.send_c_move(query, settings.local_ae, StudyRootQueryRetrieveInformationModelMove),
                            receiver, StudyRootQueryRetrieveInformationModelMove)
            if final == 0xA801:
                raise PacsError(f"the archive does not know this workstation ({settings.local_ae!r}) as a C-MOVE "
                                "destination: add it (AE title, host, port) to the archive's modalities, or use C-GET")
            return final
    finally:
        server.shutdown()


# -- C-STORE --------------------------------------------------------------------------------------
def describe_object(ds: Dataset) -> str:
    """The kind of object, for messages (never its patient data)."""
    return {EncapsulatedPDFStorage: "the PDF report", Comprehensive3DSRStorage: "the structured report",
            EnhancedSRStorage: "the structured report", ComprehensiveSRStorage: "the structured report"}.get(
        str(ds.get("SOPClassUID", "")), "a DICOM object")


def store(settings: PacsSettings, datasets: list[Dataset],
          progress: Callable[[int, int], None] | None = None) -> None:
    """C-STORE each dataset to the archive, on one association; the first refusal raises ``PacsError``."""
    contexts = {}
    for ds in datasets:
        contexts.setdefault(str(ds.SOPClassUID), set()).add(str(ds.file_meta.TransferSyntaxUID))
    with association(settings, [(c, sorted(s)) for c, s in contexts.items()]) as assoc:
        for i, ds in enumerate(datasets, start=1):
            status = assoc.send_c_store(ds)
            if not status or "Status" not in status:
                raise _lost(settings, f"sending of {describe_object(ds)}")
            code = int(status.Status)
            if code != 0x0000 and not 0xB000 <= code <= 0xB007:
                raise PacsRefused(f"the archive refused {describe_object(ds)} ({status_text(code)})", i - 1)
            if progress is not None:
                progress(i, len(datasets))
    log.info("sent %d object(s) to %s", len(datasets), settings.describe())
