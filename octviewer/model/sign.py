"""Make a signing key pair, or sign a model file: ``python -m octviewer.model.sign``.

A module of its own (not ``signing``) because it needs the model-file writer, which itself
verifies signatures through ``signing``: kept apart, neither imports the other.
"""

from __future__ import annotations

if __name__ == "__main__":  # a stop while the imports below load: one line, exit 130 (core.stop.run_module)
    from octviewer.core.stop import run_module

    run_module("octviewer.model.sign", "run it again")

import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .meta import ModelFileError, ModelWriteError
from .model_file import sign_model_file
from .signing import SignatureError, key_id, public_key_text, read_private_key, write_private_key


def main(argv: list[str] | None = None) -> int:
    """``python -m octviewer.model.sign``: make a key pair, or sign a model file with a private key."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m octviewer.model.sign", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    new = sub.add_parser("new-key", help="write a new private key (owner-only) and its .pub beside it")
    new.add_argument("private", type=Path)
    signer = sub.add_parser("sign", help="sign a model file in place")
    signer.add_argument("model", type=Path)
    signer.add_argument("--key", type=Path, required=True, help="private key (PEM)")
    args = parser.parse_args(argv)
    if args.command == "new-key":
        if not args.private.name or args.private.name == "..":  # "": with_suffix raised ValueError (attack run 3 F15)
            print(f"error: {str(args.private)!r} names no file; give the new key a file name, e.g. key.pem")
            return 2
        key = Ed25519PrivateKey.generate()
        pub = args.private.with_suffix(".pub")
        if os.path.lexists(args.private):  # a key (or anything else) there is never overwritten
            print(f"error: {args.private} exists; give the new key another file name")
            return 2
        if pub == args.private:  # its .pub text was written over the private key
            print(f"error: {args.private} ends in .pub, the public key's name; name the private key e.g. key.pem")
            return 2
        if os.path.lexists(pub):  # a pinned key of that name, or a link: write_text overwrote what it led to
            print(f"error: {pub} exists; give the new key another file name")
            return 2
        try:
            write_private_key(args.private, key)
        except FileExistsError as exc:  # a key (or anything else) there is never overwritten
            if os.path.lexists(args.private):
                print(f"error: {args.private} exists; give the new key another file name")
            else:  # mkdir of its folder met a file of that name
                print(f"error: {args.private}: cannot be written ({exc.strerror}: {Path(exc.filename or '').name})")
            return 2
        except OSError as exc:  # a read-only place, a full disk, a missing folder: one line, nothing left
            print(f"error: {args.private}: cannot be written ({exc.strerror or type(exc).__name__})")
            return 2
        try:
            fd = os.open(pub, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(public_key_text(key.public_key()) + "\n")
        except OSError as exc:  # a key without its .pub is of no use: neither is left behind
            args.private.unlink(missing_ok=True)
            if not isinstance(exc, FileExistsError):
                pub.unlink(missing_ok=True)
            print(f"error: {pub}: cannot be written ({exc.strerror or type(exc).__name__})")
            return 2
        print(f"wrote {args.private} (keep it private) and {pub} (key {key_id(key.public_key())})")
        return 0
    try:
        sign_model_file(args.model, read_private_key(args.key))
    except ModelWriteError as exc:  # a full disk: an output problem, not a bad model
        print(f"error: {exc}")
        return 3
    except (ModelFileError, SignatureError, OSError, ValueError, TypeError) as exc:  # TypeError: a key with a password
        print(f"error: {exc}")
        return 2
    print(f"signed {args.model}")
    return 0

