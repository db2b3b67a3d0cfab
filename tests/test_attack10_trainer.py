"""Attack run 10, the trainer's findings: "not independent data" by patient, not by the manifest's bytes
(A10-10), and the recalibration cohort counted as the training one for evaluate --attach (A10-15)."""

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROWS = ["path,patient_id,eye,label,visit"] + [f"v{i}.npz,P{i // 2},{'OD' if i % 2 else 'OS'},{i % 3 == 0:d},1"
                                              for i in range(20)]


def _patients(rows):
    return [r.split(",")[1] for r in rows[1:]]


@pytest.mark.parametrize("variant", ["crlf", "sorted", "minus_one"])
def test_a10_10_the_training_rows_resaved_are_not_independent(variant, tmp_path):
    from trainer.evaluate_model import not_independent
    from trainer.manifest import content_hash
    from trainer.pseudonym import cohort_keys

    train = tmp_path / "train.csv"
    train.write_text("\n".join(ROWS) + "\n")
    data = {"manifest_sha256": content_hash(train), "patient_keys": cohort_keys(_patients(ROWS))}
    meta = {"provenance": {"data": data, "split_seed": 0}}
    rows = {"crlf": ROWS, "sorted": [ROWS[0], *sorted(ROWS[1:])], "minus_one": ROWS[:-1]}[variant]
    copy = tmp_path / "copy.csv"
    copy.write_bytes(("\r\n" if variant == "crlf" else "\n").join(rows).encode() + b"\n")
    why = not_independent(meta, content_hash(copy), "all", 0, _patients(rows))
    assert "patients are among those the model was trained on" in why, why
    other = [f"Q{i}" for i in range(10)]  # another cohort's patients
    assert not_independent(meta, "0" * 64, "all", 0, other) == ""


def test_a10_10_recalibrate_refuses_a_copy_of_the_training_manifest(tiny_cohort, tmp_path, capsys):
    import torch

    from octviewer.model import Preprocess, build_network, default_metadata, save_model
    from trainer.cli import main
    from trainer.manifest import read_manifest
    from trainer.pseudonym import cohort_keys

    torch.manual_seed(0)
    meta = default_metadata("resnet2d", preprocess=Preprocess(size=32))
    meta.update(name="a10", synthetic_data=True)
    keys = cohort_keys(r.patient_id for r in read_manifest(tiny_cohort)[0])
    meta.setdefault("provenance", {}).update(data={"manifest_sha256": "0" * 64, "patient_keys": keys}, split_seed=0)
    model = save_model(tmp_path / "m.safetensors", build_network("resnet2d", init="random"), meta)
    out = tmp_path / "recal.safetensors"
    rc = main(["recalibrate", "--model", str(model), "--data", str(tiny_cohort), "--split", "all", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "not independent" in err and "trained on" in err, err
    assert not out.exists()


def test_a10_10_a_fit_keeps_its_training_patients_keys():
    """The keys of train + val (trainer.train._finish) reach the file; a fit is minutes, so the helper is checked."""
    from octviewer.model import Preprocess
    from trainer.config import Config
    from trainer.export import model_metadata

    cfg = Config(data="x.csv", out="o")
    meta = model_metadata("resnet2d", ["md"], Preprocess(size=32), cfg, name="n", scaling={"md": {"lo": -30, "hi": 2}},
                          calibration={}, aggregation={}, threshold=0.5, synthetic=True, splits={},
                          manifest_sha256="0" * 64, test_metrics={}, selection={}, patient_keys=["abc"])
    assert meta["provenance"]["data"]["patient_keys"] == ["abc"]


def test_a10_15_attach_refuses_the_recalibration_cohort():
    from trainer.evaluate_model import not_independent
    from trainer.pseudonym import cohort_keys

    meta = {"provenance": {"data": {"manifest_sha256": "T" * 64}, "split_seed": 0,
                           "recalibration": {"data": {"manifest_sha256": "X" * 64, "split": "all", "volumes": 200,
                                                      "patient_keys": cohort_keys(["R1", "R2"])}}}}
    for split in ("all", "test", "train"):
        assert "recalibrated on this manifest" in not_independent(meta, "X" * 64, split, 0)
    assert "recalibrated on" in not_independent(meta, "Y" * 64, "all", 0, ["R2", "Z9"])  # a re-saved copy
    # recalibrate itself may refit on the cohort again: it replaces that calibration, no figure is claimed
    assert not_independent(meta, "X" * 64, "all", 0, ["R1"], recalibration=False) == ""
    assert not_independent(meta, "Y" * 64, "all", 0, ["Z9"]) == ""


def test_a10_4_an_unsigned_start_still_warns_two_and_three_retrains_on():
    from types import SimpleNamespace as NS

    from octviewer.gui.model.card import start_warning
    from trainer.train import start_record

    def model(name, digest, trusted, prov=None):
        sig = "signed by this workstation (trusted key)" if trusted else "unsigned"
        return NS(name=name, digest=digest * 32, trust=NS(text=lambda: sig, trusted=trusted), meta=NS(provenance=prov))

    prov = {"selection": {"fine_tuned_from": start_record(model("downloaded", "aa", False), "/x/A.safetensors")}}
    for name in ("B", "C", "D"):  # each Retrain starts from the last one, signed here
        prov = {"selection": {"fine_tuned_from": start_record(model(name, "bb", True, prov), f"/x/{name}.safetensors")}}
        warning = start_warning(prov)
        assert "unsigned" in warning and "sha256:aaaaaaaaaaaaaaaa" in warning, warning
    assert "untrusted_origin" not in prov["selection"]["fine_tuned_from"]["untrusted_origin"]  # flat, not a chain
    trusted = {"selection": {"fine_tuned_from": start_record(model("B", "bb", True, {}), "/x/B.safetensors")}}
    assert start_warning(trusted) == ""


@pytest.mark.parametrize("visits", [("V2", "v2"), ("2", "V2"), ("v02", "2")])
def test_a10_11_one_visit_written_two_ways_labelled_both_is_warned_of(visits, tmp_path):
    from trainer.manifest import label_conflicts, read_manifest

    for name in ("a.npy", "b.npy"):
        (tmp_path / name).write_bytes(name.encode())  # two files (the same bytes are one volume)
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,patient_id,eye,visit,label\na.npy,P1,OD,{visits[0]},glaucoma\n"
                        f"b.npy,P1,OD,{visits[1]},normal\n")
    records, _ = read_manifest(manifest, skip_bad=True)
    assert len(records) == 2
    assert "labelled both glaucoma and normal" in " ".join(label_conflicts(records))


@pytest.mark.parametrize("value", ["1" + "0" * 400, "7", "-1", "0"])
def test_a10_20_a_regime_fraction_out_of_range_is_warned_of(value, tmp_path, capsys):
    from trainer.label_scarce import _regime_fraction

    regime = tmp_path / "labels050"
    regime.mkdir()
    (regime / "regime.json").write_text(f'{{"label_fraction": {value}}}')
    assert _regime_fraction(regime) == 0.5  # from the folder's name
    err = capsys.readouterr().err
    assert "regime.json" in err and "folder's name" in err and "Traceback" not in err, err
    (regime / "regime.json").write_text('{"label_fraction": 0.25}')
    assert _regime_fraction(regime) == 0.25
