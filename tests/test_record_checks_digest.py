"""The study's header cache keeps each header's hashed traits under ``RECORD_CHECKS``: a change of the traits without
raising it left old cache rows compared by the old rule with new ones (attack run 24, A24-3). This digest of a fixed
set of names' traits changes with any change of the traits; a new digest must come with a new ``RECORD_CHECKS``."""

import hashlib
import json

from octviewer.core.person import Patient, hashed_traits
from octviewer.study.headers import RECORD_CHECKS

NAMES = [
    'DOE^JOHN',
    'JOHN DOE',
    'DOE, JOHN A',
    'MÜLLER^JÖRG',
    "O'BRIEN^SEAN",
    'DE LA CRUZ^MARIA JOSE',
    'GARCIA^MARIA^JOSE',
    'NGUYEN VAN^AN',
    'KIM^MINSU=김^민수',
    '김민수',
    'KIM=김^민수',
    '山田^太郎=やまだ^たろう',
    'ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう',
    'YAMADA=山田^太郎',
    'WANG=王伟',
    'SATO=さとう',
    '山田',
    '山田^勇気',
    'ИВАНОВ^ИВАН ПЕТРОВИЧ',
    'ИВАНОВ^И.^П.',
    'МАРИЯ ПЕТРОВА',
    'МАМЕДОВ^РАШАД ТОФИК ОГЛЫ',
    'ΠΑΠΑΔΟΠΟΥΛΟΥ^ΜΑΡΙΑ ΕΛΕΝΗ',
    'العلي^عبد الله',
    'خان^عائشہ',
    'כהן^דוד^משה',
    'COHEN^D=כהן^דוד',
    "\ufffd\ufffd^\ufffd",
    'ANONYMOUS',
    '',
    # from 35 on (digests before were of the names above alone)
    'SMITH^TWIN I',
    'SMITH^BABY 2',
    'ИВАНОВА АННА С.',
    'ИВАНОВА^А.С.',
    'SØRENSEN^ÅSE',
    '患者^不明',
    'ИBAНОВА^АННА',
    '齋藤^眞一',
    'GARCIA J.M.',
    'GARCIA LOPEZ^MARIA',
]

#: RECORD_CHECKS -> the digest of NAMES' hashed traits under it (add a line when the traits change)
DIGESTS = {32: "8fe913063c9b", 33: "e0ebf3d2061e", 34: "8e1eddc79c19", 35: "40a32c109fd7"}


def traits_digest() -> str:
    traits = [hashed_traits(Patient("P1", "HOSP", name, "19600101")) for name in NAMES]
    return hashlib.sha256(json.dumps(traits, sort_keys=True).encode()).hexdigest()[:12]


def test_the_traits_change_only_with_record_checks():
    digest = traits_digest()
    assert DIGESTS.get(RECORD_CHECKS) == digest, (
        f"the hashed traits changed (digest {digest}): raise RECORD_CHECKS in octviewer/study/headers.py and add "
        f"{{{RECORD_CHECKS + 1}: '{digest}'}} to DIGESTS" if digest not in DIGESTS.values() else
        f"RECORD_CHECKS {RECORD_CHECKS} has no digest recorded: add {{{RECORD_CHECKS}: '{digest}'}} to DIGESTS")
