"""Who vouches for a model file: Ed25519 signatures over its digest, and the keys a workstation trusts.

A model file's digest (``model_file.model_digest``) covers its weights and its metadata. A signature
over that digest says that the holder of a private key wrote exactly this file; any change to a
weight, the threshold or the calibration breaks it. What a signature cannot say is whether the
signer is someone the clinic trusts, so the public keys are pinned here:

- the project's key (``resources/keys/*.pub``), which signs the bundled demo model;
- this workstation's own key, made on first use (private half 0600 in the user's config folder),
  which signs the models that Model > Retrain makes here;
- keys the clinic adds: ``*.pub`` files in ``<config>/octviewer/trusted_keys/`` or in the folders
  named by ``OCTVIEWER_TRUSTED_KEYS`` (separated like PATH).

A ``.pub`` file holds one line: the raw 32-byte public key in base64; its file name is the signer's
name as shown. An unsigned file or one signed by a key not in the list loads, but every result it
gives carries a warning (``Trust.warning``); a signature that does not match the file is refused.
The library is ``cryptography`` (Ed25519): no hand-written cryptography.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..core.files import private_folder, user_folder

WORKSTATION = "this workstation"
MAX_KEY_FILE_BYTES = 4096
#: Set to "workstation" in the environment of a training run to sign the model it writes with this
#: workstation's key (Model > Retrain sets it for the run it starts).
SIGN_ENV = "OCTVIEWER_SIGN_MODEL"
log = logging.getLogger(__name__)


class SignatureError(ValueError):
    """A signature block that is malformed or does not match the file's digest."""


@dataclass(frozen=True)
class Trust:
    """What the signature of one model file says: ``trusted`` (a pinned key signed this content),
    ``unknown`` (signed, but by a key nobody here pinned) or ``unsigned``."""

    status: str
    signer: str = ""
    key_id: str = ""
    #: An unsigned file whose stored digest is missing. octviewer writes one into every model file, so
    #: its absence means it was stripped (or the file predates digests): said apart from "unsigned"
    #: (attack run 2 L6), since whoever removed it may have changed the file too.
    digest_missing: bool = False

    @property
    def trusted(self) -> bool:
        return self.status == "trusted"

    @property
    def warning(self) -> str:
        """The line every result of an untrusted model carries (results panel, CSV, PDF); "" if trusted."""
        if self.status == "trusted":
            return ""
        why = ("it is not signed" if self.status == "unsigned"
               else f"it is signed by a key this workstation does not trust (key {self.key_id})")
        if self.digest_missing:
            why += (" and its stored digest is missing (octviewer writes one into every model file: it was "
                    "removed, or the file is older than digests)")
        return (f"model file not verified: {why}, so nothing vouches that its weights, threshold and "
                "calibration are the ones its maker validated; read its results with care")

    def text(self) -> str:
        if self.status == "trusted":
            return f"signed by {self.signer} (trusted key {self.key_id})"
        if self.status == "unsigned":
            return "unsigned, digest missing" if self.digest_missing else "unsigned"
        return f"signed by an unknown key {self.key_id}"


def config_dir() -> Path:
    return user_folder("config")


def project_keys_dir() -> Path:
    from ..resources import RESOURCES

    return RESOURCES / "keys"


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public: Ed25519PublicKey) -> str:
    """A short, stable name for a public key (the first 16 hex digits of its SHA-256)."""
    return hashlib.sha256(_raw(public)).hexdigest()[:16]


def public_key_text(public: Ed25519PublicKey) -> str:
    return base64.b64encode(_raw(public)).decode("ascii")


def parse_public_key(text: str) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError(f"not an Ed25519 public key ({type(exc).__name__})") from None


def write_private_key(path: Path, key: Ed25519PrivateKey) -> Path:
    """PEM (PKCS#8), created owner-only: the file never exists with looser permissions, nor the folders
    made for it (attack run 11, A11-1's note)."""
    private_folder(path.parent)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
    except BaseException:  # a full disk left a 0-byte key, and the rerun then said "exists" (attack run 2)
        path.unlink(missing_ok=True)
        raise
    return path


def read_private_key(path: Path) -> Ed25519PrivateKey:
    """A PEM private key; a key file others can read is made owner-only, once it is known to be one.

    The file is looked at first and changed last: opened without blocking, checked with ``fstat``
    (a regular file of at most ``MAX_KEY_FILE_BYTES``), read and parsed, and only then narrowed to
    0600 through the same descriptor. ``sign --key`` given a model file, a folder or another user's
    file made it 0600 before refusing it, and a FIFO blocked the command for good (attack run M12)."""
    from ..core.files import FileRefused, opened_small_file

    path = Path(path)
    try:
        with opened_small_file(path, MAX_KEY_FILE_BYTES) as (data, fd):
            key = _private_key(path, data)
            if os.name == "posix" and os.fstat(fd).st_mode & 0o077:
                os.fchmod(fd, 0o600)
    except FileRefused as exc:
        raise SignatureError(f"{path.name}: not a key file: {exc}") from None
    return key


def _private_key(path: Path, data: bytes) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:  # the cryptography library's word for a key that needs a password
        raise SignatureError(f"{path.name}: the key is encrypted with a password; octviewer signs with a key "
                             "without one (keep it readable by you only)") from None
    except ValueError:
        raise SignatureError(f"{path.name}: not a PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SignatureError(f"{path.name}: not an Ed25519 private key")
    return key


def workstation_key_path() -> Path:
    return config_dir() / "keys" / "workstation_ed25519.pem"


def workstation_key() -> Ed25519PrivateKey:
    """This workstation's signing key, made on first use (owner-only)."""
    path = workstation_key_path()
    try:
        write_private_key(path, Ed25519PrivateKey.generate())
    except FileExistsError:
        pass
    return read_private_key(path)


def key_for_new_models() -> Ed25519PrivateKey | None:
    """The key a training run signs its model with: this workstation's when ``SIGN_ENV`` asks for it
    (Model > Retrain), else None (a run on a GPU server makes no key there unasked)."""
    return workstation_key() if os.environ.get(SIGN_ENV) == "workstation" else None


_warned: set[str] = set()


def _refuse(text: str) -> None:
    """A key or folder not trusted: said once per process (a key list is read at every model load)."""
    if text not in _warned:
        _warned.add(text)
        log.warning("%s", text)


def _open_to_others(st: os.stat_result) -> bool:
    """Writable by group or others, or owned by another user (not root): whoever else can write there
    can plant a key that makes their model read "signed by <any name> (trusted key ...)", so such a
    key is not trusted, as ssh does not trust such an authorized_keys (attack run 5, F14). POSIX only:
    Windows reports every folder as 0o777 and has no os.getuid (every clinic key was refused there,
    and every model load raised AttributeError); its ACLs are the folder's administrator's to set."""
    if os.name != "posix":
        return False
    return bool(st.st_mode & 0o022) or st.st_uid not in (os.getuid(), 0)


def _read_pub(path: Path, check_mode: bool = False) -> Ed25519PublicKey | None:
    from ..core.files import FileRefused, opened_small_file

    try:  # opened without blocking and checked again: a FIFO swapped in after a look would block a model load
        with opened_small_file(path, MAX_KEY_FILE_BYTES) as (data, fd):
            if check_mode and _open_to_others(os.fstat(fd)):
                _refuse(f"trusted key {path} not used: other users may write to it "
                        "(make it writable by its owner only: chmod 644)")
                return None
        return parse_public_key(data.decode("ascii").split()[0])
    except (OSError, FileRefused, UnicodeDecodeError, IndexError, SignatureError) as exc:
        if check_mode:
            _refuse(f"trusted key {path} not used: it is not a readable public key "
                    f"({getattr(exc, 'strerror', None) or type(exc).__name__})")
        return None


def trusted_key_dirs() -> list[Path]:
    dirs = [project_keys_dir(), config_dir() / "trusted_keys"]
    dirs += [Path(p) for p in os.environ.get("OCTVIEWER_TRUSTED_KEYS", "").split(os.pathsep) if p]
    return dirs


def trusted_keys() -> dict[str, tuple[str, Ed25519PublicKey]]:
    """key id -> (signer's name, public key): the pinned ``.pub`` files and this workstation's key."""
    keys = {}
    project = project_keys_dir()
    for folder in trusted_key_dirs():
        if not folder.is_dir():
            continue
        # the project's folder is part of the installed program (whoever writes there writes its code)
        clinic = folder != project
        if clinic and _open_to_others(folder.stat()):
            _refuse(f"trusted key folder {folder} not used: other users may write to it "
                    "(make it writable by its owner only: chmod 755)")
            continue
        for path in sorted(folder.glob("*.pub")):
            public = _read_pub(path, check_mode=clinic)
            if public is not None:
                keys[key_id(public)] = (path.stem, public)
    if workstation_key_path().is_file():
        try:
            public = read_private_key(workstation_key_path()).public_key()
            keys[key_id(public)] = (WORKSTATION, public)
        except (OSError, ValueError, SignatureError):
            pass
    return keys


def sign(digest: str, private: Ed25519PrivateKey) -> dict:
    """The signature block stored in a model file's header: the signer's public key and the signature
    over the digest (hex text, as stored)."""
    return {"scheme": "ed25519", "public_key": public_key_text(private.public_key()),
            "signature": base64.b64encode(private.sign(digest.encode("ascii"))).decode("ascii")}


def verify(digest: str, block: dict | None) -> Trust:
    """The trust of a file with this digest and signature block; SignatureError when the block is
    malformed or its signature does not match the digest (the file was changed after signing)."""
    if block is None:
        return Trust("unsigned")
    if not isinstance(block, dict) or block.get("scheme") != "ed25519":
        raise SignatureError("the signature block is not an Ed25519 signature")
    public = parse_public_key(str(block.get("public_key", "")))
    try:
        signature = base64.b64decode(str(block.get("signature", "")), validate=True)
        public.verify(signature, digest.encode("ascii"))
    except (binascii.Error, ValueError, InvalidSignature):
        raise SignatureError("the signature does not match the file: its weights or metadata were changed after "
                             "it was signed") from None
    kid = key_id(public)
    pinned = trusted_keys().get(kid)
    if pinned is not None and _raw(pinned[1]) == _raw(public):
        return Trust("trusted", pinned[0], kid)
    return Trust("unknown", "", kid)
