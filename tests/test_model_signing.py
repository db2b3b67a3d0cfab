"""Signed model files: the workstation's own key, pinned keys, the bundled demo model, and what an
unsigned or unknown model's results say."""

import json
import os
import stat

import pytest
import torch
from corpus import small_volume
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from safetensors import safe_open
from safetensors.torch import save_file

from octviewer.model import ModelFileError, Predictor, Preprocess, build_network, default_metadata, load_model, signing
from octviewer.model.model_file import save_model, sign_model_file


@pytest.fixture
def config(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("OCTVIEWER_TRUSTED_KEYS", raising=False)
    return tmp_path / "config" / "octviewer"


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(1)
    net = build_network("semt", init="random", reg_channels=8).eval()
    meta = default_metadata("semt", preprocess=Preprocess(size=32))
    meta["network"]["reg_channels"] = 8
    return net, meta


def test_the_workstation_key_is_made_owner_only_on_first_use(config):
    key = signing.workstation_key()
    path = signing.workstation_key_path()
    assert path.parent.parent == config and stat.S_IMODE(path.stat().st_mode) == 0o600
    again = signing.workstation_key()  # the same key next time, never a new one
    assert signing.key_id(again.public_key()) == signing.key_id(key.public_key())
    os.chmod(path, 0o644)  # a key file others could read is made owner-only when read
    signing.read_private_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_model_signed_here_is_trusted_here(config, small, tmp_path):
    net, meta = small
    path = save_model(tmp_path / "retrained.safetensors", net, meta, sign_with=signing.workstation_key())
    model = load_model(path)
    assert model.trust.trusted and model.trust.signer == signing.WORKSTATION
    p = Predictor(model, device="cpu").predict(small_volume((3, 40, 32)))
    assert not any("not verified" in n for n in p.notes)


def test_unsigned_and_unknown_models_carry_a_warning_until_the_key_is_pinned(config, small, tmp_path, monkeypatch):
    net, meta = small
    unsigned = load_model(save_model(tmp_path / "unsigned.safetensors", net, meta))
    assert unsigned.trust.status == "unsigned"
    other = Ed25519PrivateKey.generate()
    path = save_model(tmp_path / "other.safetensors", net, meta, sign_with=other)
    unknown = load_model(path)
    assert unknown.trust.status == "unknown"
    for model in (unsigned, unknown):
        p = Predictor(model, device="cpu").predict(small_volume((3, 40, 32)))
        assert p.notes[0].startswith("model file not verified")
    pinned = tmp_path / "clinic_keys"
    pinned.mkdir()
    (pinned / "Clinic research group.pub").write_text(signing.public_key_text(other.public_key()) + "\n")
    monkeypatch.setenv("OCTVIEWER_TRUSTED_KEYS", str(pinned))
    trusted = load_model(path)
    assert trusted.trust.trusted and trusted.trust.signer == "Clinic research group"


def test_a_signed_file_changed_afterwards_is_refused(config, small, tmp_path):
    net, meta = small
    path = save_model(tmp_path / "m.safetensors", net, meta, sign_with=signing.workstation_key())
    with safe_open(str(path), framework="pt") as f:
        header = f.metadata()
        state = {k: f.get_tensor(k) for k in f.keys()}
    state["fc.bias"] = state["fc.bias"] - 1.0
    from octviewer.model.meta import ModelMeta
    from octviewer.model.model_file import model_digest

    # the attacker recomputes the digest, but cannot sign it with the workstation's key
    digest = model_digest(ModelMeta.from_json(header["octviewer"]), state)
    save_file(state, str(path), metadata={**header, "octviewer_digest": digest})
    with pytest.raises(ModelFileError, match="signature does not match"):
        load_model(path)
    header["octviewer_signature"] = json.dumps({"scheme": "ed25519", "public_key": "!!", "signature": "x"})
    save_file(state, str(path), metadata={**header, "octviewer_digest": digest})
    with pytest.raises(ModelFileError, match="public key"):
        load_model(path)


def test_the_bundled_demo_model_is_signed_by_the_project_key(config):
    from octviewer.resources import DEMO_MODEL, RESOURCES

    model = load_model(DEMO_MODEL)
    assert model.trust.trusted and model.trust.signer == "octviewer-project"
    assert (RESOURCES / "keys" / "octviewer-project.pub").is_file()
    assert not list(RESOURCES.rglob("*.pem"))  # the private half never ships


def test_signing_in_place_keeps_weights_and_metadata_to_the_bit(config, small, tmp_path):
    net, meta = small
    path = save_model(tmp_path / "m.safetensors", net, meta)
    before = load_model(path)
    sign_model_file(path, signing.workstation_key())
    after = load_model(path)
    assert after.digest == before.digest and after.trust.trusted
    assert all(torch.equal(a, b) for a, b in zip(before.network.state_dict().values(),
                                                 after.network.state_dict().values()))


def test_a_training_run_signs_only_when_asked(config, monkeypatch):
    # Model > Retrain sets OCTVIEWER_SIGN_MODEL=workstation for the run it starts; a plain
    # octviewer-train run (a GPU server) makes no key there unasked.
    assert signing.key_for_new_models() is None and not signing.workstation_key_path().exists()
    monkeypatch.setenv(signing.SIGN_ENV, "workstation")
    key = signing.key_for_new_models()
    assert signing.key_id(key.public_key()) == signing.key_id(signing.workstation_key().public_key())


def test_attaching_an_evaluation_to_a_signed_file_says_the_signature_is_gone(config, small, tmp_path):
    from octviewer.model.model_file import attach_evaluation

    net, meta = small
    path = save_model(tmp_path / "m.safetensors", net, meta, sign_with=signing.workstation_key())
    with pytest.warns(UserWarning, match="sign it again"):
        attach_evaluation(path, {"image_level": {"auc": 0.8, "n": 10}})
    assert load_model(path).trust.status == "unsigned"
    attach_evaluation(path, {"image_level": {"auc": 0.7, "n": 10}}, sign_with=signing.workstation_key())
    assert load_model(path).trust.trusted


@pytest.mark.parametrize("kind", ["text file", "folder", "link to a model file", "fifo"])
def test_sign_refuses_a_key_that_is_no_key_file_and_leaves_it_as_it_was(kind, config, tmp_path, capsys):
    """`python -m octviewer.model.sign sign --key X` made X 0600 before it looked at what X was: a
    text file, a folder or a model file behind a link lost their permissions and were then refused, and
    a FIFO blocked the command for good (attack run M12). Now X is checked first and left alone."""
    from octviewer.model.sign import main

    model = tmp_path / "m.safetensors"  # the key is looked at before the model is read
    model.write_bytes(b"model bytes")
    if kind == "text file":
        key = tmp_path / "notes.txt"
        key.write_text("not a key\n")
    elif kind == "folder":
        key = tmp_path / "folder"
        key.mkdir()
    elif kind == "link to a model file":
        other = tmp_path / "other.safetensors"
        other.write_bytes(b"another model's bytes")
        key = tmp_path / "key.pem"
        key.symlink_to(other)
    else:
        key = tmp_path / "key.pem"
        os.mkfifo(key)
    os.chmod(key, 0o755 if kind == "folder" else 0o644)
    mode = stat.S_IMODE(os.stat(key).st_mode)
    assert main(["sign", str(model), "--key", str(key)]) == 2
    out = capsys.readouterr().out
    assert out.startswith("error: ") and "Traceback" not in out
    assert stat.S_IMODE(os.stat(key).st_mode) == mode and model.read_bytes() == b"model bytes"


@pytest.mark.parametrize("there", ["a link", "a pinned key", "the private key itself"])
def test_new_key_never_writes_its_pub_over_another_file(there, config, tmp_path, capsys):
    """`new-key k.pem` wrote k.pub with write_text: over a pinned key of that name, through a link there
    into the file it led to, and for `new-key k.pub` over the private key just written (found with attack
    run H1). Now an existing .pub is refused before anything is written."""
    from octviewer.model.sign import main

    other = tmp_path / "notes.txt"
    other.write_text("keep me\n")
    private = tmp_path / ("k.pub" if there == "the private key itself" else "k.pem")
    if there == "a link":
        (tmp_path / "k.pub").symlink_to(other)
    elif there == "a pinned key":
        (tmp_path / "k.pub").write_text("pinned\n")
    assert main(["new-key", str(private)]) == 2
    assert capsys.readouterr().out.startswith("error: ")
    assert other.read_text() == "keep me\n"
    if there == "a pinned key":
        assert (tmp_path / "k.pub").read_text() == "pinned\n"
    assert not private.exists()


def test_a_model_file_is_never_written_through_a_link_at_its_temporary_name(config, small, tmp_path):
    """save_model (and so training, sign_model_file and --attach) wrote ``<model>.part`` with safetensors'
    save_file, which followed a link there and overwrote the file it led to (found with attack run H1)."""
    other = tmp_path / "notes.txt"
    other.write_text("keep me\n")
    (tmp_path / "m.safetensors.part").symlink_to(other)
    with pytest.raises(ModelFileError, match="m.safetensors.part is a symbolic link"):
        save_model(tmp_path / "m.safetensors", *small)
    assert other.read_text() == "keep me\n" and not (tmp_path / "m.safetensors").exists()


def test_new_key_that_cannot_be_written_is_one_line_and_leaves_nothing(tmp_path):
    """A full disk left a 0-byte private key (the rerun then said 'exists'); a folder that is a file gave
    a traceback (attack run 2). Here the file-size limit stands in for a full disk."""
    import resource
    import signal
    import subprocess
    import sys

    def small_files():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (16, 16))

    key = tmp_path / "k.pem"
    run = subprocess.run([sys.executable, "-m", "octviewer.model.sign", "new-key", str(key)], capture_output=True,
                         text=True, preexec_fn=small_files, timeout=60)
    assert run.returncode == 2 and "cannot be written" in run.stdout and "Traceback" not in run.stderr
    assert not key.exists() and not key.with_suffix(".pub").exists()
    (tmp_path / "afile").write_text("x")
    run = subprocess.run([sys.executable, "-m", "octviewer.model.sign", "new-key", str(tmp_path / "afile" / "k.pem")],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "cannot be written" in run.stdout and "Traceback" not in run.stderr


def test_signing_a_link_is_refused_and_changes_nothing(tmp_path):
    """The link was replaced by a signed copy (0644) and the model it named left unsigned (attack run 2 L5)."""
    import shutil

    from octviewer.model import ModelFileError
    from octviewer.model.model_file import sign_model_file
    from octviewer.resources import DEMO_MODEL

    model = shutil.copy(DEMO_MODEL, tmp_path / "m.safetensors")
    link = tmp_path / "link.safetensors"
    link.symlink_to(model)
    before = open(model, "rb").read()
    with pytest.raises(ModelFileError, match="symbolic link"):
        sign_model_file(link, None)
    assert link.is_symlink() and open(model, "rb").read() == before
