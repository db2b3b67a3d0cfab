"""Where the archive is and who this workstation is: a small settings file readable by its owner only.

The settings name hosts and AE titles, not patients, but a clinic's network layout is still not for
other users of a shared workstation, so the file is written 0600 (and re-tightened on every save).
The local folders (retrieved series, the outbox of results waiting to be sent) live under the
user's data folder, beside the results store: ``$OCTVIEWER_DATA`` when set, else
``$XDG_DATA_HOME/octviewer`` (``~/.local/share/octviewer``).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import re
import ssl
import stat
from dataclasses import dataclass
from pathlib import Path

from ..core.files import FileRefused, file_kind, open_for_writing, private_folder, read_small_file, settings_text

SETTINGS_FILE = "pacs.json"
#: A settings file is a few hundred bytes; more is not one.
MAX_SETTINGS_BYTES = 64 << 10
RETRIEVE_METHODS = ("get", "move")


class PacsConfigError(ValueError):
    """Settings that cannot be used; the message names the field (and the file, when read from one)."""


def data_folder() -> Path:
    """The user's data folder, the results store's (created on demand by whoever writes into it)."""
    from ..pipeline.store import default_path

    return default_path().parent


def _quoted(value) -> str:
    """A bad value as a message quotes it: at most 40 characters, and how long it was (a 60,000-character
    AE title was quoted whole, attack run 5, F22)."""
    text = str(value)
    return repr(text) if len(text) <= 40 else f"{text[:40]!r}... ({len(text)} characters)"


def _check_ae(title: str, what: str) -> str:
    title = str(title).strip()
    # PS3.5 AE: 1-16 characters of the default repertoire, no backslash or control characters
    if not title or len(title) > 16 or "\\" in title or not all(32 <= ord(c) < 127 for c in title):
        raise PacsConfigError(f"{what} must be 1-16 plain characters (letters, digits, spaces), "
                              f"got {_quoted(title)}")
    return title


def _check_port(port, what: str, allow_zero: bool = False) -> int:
    """A port as a whole number, or text of ASCII digits: int() also reads Arabic-Indic digits
    ("١٠٤" as 104) and 4242.9 as 4242, which a settings field must not turn into a port silently."""
    if isinstance(port, str) and re.fullmatch(r"[0-9]{1,5}", port.strip()):
        port = int(port.strip())
    if isinstance(port, bool) or not isinstance(port, int):
        raise PacsConfigError(f"{what} must be a number written in the digits 0-9, got {port!r:.40}")
    value = port
    if not (0 if allow_zero else 1) <= value <= 65535:  # a 401-digit port was echoed in full
        raise PacsConfigError(f"{what} must be between {0 if allow_zero else 1} and 65535, got {str(value)[:20]}"
                              + ("..." if len(str(value)) > 20 else ""))
    return value


_TLS_FILES = (("tls_ca_file", "the archive's CA certificate"), ("tls_cert_file", "this workstation's certificate"),
              ("tls_key_file", "this workstation's key"))


@dataclass(frozen=True)
class PacsSettings:
    """The archive (AE title, host, port), this workstation (AE title, and the port of its own storage
    service, used by C-MOVE only), optional TLS, the time to wait for an answer, and how to retrieve."""

    archive_ae: str = "ORTHANC"
    archive_host: str = "127.0.0.1"
    archive_port: int = 4242
    local_ae: str = "OCTVIEWER"
    local_port: int = 11112
    tls: bool = False
    tls_ca_file: str = ""  # the archive's CA certificate (PEM); empty: the system's trusted CAs
    tls_cert_file: str = ""  # this workstation's certificate, where the archive asks for one
    tls_key_file: str = ""
    timeout_s: float = 30.0
    retrieve: str = "get"  # "get" (C-GET, one association) or "move" (C-MOVE to local_ae:local_port)

    def __post_init__(self):
        # Each field has its JSON type: a hand-edited pacs.json's "tls": "false" is a non-empty string,
        # which bool() read as true and so turned TLS on (attack run L3); a number as an AE title or host
        # was taken as its digits. Numbers may also be text of ASCII digits (the Preferences' fields).
        for name in ("archive_ae", "archive_host", "local_ae", "retrieve"):
            if not isinstance(getattr(self, name), str):
                raise PacsConfigError(f"{name} must be text (a JSON string), got {getattr(self, name)!r:.40}")
        for name, words in _TLS_FILES:
            if not isinstance(getattr(self, name), str):  # a hand-edited file's 5 or [...] raised a raw TypeError
                raise PacsConfigError(f"TLS: {words} must be a file name, got {getattr(self, name)!r:.40}")
        if not isinstance(self.tls, bool):
            raise PacsConfigError(f"tls must be true or false (a JSON boolean, not a string or number), "
                                  f"got {self.tls!r:.40}")
        object.__setattr__(self, "archive_ae", _check_ae(self.archive_ae, "the archive's AE title"))
        object.__setattr__(self, "local_ae", _check_ae(self.local_ae, "this workstation's AE title"))
        object.__setattr__(self, "archive_host", _check_host(self.archive_host))
        object.__setattr__(self, "archive_port", _check_port(self.archive_port, "the archive's port"))
        object.__setattr__(self, "local_port", _check_port(self.local_port, "this workstation's port", True))
        timeout = self.timeout_s
        if isinstance(timeout, str) and re.fullmatch(r"[0-9]{1,6}(\.[0-9]{1,6})?", timeout.strip()):
            timeout = float(timeout)  # float() alone also read "١٠", "1e1", "inf" and true (1.0)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise PacsConfigError(f"the timeout must be a number of seconds written in the digits 0-9, got "
                                  f"{self.timeout_s!r:.40}")
        if not 0.1 <= timeout <= 3600:  # before float(): a 401-digit JSON integer overflowed it (attack run 3 F6)
            raise PacsConfigError(f"the timeout must be between 0.1 and 3600 s, got {str(timeout)[:20]}"
                                  + ("..." if len(str(timeout)) > 20 else ""))
        timeout = float(timeout)
        object.__setattr__(self, "timeout_s", timeout)
        if self.retrieve not in RETRIEVE_METHODS:
            raise PacsConfigError(f"retrieve must be one of {', '.join(RETRIEVE_METHODS)}, "
                                  f"got {_quoted(self.retrieve)}")
        if self.retrieve == "move" and not self.local_port:
            raise PacsConfigError("C-MOVE needs this workstation's port (the archive sends the images there)")
        if self.tls:
            for name, words in _TLS_FILES:
                value = getattr(self, name)
                if value and (problem := _not_a_file(value)):
                    raise PacsConfigError(f"TLS: {words} {value} {problem}")
            if bool(self.tls_cert_file) != bool(self.tls_key_file):
                raise PacsConfigError("TLS: give both this workstation's certificate and its key, or neither")
            tls_context(self)  # files that are no certificate or key are refused here, not at the first echo

    def replace(self, **changes) -> PacsSettings:
        return dataclasses.replace(self, **changes)

    @property
    def host_address(self) -> str:
        """The host as the network calls take it: an IPv6 literal without its brackets."""
        return self.archive_host.strip("[]")

    def describe(self) -> str:
        """For messages: who calls whom, where (no patient data here)."""
        return (f"archive {self.archive_ae} at {self.archive_host}:{self.archive_port}"
                f"{' (TLS)' if self.tls else ''}, this workstation {self.local_ae}")


def _not_a_file(path: str) -> str:
    """Why ``path`` is no file to read, in words ("is a named pipe (FIFO), not a file"), or "". A FIFO
    or a folder given as a TLS file "does not exist" (``is_file``), and ssl would block on a FIFO
    (attack run 11, A11-12)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "does not exist"
    except (OSError, ValueError) as exc:  # no permission to look, a NUL in the name
        return f"cannot be read ({getattr(exc, 'strerror', None) or type(exc).__name__})"
    return "" if stat.S_ISREG(mode) else f"is {file_kind(mode)}, not a file"


def _check_host(host) -> str:
    """A host name or IPv4 address (letters, digits, dots, hyphens), or an IPv6 literal in brackets
    (``[fd00::10]``). A colon outside brackets is refused: ``localhost:104`` is a port written into
    the host, which the connection would look up as a name and report as an unknown host."""
    text = str(host).strip()
    if text.startswith("[") and text.endswith("]"):
        try:
            ipaddress.IPv6Address(text[1:-1])
            return text
        except ValueError:
            raise PacsConfigError(f"the archive's host {_quoted(text)} is not an IPv6 address in brackets") from None
    if ":" in text:
        try:
            hint = f"an IPv6 address goes in brackets, [{ipaddress.IPv6Address(text)}]"
        except ValueError:
            hint = "give the host alone, and the port in its own field"
        raise PacsConfigError(f"the archive's host {_quoted(text)} holds a colon: {hint}")
    if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?", text):
        raise PacsConfigError(f"the archive's host must be a name or address (letters, digits, dots, hyphens; an "
                              f"IPv6 address in brackets), got {_quoted(text)}")
    return text


def _no_password() -> bytes:
    raise PacsConfigError("TLS: this workstation's key is protected by a password; octviewer needs the key "
                          "without one (keep the file readable by you only)")


def tls_context(settings: PacsSettings) -> ssl.SSLContext:
    """The TLS context for the archive: its CA (or the system's), and this workstation's certificate
    and key. PacsConfigError naming the file when one is not what its field says: checked when the
    settings are made, so ``configure`` and the Preferences refuse it, and a connection never ends
    in a bare SSLError."""
    ca, cert, key = settings.tls_ca_file, settings.tls_cert_file, settings.tls_key_file
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca or None)
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise PacsConfigError(f"TLS: the archive's CA certificate {ca} is not a PEM certificate "
                              f"({_ssl_reason(exc)})") from None
    if cert:
        _check_pem(cert, "this workstation's certificate", "CERTIFICATE")
        _check_pem(key, "this workstation's key", "PRIVATE KEY")
        try:
            context.load_cert_chain(cert, key, password=_no_password)  # never a password prompt on a terminal
        except PacsConfigError:
            raise
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise PacsConfigError(f"TLS: this workstation's certificate {cert} and key {key} cannot be used together "
                                  f"({_ssl_reason(exc)})") from None
    return context


def _check_pem(path: str, words: str, kind: str) -> None:
    """The file holds a PEM block of ``kind`` (a certificate, a private key): ssl's own error for a
    wrong file says neither which file nor what it is ("PEM lib")."""
    try:
        with open(path, "rb") as f:
            text = f.read(1 << 20)
    except OSError as exc:
        raise PacsConfigError(f"TLS: {words} {path} cannot be read ({exc.strerror or type(exc).__name__})") from None
    if not re.search(rb"-----BEGIN ([A-Z]+ )?" + kind.encode() + rb"-----", text):
        raise PacsConfigError(f"TLS: {words} {path} is not a PEM {kind.lower()} (no '-----BEGIN ... {kind}-----' "
                              "block)")


def _ssl_reason(exc: Exception) -> str:
    return str(getattr(exc, "reason", "") or getattr(exc, "strerror", "") or exc)[:120]


def settings_path() -> Path:
    return data_folder() / SETTINGS_FILE


class _GivenTwice(ValueError):
    pass


def _once(pairs: list) -> dict:
    """A JSON object whose keys are given once: json.loads kept the last of two ("tls": false, then
    "tls": true), so a hand-edited file said two things and the one read was not the one seen first."""
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise _GivenTwice(next(k for k in keys if keys.count(k) > 1))
    return dict(pairs)


def load_settings(path=None) -> PacsSettings:
    """The saved settings, or the defaults when none were saved."""
    path = Path(path) if path is not None else settings_path()
    raw = saved_values(path)  # its own messages name the file
    try:
        return PacsSettings(**raw)
    except PacsConfigError as exc:
        raise PacsConfigError(f"{path}: {exc}") from None


def saved_values(path) -> dict:
    """The settings saved in ``path`` as they are written there (known names only), not yet checked;
    {} when none were saved. ``configure`` starts from these and checks only the result: settings
    whose CA file had since been removed made every ``configure`` fail on that old value, so the
    command that should repair them could not (attack run 11, A11-12)."""
    path = Path(path)
    if not path.exists():
        return {}
    try:  # a FIFO given as --settings blocked for good, a link to /dev/zero filled memory
        raw = json.loads(settings_text(read_small_file(path, MAX_SETTINGS_BYTES)), object_pairs_hook=_once)
    except _GivenTwice as exc:
        raise PacsConfigError(f"{path}: the setting {str(exc)[:40]!r} is given twice; give it once") from None
    except FileRefused as exc:
        raise PacsConfigError(f"{path}: not readable as PACS settings: {exc}") from None
    except UnicodeDecodeError:
        raise PacsConfigError(f"{path}: not readable as PACS settings: it is not UTF-8 text "
                              "(save it as UTF-8)") from None
    except json.JSONDecodeError as exc:  # its words ("Expecting ',' delimiter") quote nothing from the file
        raise PacsConfigError(f"{path}: not readable as PACS settings: not valid JSON ({exc.msg} at line "
                              f"{exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise PacsConfigError(f"{path}: not readable as PACS settings: JSON nested too deeply") from None
    except ValueError:  # a number of 5000 digits: int() refuses it, and not as a JSONDecodeError (attack run 6, A6-12)
        raise PacsConfigError(f"{path}: not readable as PACS settings: it holds a number too long to be "
                              "a setting") from None
    except OSError as exc:
        raise PacsConfigError(f"{path}: not readable as PACS settings "
                              f"({exc.strerror or type(exc).__name__})") from None
    if not isinstance(raw, dict):
        raise PacsConfigError(f"{path}: not readable as PACS settings (expected a JSON object)")
    known = {f.name for f in dataclasses.fields(PacsSettings)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise PacsConfigError(f"{path}: unknown setting(s) {', '.join(repr(k[:40]) for k in unknown[:5])}")
    return raw


def save_settings(settings: PacsSettings, path=None) -> Path:
    """Written atomically, owner read/write only (0600)."""
    path = Path(path) if path is not None else settings_path()
    try:  # a read-only HOME (no OCTVIEWER_DATA) raised a raw OSError
        private_folder(path.parent)  # the data folder, 0700 whoever makes it first (A11-1)
    except OSError as exc:
        raise PacsConfigError(folder_problem(path.parent, exc)) from None
    tmp = path.with_name(path.name + ".part")
    try:  # never through a link: a .part linked to another file was overwritten with the settings
        fd = open_for_writing(tmp, 0o600)
    except FileRefused as exc:
        raise PacsConfigError(f"{tmp} {exc}") from None
    except OSError as exc:
        raise PacsConfigError(folder_problem(path.parent, exc)) from None
    try:
        os.fchmod(fd, 0o600)  # an existing .part keeps its old mode through O_CREAT
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(dataclasses.asdict(settings), f, indent=2)
        tmp.replace(path)
    except OSError as exc:  # a full disk: the settings before stay as they were
        tmp.unlink(missing_ok=True)
        raise PacsConfigError(f"{path} cannot be written: {exc.strerror or type(exc).__name__}") from None
    return path


def folder_problem(folder: Path, exc: OSError) -> str:
    """One line for a settings or data folder that cannot be made or written into."""
    return (f"the folder {folder} is not writable ({exc.strerror or type(exc).__name__}); "
            "set OCTVIEWER_DATA to a writable folder")
