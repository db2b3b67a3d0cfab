"""Where the archive is and who this workstation is: a small settings file readable by its owner only.

The settings name hosts and AE titles, not patients, but a clinic's network layout is still not for
other users of a shared workstation, so the file is written 0600 (and re-tightened on every save).
The local folders (retrieved series, the outbox of results waiting to be sent) live under the
user's data folder, beside the results store: ``$OCTVIEWER_DATA`` when set, else
``$XDG_DATA_HOME/octviewer`` (``~/.local/share/octviewer``).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

SETTINGS_FILE = "pacs.json"
RETRIEVE_METHODS = ("get", "move")


class PacsConfigError(ValueError):
    """Settings that cannot be used; the message names the field (and the file, when read from one)."""


def data_folder() -> Path:
    """The user's data folder, the results store's (created on demand by whoever writes into it)."""
    from ..pipeline.store import default_path

    return default_path().parent


def _check_ae(title: str, what: str) -> str:
    title = str(title).strip()
    # PS3.5 AE: 1-16 characters of the default repertoire, no backslash or control characters
    if not title or len(title) > 16 or "\\" in title or not all(32 <= ord(c) < 127 for c in title):
        raise PacsConfigError(f"{what} must be 1-16 plain characters (letters, digits, spaces), got {title!r}")
    return title


def _check_port(port, what: str, allow_zero: bool = False) -> int:
    try:
        value = int(port)
    except (TypeError, ValueError):
        raise PacsConfigError(f"{what} must be a number, got {port!r}") from None
    if not (0 if allow_zero else 1) <= value <= 65535:
        raise PacsConfigError(f"{what} must be between {0 if allow_zero else 1} and 65535, got {value}")
    return value


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
        object.__setattr__(self, "archive_ae", _check_ae(self.archive_ae, "the archive's AE title"))
        object.__setattr__(self, "local_ae", _check_ae(self.local_ae, "this workstation's AE title"))
        host = str(self.archive_host).strip()
        if not host or any(c.isspace() for c in host):
            raise PacsConfigError(f"the archive's host must be a name or address, got {self.archive_host!r}")
        object.__setattr__(self, "archive_host", host)
        object.__setattr__(self, "archive_port", _check_port(self.archive_port, "the archive's port"))
        object.__setattr__(self, "local_port", _check_port(self.local_port, "this workstation's port", True))
        try:
            timeout = float(self.timeout_s)
        except (TypeError, ValueError):
            raise PacsConfigError(f"the timeout must be a number of seconds, got {self.timeout_s!r}") from None
        if not 0.1 <= timeout <= 3600:
            raise PacsConfigError(f"the timeout must be between 0.1 and 3600 s, got {timeout}")
        object.__setattr__(self, "timeout_s", timeout)
        if self.retrieve not in RETRIEVE_METHODS:
            raise PacsConfigError(f"retrieve must be one of {', '.join(RETRIEVE_METHODS)}, got {self.retrieve!r}")
        if self.retrieve == "move" and not self.local_port:
            raise PacsConfigError("C-MOVE needs this workstation's port (the archive sends the images there)")
        object.__setattr__(self, "tls", bool(self.tls))
        if self.tls:
            for name, words in (("tls_ca_file", "the archive's CA certificate"),
                                ("tls_cert_file", "this workstation's certificate"),
                                ("tls_key_file", "this workstation's key")):
                value = getattr(self, name)
                if value and not Path(value).is_file():
                    raise PacsConfigError(f"TLS: {words} {value} does not exist")
            if bool(self.tls_cert_file) != bool(self.tls_key_file):
                raise PacsConfigError("TLS: give both this workstation's certificate and its key, or neither")

    def replace(self, **changes) -> PacsSettings:
        return dataclasses.replace(self, **changes)

    def describe(self) -> str:
        """For messages: who calls whom, where (no patient data here)."""
        return (f"archive {self.archive_ae} at {self.archive_host}:{self.archive_port}"
                f"{' (TLS)' if self.tls else ''}, this workstation {self.local_ae}")


def settings_path() -> Path:
    return data_folder() / SETTINGS_FILE


def load_settings(path=None) -> PacsSettings:
    """The saved settings, or the defaults when none were saved."""
    path = Path(path) if path is not None else settings_path()
    if not path.exists():
        return PacsSettings()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PacsConfigError(f"{path}: not readable as PACS settings ({type(exc).__name__})") from None
    if not isinstance(raw, dict):
        raise PacsConfigError(f"{path}: not readable as PACS settings (expected a JSON object)")
    known = {f.name for f in dataclasses.fields(PacsSettings)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise PacsConfigError(f"{path}: unknown setting(s) {', '.join(unknown)}")
    try:
        return PacsSettings(**raw)
    except PacsConfigError as exc:
        raise PacsConfigError(f"{path}: {exc}") from None


def save_settings(settings: PacsSettings, path=None) -> Path:
    """Written atomically, owner read/write only (0600)."""
    path = Path(path) if path is not None else settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(dataclasses.asdict(settings), f, indent=2)
    os.chmod(tmp, 0o600)  # an existing .part keeps its old mode through O_CREAT
    tmp.replace(path)
    return path
