"""Who a scan or an archive's study belongs to: a PatientID, and what tells two people under one ID apart.

A PatientID is unique only within its issuer: a regional or merged archive, or a study folder filled from one,
holds several hospitals' ID ranges. PACS retrieves and screens (``pacs.net``), the study index (scans and measured
fields) and the trainer compare people by this one rule (attack run 14, A14-19), in two tiers (attack run 16,
A16-1, A16-2):

- another issuer of the ID or another birth date (where both give one, at the precision both give), or, where no
  full birth date ties the two, a name sharing no word that tells people apart with the other after ``fold_name``
  (ALPHA^ANN / ZULU^ZED: no spelling, typo or marriage changes every word), is another person (``other_person``):
  refused where a person is refused (a PACS instance or study, a measured field); the name case was kept as "one
  name written two ways" where one side alone gave an issuer or birth date (attack run 16, A16-14);
- a name that differs otherwise after the fold (one of its parts, or a free-text name's words) is "another person,
  or one name written two ways" (``other_name``): kept and said, since two devices write one patient's name
  differently (O'BRIEN / OBRIEN, MÜLLER / MUELLER, DOE^JOHN / JOHN DOE, YAMADA^TARO=山田^太郎 / 山田^太郎).

The traits are canonical strings, so the study's header cache keeps them as digests (``hashed_traits``) compared
by equality. Nothing here is logged or printed. tests/test_person_table.py holds the name pairs clinics meet with
the verdict each should get: a change to the rule is judged there first (attack run 18).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

#: Traits compared as sets of words (hashed word by word), besides the word sets per script.
SETS = ("allwords", "longwords", "letterwords", "initials", "script_initials", "joined", "abbrevs", "script_forms",
        "script_bare", "script_abbrev")
#: Which traits say another person, and which only another spelling of a name (``differing``'s words).
#: A birth date is compared at the precision both give (a year-only export against a full date: ``birth_traits``).
PERSON_TRAITS = {"issuer": "issuer of the ID", "issuer_uid": "issuer of the ID", "birth": "birth date",
                 "birth_month": "birth date", "birth_year": "birth date"}
NAME_TRAITS = ("family", "given", "givens", "given_plain", "given2", "initial", "initial2", "number", "marker",
               "suffix", "script_given", "initials", "words", "allwords", "longwords",
               "letterwords", "joined", "free", "script", "script_kind", "script_initial",
               "wordset", "garbled")  # + a word set per script
#: Words that do not tell people apart, left out of the words ``whole_name_differs`` compares with one-letter
#: initials: name particles (VAN DAM^PIETER / VAN HOUTEN^ANNA, DE SOUZA / DE LA CRUZ) and the Vietnamese middle
#: names most women or men carry (NGUYEN^THI MAI); a family name's words joined (VANDAM) still count (A18-3).
PARTICLES = frozenset("VAN VON DER DEN TER TEN DE DEL DELLA DELLE DEI DI DA DAS DOS DO DU DES LA LE LO LOS LAS "
                      "AL EL BIN BINT BEN IBN ABU ZU THI".split())
#: Titles and suffixes a free-text name carries ("DR JOHN DOE"): not the name's words (A18-10); DICOM's prefix
#: component is not read, its suffix component only as ``suffix`` (father and son).
SUFFIXES = frozenset("JR SR II III IV".split())
#: What devices, anonymisers and emergency registrations write where the name is not known (with words of one
#: repeated letter, XXX): no name, as an empty one, not "a whole other name" (A19-7); in the languages of the
#: clinics' devices too (UNBEKANNT, INCONNU, DESCONOCIDO: A22-7).
PLACEHOLDER_NAMES = frozenset("ANONYMOUS ANONYMIZED ANONYMISED ANON UNKNOWN PATIENT NONE NAME NONAME NN NA TEST "
                              "UNBEKANNT INCONNU INCONNUE DESCONOCIDO DESCONOCIDA SCONOSCIUTO SCONOSCIUTA ONBEKEND "
                              "OKAND UKJENT UKENDT NIEZNANY NIEZNANA NEZNAMY DESCONHECIDO НЕИЗВЕСТНО НЕИЗВЕСТНЫЙ "
                              "НЕИЗВЕСТНАЯ ΑΓΝΩΣΤΟΣ ΑΓΝΩΣΤΗ 不明 未知 無名 氏名不詳 无名氏 無名氏 无名 "
                              "مجهول مجهولة פלוני אלמוני אלמונית 무명 미상 ПАЦИЕНТ ПАЦИЕНТКА ЖЕНЩИНА МУЖЧИНА "
                              "НЕВІДОМИЙ НЕВІДОМА ПАЦІЄНТ ΑΣΘΕΝΗΣ 名無し 名無 "  # A28-12: these scripts' too
                              "患者 病人 身元不明 患者不明 氏名不明 不明者 姓名不详 姓名不詳 不详 不詳 환자 "
                              "무명씨 "  # A30-9: 患者^不明, 身元不明; A31-9:
                              "MALE FEMALE UNIDENTIFIED OKÄND NEZNÁMÁ NEZNÁMÝ ANÓNIMO ANÓNIMA ANONYME PAZIENTE "
                              "PACJENT PACJENTKA ΓΥΝΑΙΚΑ ΑΝΔΡΑΣ 신원미상 무명남 무명녀 未知患者 ไม่ทราบชื่อ अज्ञात "
                              "BİLİNMEYEN".split())
#: The Vietnamese middle names that tell a man (VAN) from a woman (THI) where both are written (A22-6).
MARKERS = frozenset({"VAN", "THI"})
#: Titles, English and as other languages' registrations write them (DR. MED., SRA., HR., DHR., MEVR., PANI: A31-12).
TITLES = frozenset("DR MR MRS MS MISS PROF SIR MME MLLE HERR FRAU MED DRA SRA SRTA HR FR DHR MEVR PANI"
                   .split()) | SUFFIXES
#: Letters NFKD does not take apart; Ä, Ö, Ü lose their marks there, and AE, OE, UE fold with them below.
#: Persian and Arabic keyboards write YEH and KAF as other code points (ی / ي, ک / ك, ى): one letter (A18-11).
#: Ð (a Latin-1 device's Đ), Ħ, Ŋ and the Arabic TEH MARBUTA / HEH written either way at a name's end (A19-10).
_LETTERS = str.maketrans({"ß": "SS", "ẞ": "SS", "Ø": "O", "Æ": "AE", "Œ": "OE", "Ł": "L", "Đ": "D", "Þ": "TH",
                          "Ð": "D", "Ħ": "H", "Ŋ": "N", "ی": "ي", "ى": "ي", "ک": "ك", "ة": "ه", "ـ": "",
                          "ہ": "ه", "ۃ": "ه"})  # Urdu's HEH GOAL and TEH MARBUTA GOAL (A27-6)
#: Han characters one person's name is written with in two forms: Japanese old and new forms (眞一 / 真一, 齋藤 /
#: 斎藤) and traditional and simplified Chinese (張偉 / 张伟), folded to one (attack run 30, A30-13). Names only:
#: the characters common in family and given names.
_HAN_VARIANTS = str.maketrans({pair[0]: pair[1] for pair in (
    "髙高 齋斎 齊斉 邊辺 邉辺 澤沢 濱浜 嶋島 嶌島 﨑崎 嵜崎 國国 廣広 櫻桜 德徳 惠恵 榮栄 龍龙 竜龙 藏蔵 "
    "與与 眞真 彌弥 壽寿 實実 淺浅 學学 會会 團団 圓円 佛仏 黑黒 條条 龜亀 萬万 來来 滿満 禮礼 豐豊 鐵鉄 "
    "繪絵 靜静 聰聡 曉暁 瀧滝 增増 壯壮 將将 晉晋 爲為 冨富 寬寛 莊荘 峯峰 嶽岳 栁柳 張张 陳陈 劉刘 黃黄 "
    "吳吴 趙赵 楊杨 孫孙 馬马 許许 鄭郑 謝谢 韓韩 馮冯 鄧邓 蕭萧 蔣蒋 蘇苏 盧卢 呂吕 賈贾 鍾钟 龔龚 "
    "譚谭 歐欧 陸陆 顧顾 錢钱 湯汤 羅罗 偉伟 華华 麗丽 紅红 軍军 東东 強强 濤涛 鵬鹏 飛飞 輝辉 順顺 "
    "興兴 寧宁 鳳凤 嬌娇 潔洁 瑩莹 儀仪 賢贤 鋒锋 銘铭 園园 義义 誠诚 愛爱 貴贵 龐庞 "
    "鄒邹 凱凯 關関 关関 雲云 长長 泽沢 荣栄 庄荘 晓暁 聪聡 齐斉 陽阳 運运 進进 勝胜 亞亚 寶宝 貞贞 禎祯 "
    "瑋玮 鴻鸿 燁烨 韋韦 維维 穎颖 嫻娴 蓮莲 豔艳 艷艳 銀银 錦锦 鋼钢 書书 詩诗 語语 綠绿 藍蓝 業业 發发 "
    "財财 广広 鄉乡 麥麦 閻阎 魯鲁 倫伦 軒轩 滨浜 嵐岚 駿骏 騰腾 驍骁 鳴鸣 瓊琼 環环 儂侬 鐘钟 铁鉄 範范 "
    "鄔邬 閔闵 聶聂 嚴严 蘭兰 邁迈 顏颜 嶺岭 巖岩"
).split()})
#: Danish and Norwegian Ø and Å as their transliteration too (SØRENSEN^ÅSE / SOERENSEN^AASE: attack run 30, A30-11).
_UMLAUTS = str.maketrans({"Ä": "AE", "Ö": "OE", "Ü": "UE", "Ø": "OE", "Å": "AA"})
#: Inside a word: O'BRIEN, D’ARCY, SMITH-JONES are written with and without them.
_JOINERS = re.compile(r"['’‘`´\u02bc\u02bb\u02bf·\-‐‑–]")
#: Scripts whose combining marks are accents a device may drop (MÜLLER, Ελένη, the Arabic and Hebrew vowel
#: points); elsewhere a mark makes another letter (ケイコ / ケイゴ, KEIKO / KEIGO; अमित / अमिता) and is kept.
_ACCENTED = frozenset({"LATIN", "GREEK", "CYRILLIC", "ARABIC", "HEBREW"})


@dataclass(frozen=True)
class Patient:
    """Who a retrieve or a screen is for: the PatientID, and what tells two people under one ID apart (the
    issuer of the ID, the name, the birth date; "" where the archive or the header gives none). Never logged
    or printed (``repr`` shows nothing)."""

    patient_id: str = field(repr=False)
    issuer: str = field(default="", repr=False)
    name: str = field(default="", repr=False)
    birth_date: str = field(default="", repr=False)

    @classmethod
    def of(cls, ds: Dataset) -> Patient | None:
        """The patient an instance's (or a C-FIND answer's) header names; None when a field holds several values
        (no one person: the readers' rule, ``core.text.patient_id_problem``)."""
        values = [ds.get(k, "") for k in ("PatientID", "IssuerOfPatientID", "PatientName", "PatientBirthDate")]
        if any(isinstance(v, MultiValue) for v in values):
            return None
        return cls(*(str(v or "") for v in values))

    def others(self, other: Patient | None) -> bool:
        """``other`` is another person: another PatientID, or under the same ID another issuer or birth date
        where both give one (``other_person``). A PatientID is unique only within its issuer: a regional or
        merged archive holds several hospitals' ID ranges, and ``screen --patient-id P`` screened another
        person's study filed under P (attack run 14, A14-19). A name alone is not another person here
        (``other_name``: said, not refused; attack run 16, A16-1)."""
        if other is None or other.patient_id.strip() != self.patient_id.strip():
            return True
        return other_person(self.traits(), other.traits())

    def other_name(self, other: Patient | None) -> bool:
        """``other`` writes the name otherwise, after ``fold_name`` (another person, or one name written two
        ways)."""
        return other is not None and other_name(self.traits(), other.traits())

    def merged(self, other: Patient) -> Patient:
        """The same person (``not self.others(other)``) with what either of them says."""
        # a value that tells nothing (a name an archive could not encode, answered as "^" or "???^??"; a placeholder
        # birth date) gives way to the other's: "^" kept, the instances' own names were never compared (A18-7)
        return Patient(self.patient_id, self.issuer.strip() or other.issuer,
                       self.name if name_traits(self.name) else other.name,
                       self.birth_date if birth_traits(self.birth_date) else other.birth_date)

    def traits(self) -> dict[str, str]:
        """What tells this person apart under their ID, where given, as canonical strings: the issuer of the ID
        (upper case), the birth date (``birth_traits``; a placeholder for "unknown" is none), and the name's traits
        (``name_traits``)."""
        known = {**issuer_traits(self.issuer), **birth_traits(self.birth_date), **name_traits(self.name)}
        return {k: v for k, v in known.items() if v}


@functools.lru_cache(maxsize=1 << 16)  # a name's traits fold its parts ~16 times; an index holds many alike
def fold_name(text: str) -> str:
    """``text`` as devices and exports agree on it: upper case, letters without their marks (NFKD; ß as SS),
    the German umlauts and Ø, Å as their transliteration (MÜLLER as MUELLER: ``_UMLAUTS``), apostrophes and
    hyphens inside a word dropped (O'BRIEN as OBRIEN, SMITH-JONES as SMITHJONES). Words are kept apart by spaces;
    anything else but letters separates words. AE, OE and UE are not folded to A, O, U: XUE and XU, CHAE and CHA,
    DOE and DO are other names (attack run 19, A19-1); a device that drops the marks (MULLER) shares a word with
    MUELLER through ``_wordset``'s variants only."""
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFC", text).upper().translate(_UMLAUTS)
                                 .translate(_LETTERS))
    kept, base = [], "LATIN"
    for c in text:  # marks dropped where they are accents, kept where they make another letter (A19-13)
        if not unicodedata.combining(c):
            base = unicodedata.name(c, "OTHER").split()[0]
        elif base in _ACCENTED:
            continue
        kept.append(c)
    text = unicodedata.normalize("NFC", "".join(kept)).upper().translate(_LETTERS).translate(_HAN_VARIANTS)
    # katakana as hiragana (NFKD made half-width katakana full-width already): one syllabary to a Japanese reader,
    # やまだ = ヤマダ = ﾔﾏﾀﾞ (A19-9)
    text = "".join(chr(ord(c) - 0x60) if "\u30a1" <= c <= "\u30f6" else c for c in text)
    text = _JOINERS.sub("", text)  # words: letters and the marks that belong to them (Devanagari's vowel signs)
    return " ".join("".join(c if c.isalpha() or unicodedata.category(c)[0] == "M" else " " for c in text).split())


#: ``PLACEHOLDER_NAMES`` as the fold writes them (НЕИЗВЕСТНЫЙ folds to НЕИЗВЕСТНЫИ and was a name: A23-10)
_FOLDED_PLACEHOLDERS = frozenset(map(fold_name, PLACEHOLDER_NAMES)) | PLACEHOLDER_NAMES


def _placeholder(words: list[str]) -> bool:
    """Whether a name's folded words are what is written where the name is not known: placeholder words, ASCII
    words of one repeated letter (XXX), or one ASCII letter alone or repeated as every word (X, X^X, UNKNOWN^X:
    A21-3). Initials that differ (J^D) stay a name, and so does a one-character Chinese name (张^伟: A20-2)."""
    rest = [w for w in words if w not in _FOLDED_PLACEHOLDERS and not (w.isascii() and len(w) > 1 and len(set(w)) == 1)]
    if "".join(words) == "NONAME":  # NO NAME, NO^NAME (A22-7); not NA^ME or NO^NE, which may be names (A23-8)
        return True
    return not rest or len(set(rest)) == 1 and rest[0].isascii() and len(rest[0]) == 1


#: Latin-1's symbols (not its letters, nor ´ and ·, which names use as apostrophes): legacy double-byte text
_LATIN1_SYMBOLS = frozenset(chr(c) for c in range(0xA1, 0xC0)) - {"\u00b4", "\u00b7", "ª", "º"}  # Mª, Fº (A31-13)
#: Spanish abbreviations of given names written with the ordinal indicators: Mª JOSE is MARIA JOSE (A31-13).
_ORDINAL_NAMES = ((re.compile(r"\bM[ªº]", re.IGNORECASE), "MARIA "),
                  (re.compile(r"\bF[ºª]", re.IGNORECASE), "FRANCISCO "))


def name_traits(name: str) -> dict[str, str]:
    """A DICOM PatientName's traits, folded (``fold_name``). Of the group written in Latin letters: the family
    name as its words joined (DE LA CRUZ as DELACRUZ), the first and second given names, and ``words``, family and
    first given name in alphabetical order; a name without ``^`` ("JOHN DOE", "DOE, JOHN") gives its first two
    words as ``words`` (its order is not known), one word as the family name; ``wordset``, the words that tell
    people apart (``_wordset``). Of the groups in another script (the ideographic or phonetic group after "=", or
    a name written in it alone): ``script``, the first one's family and given name's letters in order (山田^太郎,
    山田太郎 and 山田　太郎 alike: these scripts are written without spaces) with its ``script_kind``, and per
    script (``_script_of``: Han, kana, Hangul, Cyrillic, ...) a word set ``<script>set``, every such group's words
    and letters joined: names are compared within a script only (kanji 山田^太郎 and kana やまだ^たろう share no
    script, so they tell nothing: A18-1). A name that could not be decoded (U+FFFD, an escape sequence left) gives
    ``garbled`` only: it can be compared with nothing (A18-6). Compared by ``other_name`` and
    ``whole_name_differs``."""
    for pattern, written in _ORDINAL_NAMES:
        name = pattern.sub(written, name)
    name = "=".join(_without_father(_comma_form(_one_script(group))) for group in repaired(name).split("="))
    # U+FFFD, an escape sequence left, or C1 control characters (Shift_JIS or GBK bytes read as Latin-1, which the
    # fold then took to a few letters: 山田^太郎 = 池田^次郎, A19-5) cannot be compared; nor Latin-1's symbols, which
    # no name holds (EUC-KR bytes read as Latin-1: 김^민수 as ±è^¹Î¼ö was another person's name, A24-5)
    if "\ufffd" in name or "\x1b" in name or any("\x80" <= c <= "\x9f" or c in _LATIN1_SYMBOLS for c in name):
        return {"garbled": name}  # two names not decoded alike are one name, two that differ two (A31-1)
    if _placeholder(fold_name(name).split()):
        return {}  # ANONYMOUS, UNKNOWN^UNKNOWN, XXX^XXX, X^X: no name, as an empty one (A19-7, A21-3)
    latin, scripts = [], []
    for group in name.split("="):
        if fold_name(group):
            (latin if re.search("[A-Z]", fold_name(group)) else scripts).append(group)
    out = _latin_traits(latin[0]) if latin else {}
    if latin:
        out["wordset"] = " ".join(sorted(_wordset(latin[0]) | _wordset(_cp1250(latin[0]))))
    if scripts:
        out["script"], words, forms, bare, abbrev = _script_name(scripts[0])
        out["script_kind"] = _script_of(out["script"])
        out["script_forms"] = " ".join(sorted(forms))
        out["script_bare"], out["script_abbrev"] = " ".join(sorted(bare - forms)), " ".join(sorted(abbrev - forms))
        if digits := re.findall(r"\d+", "".join(scripts)):
            out.setdefault("number", " ".join(digits))  # ПЕТРОВА^БЛИЗНЕЦ 1 / 2, 山田^ベビー1 (attack run 28, A28-11)
        given = "".join(_without_initials(words))
        if not _writes_a_given_name(scripts[0]):
            out["script_alone"] = "1"  # the family name alone (ИВАНОВА, 山田, 山田^): agrees with the full name (A27-8)
        if "^" in scripts[0]:
            # an initial (ИВАНОВ^И.) is compared as the initial of the other's given name, as Latin initials are
            out["script_initial"] = words[0][:1] if words else ""
            out["script_given"] = given if len(given) > 1 or out["script_kind"] in _UNSPACED else ""
        # the given name's Latin initials by any group with a reading (kanji's kana, A22-4), also where the Latin
        # group gives no given name (KIM=김^민수: A24-1's rare form)
        givens = [_given_candidates(g) for g in scripts]
        initials = " ".join(sorted({x for words in givens for w in words for x in _readings(w).split()}))
        if not latin:
            out["initials"] = initials
        elif "given" not in out and any(_writes_a_given_name(g) for g in scripts):
            # the Latin group the family name alone or an initial (KIM=김^민수, YAMADA=山田^太郎, COHEN^D=כהן^דוד):
            # the given name is in the other script only (A24-1's rare form, A25-1)
            out["script_given_only"], out["script_initials"] = "1", initials
        elif "given" not in out and any(_may_write_a_given_name(g) for g in scripts):
            # WANG=王伟, SATO=さとう: a given name or the family name alone, which letters the family name has is not
            # known: not compared by initials (さ|とう said SATO^HANAKO's one person, A27-4), said by the
            # 'scripts' check (WANG=王伟 / WANG^NA passed, A27-3)
            out["script_given_only"] = "1"
        for group in scripts:  # each script's given name, compared within its script (A24-1)
            parts = (group.split("^") + ["", ""])[:3] if "^" in group else [group]
            words = [w for p in parts for w in fold_name(p).split()]
            # after the given name; in free text, after the first word, whichever order it is written in ("АННА
            # ПЕТРОВНА ИВАНОВА" / "ИВАНОВА АННА СЕРГЕЕВНА" are two women: attack run 29's fix)
            keep = len(fold_name(parts[0]).split()) + 1 if "^" in group else 1
            if patronymic := "".join(_patronymic(words, keep)[1]):
                out.setdefault(f"patronymic_in_{_script_of(patronymic).lower()}", patronymic)
            raw = _script_name(group)[1] if "^" in group else []
            spaced = _script_of(raw[0]).lower() if raw and _script_of(raw[0]) not in _UNSPACED else ""
            if (pi := _after_given(words, raw, patronymic, "^" in group)) and _script_of(pi) not in _UNSPACED:
                out.setdefault(f"pi_in_{_script_of(pi).lower()}", pi)
            if spaced and f"i1_in_{spaced}" not in out:
                # the given words to the fourth and their initials, each by its place (``_script_givens_differ``):
                # dropped, an initial shifted the second name into the first place, and twins ΜΑΡΙΑ ΕΛΕΝΗ / ΜΑΡΙΑ Α.,
                # Μ. ΕΛΕΝΗ / Α. ΕΛΕΝΗ, БЛИЗНЕЦ А / Б agreed (A28-6, A28-11); the fourth holds a father's name after
                # بن / בן (A29-7); a patronymic left out gives its initial in the second place, as Фамилия И.О. writes
                # it (ИВАНОВА^АННА С. / ИВАНОВА^АННА ПЕТРОВНА: A29-2)
                by_place = [w[:1] for w in raw] + ([patronymic[:1]] if len(raw) == 1 and patronymic else [])
                for n, (word, initial) in enumerate(zip(raw + [""], by_place[:4]), start=1):
                    out[f"i{n}_in_{spaced}"] = initial
                    out[f"given{n}_in_{spaced}"] = word if len(word) > 1 else ""
            words = _without_initials(raw)
            given, script = "".join(words), _script_of("".join(words))
            if len(given) > 1 or given and script in _UNSPACED:
                out.setdefault(f"given_in_{script.lower()}", given)
        for word in set().union(*(_wordset(g, joined=True) for g in scripts)):
            key = f"{_script_of(word).lower()}set"
            out[key] = " ".join(sorted({*out.get(key, "").split(), word}))
    if _NEWBORN & set(fold_name(name.replace("=", " ").replace("^", " ")).split()):
        out["newborn"] = "1"  # a number or letter on one side only tells twins apart there (``_labels_apart``)
    return {k: v for k, v in out.items() if v}


#: Scripts one person's name is written in by two devices: any with Latin letters (``wordset``), and Han with
#: its readings in kana or hangul; a Han and a Cyrillic name share no word because they are two names (A17-2).
TRANSCRIBED = frozenset({"cjkset", "kanaset", "hangulset"})


def _script_of(word: str) -> str:
    """The script a folded word is written in, by its first letter's Unicode name (CJK, KANA, HANGUL, CYRILLIC,
    GREEK, ARABIC, ...): hiragana and katakana are one."""
    first = unicodedata.name(word[0], "OTHER").split()[0] if word else "OTHER"
    return "KANA" if first in ("HIRAGANA", "KATAKANA") else first


def _word_sets(traits: dict[str, str]) -> set[str]:
    """The word-set keys of ``traits`` (``wordset`` for Latin letters, ``<script>set`` for the others)."""
    return {k for k in traits if k.endswith("set")}


def _wordset(group: str, joined: bool = False) -> set[str]:
    """The words of a name's family and given components that tell people apart, whichever component they were
    entered in (NGUYEN^VAN AN and NGUYEN VAN^AN, DOE^JOHN and JOHN^DOE share theirs: A17-1), or a free-text
    name's words; not one-letter initials or ``PARTICLES`` (SMITH^JOHN A and ZULU^ZED A shared "A": A18-3). The
    family name's words joined (DE LA CRUZ as DELACRUZ) count too, and with ``joined`` (a script written without
    spaces) all the letters joined: 山田^太郎 and 山田太郎 share 山田太郎 (A18-4)."""
    parts = group.split("^")[:2] if "^" in group else [group]
    folded = [fold_name(part).split() for part in parts]
    # ÅSE (folded AASE) also as ASE, as a device that drops the marks writes it; not every AA as A: AARON and ARON
    # are two names (A30-11)
    plain = [fold_name(_plain_umlauts(part)).split() for part in parts]
    words = {w for part in folded + plain for w in part if len(w) > 1 and w not in PARTICLES | TITLES}
    # MUELLER also as MULLER, a device's MÜLLER with its marks dropped (``fold_name``): they share a word
    words |= {re.sub("([AOU])E", r"\1", w) for w in words}
    if "^" in group and folded[0]:
        words.add("".join(folded[0]))
    if joined and any(folded):
        words.add("".join(w for part in folded for w in part))
        # a Han name's characters one by one: one device writes the variant form of one of them (齋藤 / 斎藤,
        # 髙橋 / 高橋: A19-4), and the other characters still tie the two
        words |= {c for part in folded for w in part for c in w if _script_of(c) == "CJK"}
    return words


#: Latin letters that look like Cyrillic or Greek ones, as a typist switching keyboards mid-name writes them.
_LOOK_ALIKES = {"CYRILLIC": dict(zip("ABCEHIKMOPTXYaceopxy", "АВСЕНІКМОРТХУасеорху")),
                "GREEK": dict(zip("ABEZHIKMNOPTYX", "ΑΒΕΖΗΙΚΜΝΟΡΤΥΧ"))}


def _one_script(group: str) -> str:
    """A name group that mixes Latin letters with Cyrillic or Greek ones, each of one side a look-alike of the
    other's, in the other's script: ИBAНОВА (Latin B and A) and ΠΑΠΑ^MAPIA were another script's name beside
    ИВАНОВА, ΠΑΠΑ^ΜΑΡΙΑ (a 'people' or 'scripts' check on one person: attack run 30, A30-8). A group with letters
    of both that are not look-alikes is left as written."""
    latin = {c for c in group if "LATIN" in unicodedata.name(c, "")}
    for script, alike in _LOOK_ALIKES.items():
        other = {c for c in group if script in unicodedata.name(c, "")}
        if not latin or not other:
            continue
        back = {v: k for k, v in alike.items()}
        if latin <= alike.keys() and not other <= back.keys():
            return group.translate(str.maketrans(alike))
        if other <= back.keys() and not latin <= alike.keys():
            return group.translate(str.maketrans(back))
    return group


#: Words that put the father's name after them (MOHAMMED BIN ALI AL-ALI, محمد بن علي العلي, משה בן דוד כהן).
_SON_OF = frozenset({"BIN", "IBN", "BINT", "BINTI", "بن", "ابن", "بنت", "בן", "בת"})


def _without_father(group: str) -> str:
    """A free-text name without the father's name after BIN / بن / בן inside it (given name, BIN, father, family name),
    as the other device, which writes AL-ALI^MOHAMMED, leaves it out: it was said (attack run 31, A31-32). Not a
    name that starts with it (בן דוד is a family name) nor one of three words (MOHAMMED BIN ALI: no family name)."""
    words = group.split()
    if "^" in group or len(words) < 4:
        return group
    for k, word in enumerate(words[1:-2], start=1):
        if fold_name(word) in _SON_OF or word in _SON_OF:
            return " ".join(words[:k] + words[k + 2:])
    return group


def _comma_form(group: str) -> str:
    """"FAMILY, GIVEN" as the components it writes (FAMILY^GIVEN): its order is known, and SMITH, JOHN ALBERT was
    compared as free text, its words in an unknown order, and said against JOHN ALBERT SMITH (attack run 31,
    A31-11)."""
    family, comma, given = group.partition(",")
    if not comma or "^" in group or "," in given or not family.strip() or not given.strip():
        return group
    return f"{family.strip()}^{given.strip()}"


def repaired(text: str) -> str:
    """``text`` as its writer meant it where a header mis-declares its characters: UTF-8 bytes decoded as Latin-1
    (a header that writes UTF-8 without declaring its character set: MÜLLER^JÜRGEN read as "MÃ\x9cLLER^JÃ\x9cRGEN",
    folded to MALLER^JA, another person's name; attack run 17, A17-5), or ISO 2022 text (JIS, KS X 1001) whose
    escape sequences were read as ASCII because the set was not declared, decoded component by component as
    DICOM resets the set at "^" and "=" (A18-6), or Windows-1251 Cyrillic read as Latin-1 (АБРАМОВ as "ÀÁÐÀÌÎÂ":
    the fold took 4 to 6 Cyrillic letters to one Latin letter and made two women one name; a Latin-1 name has
    ASCII letters beside its accented ones: A19-5); else ``text``."""
    if "\x1b" in text:
        pieces = re.split(r"([\^=])", text)
        for codec in ("iso2022_jp_2", "iso2022_kr"):
            try:
                return "".join(p.encode("latin-1").decode(codec) for p in pieces)
            except (UnicodeEncodeError, UnicodeDecodeError):
                continue
        return text
    if not any("\x80" <= c <= "\xff" for c in text):
        return text
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        pass
    letters = [c for c in text if c.isalpha()]  # Windows-1251 puts Є, Ї, І, Ў, Ґ in 0xA1-0xBF (A20-3)
    if any(c >= "\xc0" for c in letters) and all("\xa0" <= c <= "\xff" for c in letters):
        try:  # a typographic apostrophe or a dash beside them is not Latin-1 (A22-14)
            return text.encode("latin-1").decode("cp1251")
        except (UnicodeEncodeError, UnicodeDecodeError):
            pass
    return text


def _cp1250(text: str) -> str:
    """``text`` read again as Windows-1250 where it holds Latin-1 letters, "" otherwise: a Czech or Polish
    device's undeclared DVOŘÁK arrives as DVOØÁK, which shares no word with DVOŘÁK and made the patient's own
    fields another person's (A22-12). Only the word set takes it (a word shared makes a name said, not one):
    Latin-1 and Windows-1250 cannot be told apart from the bytes alone."""
    if not any("\xa0" <= c <= "\xff" for c in text):
        return ""
    try:
        return text.encode("latin-1").decode("cp1250")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return ""


def _latin_traits(group: str) -> dict[str, str]:
    """A name group's family name, first given name (``given``), all its given names joined (``givens``: JEAN-PIERRE
    and JEAN PIERRE agree, A19-3), the second given name (``given2``: twins GARCIA^MARIA JOSE / GARCIA^MARIA ISABEL,
    A17-3; a free-text name's third word: "GARCIA MARIA JOSE", A19-2) and its initial (``initial2``: newborn twins
    SMITH^TWIN A / SMITH^TWIN B, A22-11), the first given name's initial, the numbers in the name (BABY BOY 1 / 2),
    the Vietnamese middle name (``marker``: NGUYEN^VAN AN / NGUYEN^THI AN, A22-6), the suffix (father and son:
    DOE^JOHN^^^SR / ^^^JR, A18-2; or typed into the given component, DOE^JOHN JR), ``words`` (family and first given
    name, or a free-text name's first two words, in alphabetical order), ``allwords`` (every word but particles)
    and ``joined`` (the name's letters in the order written, family name first or last: one name written with its
    words joined or split, ``_joined``). DICOM's middle-name component is a given name
    (A22-2). A given name written as its initial (DOE^J, as devices that truncate write it) gives ``initial`` and no
    ``given`` (A18-10); initials and titles are not words of a free-text name."""
    if "^" not in group:
        folded = fold_name(group).split()
        words = [w for w in folded if w not in TITLES and len(w) > 1]
        # its order is not known ("JOHN ALBERT DOE", "GARCIA MARIA JOSE"): ``allwords``, compared as sets (A20-5)
        out = {"suffix": next((w for w in folded if w in SUFFIXES), ""), "free": "1" if words else "",
               "allwords": " ".join(sorted({w for w in folded if w not in TITLES and w not in PARTICLES})),
               # its order is not known: the last word first too (ASE SORENSEN / SØRENSEN ÅSE: A31-17)
               "joined": _joined(group, " ".join(group.split()[-1:] + group.split()[:-1])) + _whole(group),
               "number": _number(group, folded),
               "abbrevs": _abbreviated(group, " ".join(folded[-1:] + folded[:-1])),
               "marker": next((w for w in folded[1:-1] if w in MARKERS), ""),  # NGUYEN VAN AN (A22-6)
               # any word may be the given name: each one's initial (A23-12); a one-word name is a family name
               "initials": " ".join(sorted({w[0] for w in words})) if len(words) > 1 else "",
               # initials in the order written: GARCIA J.M. / GARCIA M.J. are JOSE MARIA and MARIA JOSE (A29-10)
               "letter_order": "".join(w for w in folded if len(w) == 1 and w not in TITLES)}
        out["letter_order"] = out["letter_order"] if len(out["letter_order"]) > 1 else ""
        out.update({"words": " ".join(sorted(words[:2]))} if len(words) >= 2 else {"family": "".join(words)})
        return _split_initials({k: v for k, v in out.items() if v})
    parts = [*group.split("^"), "", "", "", ""]
    family_part, given_part, suffix = parts[0], f"{parts[1]} {parts[2]}", parts[4]
    family = "".join(fold_name(family_part).split())
    given_words = fold_name(given_part).split()
    typed_suffix = next((w for w in given_words if w in SUFFIXES), "")
    givens = _givens(given_part)
    given, given2, given3 = (givens + ["", "", ""])[:3]
    out = {"family": family, "initial": given[:1], "initials": given[:1], "initial2": given2[:1],
           # the third: NGUYEN^HOANG MINH ANH / NGUYEN^HOANG MINH KHOA are twins (A31-2)
           "given3": given3 if len(given3) > 1 else "", "initial3": given3[:1],
           "given2": given2 if len(given2) > 1 else "", "number": _number(group, given_words),
           "marker": next((w for w in given_words if w in MARKERS and len(given_words) > 1), ""),  # ^AN^VAN (A23-13)
           "suffix": "".join(fold_name(suffix).split()) or typed_suffix,
           "allwords": " ".join(sorted({w for w in fold_name(family_part).split() + givens if w not in PARTICLES})),
           # a family name of several words alone too: "GARCIA LOPEZ" is it, as DOE is DOE^JOHN's (A28-2), but
           # not BEN GARCIA LOPEZ, whose BEN is dropped as a particle (``_whole``)
           "joined": _joined(f"{family_part} {given_part}", f"{given_part} {family_part}")
           + (_whole(family_part) if len(fold_name(family_part).split()) > 1 else ""),
           "abbrevs": _abbreviated(f"{family_part} {given_part}", f"{given_part} {family_part}")}
    first = next((w for w in fold_name(family_part).split() if w not in PARTICLES), "")
    if first and len(given) > 1:  # the components swapped, whatever follows the first words (``_swapped``)
        out.update(order=f"{first} {given}", swap=f"{given} {first}")
    if len(given) > 1:
        # JÜRGEN and a device's JURGEN (marks dropped) agree: the given name with the umlauts as plain vowels as
        # well; not every E after A, O or U dropped (YUE / YU, JOE / JO are two names: A22-1)
        plain = (_givens(_plain_umlauts(given_part)) or [""])[0]
        # MUELLER^JUERGEN / MULLER^JURGEN: a device that writes the umlauts as AE, OE, UE and one that drops their
        # marks (A22-19); compared only where the family names differ so (``_umlauts_apart``): SØRENSEN^JOE /
        # SØRENSEN^JO, BAUER^MICHAEL / BAUER^MICHAL are two people (A31-5)
        out.update(given=given, givens="".join(w for w in givens if len(w) > 1), given_plain=plain,
                   given_vowels=re.sub("([AOU])E", r"\1", plain), family_vowels=re.sub("([AOU])E", r"\1", family))
        if family:
            out["words"] = " ".join(sorted((family, given)))
    return _split_initials({k: v for k, v in out.items() if v})


def _split_initials(out: dict[str, str]) -> dict[str, str]:
    """``allwords`` as its words of two letters or more (``longwords``) and its initials (``letterwords``): a middle
    initial one device leaves out (DOE^JOHN^A / "DOE, JOHN") agrees, initials that differ (A GARCIA / M GARCIA)
    do not (A21-1). Kept apart because the header cache compares digests, which keep no length."""
    words = out.get("allwords", "").split()
    out.update({k: " ".join(w for w in words if keep(w)) for k, keep in
                (("longwords", lambda w: len(w) > 1), ("letterwords", lambda w: len(w) == 1))})
    return {k: v for k, v in out.items() if v}


#: Words registrations label newborns with (SMITH^TWIN A, DOE^BABY GIRL 2, ПЕТРОВА^БЛИЗНЕЦ Б, 山田^ベビー): beside
#: them a letter or number on one side only is the second twin's label, not an initial one device left out (A31-3).
_NEWBORN = frozenset(fold_name(w) for w in (
    "TWIN TWINS TRIPLET TRIPLETS QUADRUPLET BABY BABYBOY BABYGIRL BOY GIRL NEWBORN INFANT BEBE ZWILLING DRILLING "
    "NEUGEBORENES GEMELO GEMELA TRILLIZO JUMEAU JUMELLE TRIPLE ТРОЙНЯ БЛИЗНЕЦ БЛИЗНЕЦЫ БЛИЗНЮК ДЕВОЧКА МАЛЬЧИК "
    "РЕБЕНОК НОВОРОЖДЕННЫЙ ΜΩΡΟ ΔΙΔΥΜΟ ベビー ツイン 男児 女児 新生児 双子 婴儿 双胞胎 아기 쌍둥이 תינוק תינוקת תאום "
    "תאומה").split())
#: Roman numerals a registration numbers newborn twins or triplets with (TWIN II / TWIN III: A23-2); I, V and X are
#: left to the initials (DOE^JOHN I / DOE^JOHN IVAN), where TWIN I / TWIN II still differ by the number on one side.
ROMAN = ("II", "III", "IV", "VI", "VII", "VIII", "IX")


def _number(group: str, words: list[str]) -> str:
    """The numbers in a name: its digits (BABY BOY 1 / 2, A22-11) and Roman numerals among ``words`` (its given or
    free-text words, folded: TWIN II / TWIN III, A23-2), space-separated; II or III there was read as a suffix, so
    the twins agreed. A number on one side only differs too (``_labels_apart``)."""
    return " ".join(re.findall(r"\d+", group) + [w for w in words if w in ROMAN])


def _givens(given_part: str) -> list[str]:
    """A given-name component's given names, folded: without the Vietnamese middle names THI / VAN one device drops
    (NGUYEN^THI MAI / NGUYEN^MAI, A19-3) and a suffix or title typed into it (DOE^JOHN JR, MÜLLER^DR. HANS: A31-12)."""
    words = [w for w in fold_name(given_part).split() if w not in TITLES]
    return [w for w in words if w not in PARTICLES] or words


def _plain_umlauts(text: str) -> str:
    """The umlauts (and Ø, Å) as their plain vowels (MÜLLER as MULLER), as a device that drops the marks writes them;
    Serbian and Croatian Đ as DJ, their ASCII spelling (ĐORĐEVIĆ / DJORDJEVIC: A31-25), where the fold writes D."""
    return unicodedata.normalize("NFC", text).translate(str.maketrans(
        {**dict(zip("ÄÖÜØÅäöüøå", "AOUOAaouoa")), "Đ": "DJ", "đ": "dj"}))


def _joined(*texts: str) -> str:
    """A name's words joined in the order written (each of ``texts``: the free text, or the components family name
    first and last), with and without particles (NGUYEN THI MAI / NGUYEN^MAI), titles and suffixes left out, umlauts
    as plain vowels and MAC as MC, space-separated: one name with its words joined or split (JEAN-PIERRE / JEAN
    PIERRE, VAN DER BERG / VANDERBERG, XIAO MING / XIAOMING) or MACDONALD / MC DONALD reads the same (attack run 22,
    A22-9). In order, not as sorted letters or a set of words: twins are given anagram names (LIAM / MILA: A22-18)
    and each other's given names in the other order (JOSE MARIA / MARIA JOSE: A23-1)."""
    out = set()
    for text in texts:
        words = [re.sub("^MAC", "MC", w) for w in fold_name(_plain_umlauts(text)).split() if w not in TITLES]
        out |= {"".join(words), "".join(w for w in words if w not in PARTICLES)}
    return " ".join(sorted(out - {""}))


def _whole(text: str) -> str:
    """`` =`` and ``text``'s words joined, particles kept: a free text that is a family name alone, compared with a
    family name of several words (``joined``); with the particles dropped, BEN GARCIA LOPEZ read GARCIALOPEZ."""
    return " =" + "".join(w for w in fold_name(_plain_umlauts(text)).split() if w not in TITLES)


def _abbreviated(*texts: str) -> str:
    """A name's words joined in the order written (as ``_joined``) with some of its words as their initials, at least
    one written out: the forms a device that abbreviates writes (JOHN DOE as J DOE, DOE J; JOHN ALBERT DOE as J A DOE).
    Compared with the other's ``joined``: J DOE / JOHN DOE were said as another name where DOE^J / DOE^JOHN agree
    (attack run 30, A30-2); D DOE / JOHN DOE still differ. Space-separated; none for a name of one word or over five."""
    out = set()
    for text in texts:
        words = [re.sub("^MAC", "MC", w) for w in fold_name(_plain_umlauts(text)).split()
                 if w not in TITLES and w not in PARTICLES]
        longs = [k for k, w in enumerate(words) if len(w) > 1]
        if not 2 <= len(longs) <= 5:
            continue
        for mask in range(1, 2 ** len(longs) - 1):  # which long words are initials: some, not all
            short = {k for n, k in enumerate(longs) if mask >> n & 1}
            out.add("".join(w[0] if k in short else w for k, w in enumerate(words)))
    return " ".join(sorted(out))


#: Latin initials a given name's first letter may be written with, for scripts with a reading (Cyrillic, Greek,
#: Arabic; kana and hangul by their syllables' names): one person's ПЕТРОВА^МАРИЯ and PETROVA^MARIA agree, twins
#: ПЕТРОВА^МАРИЯ and PETROVA^ANNA do not (A22-4). None where a letter has no reading here (Han characters).
_CYRILLIC = ("АБВГҐДЕЄЖЗИІЇЙКЛМНОПРСТУФХЦЧШЩЫЭЮЯЂЈЉЊЋЏЎ",
             "A B VW GH G D EYIJ YEJ ZJ Z IY I YIJ YIJ KCX L M N O P R S T UO FP KHCX TCZ CT SC S Y E YIJU YIJA D J L "
             "N C D UW")
_GREEK = ("ΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡΣΤΥΦΧΨΩ", "AE VB GY D E Z IEH T IY KC L MB ND XK OU P R S T YI FP CHK P O")
_ARABIC = ("ابتثجحخدذرزسشصضطظعغفقكلمنهويپچژگ",
           "AEIOU B T TS JGD H KHJ D DZ R Z S SC S DZ T ZD AEIOU G F QKG K L M N H WOUV YIE P C ZJ G")
_READINGS = {c: r for letters, readings in (_CYRILLIC, _GREEK, _ARABIC) for c, r in zip(letters, readings.split(),
                                                                                         strict=True)}
_HANGUL = {"G": "GK", "K": "KG", "D": "DT", "T": "TD", "B": "BP", "P": "PB", "J": "JCZ", "C": "CJ", "R": "RLN",
           "L": "LRN", "N": "NLR", "S": "SC"}


#: Kana syllables (Unicode's names are Kunrei) as names are written, Hepburn and Kunrei (SHI / SI, FU / HU): a kana
#: given name's initials (``_readings``) are read from both (A23-14).
_KANA_SPELLINGS = {"SI": ("SHI", "SI"), "TI": ("CHI", "TI"), "TU": ("TSU", "TU"), "HU": ("FU", "HU"),
                   "ZI": ("JI", "ZI"), "DI": ("JI", "DI", "ZI"), "DU": ("ZU", "DU"), "WO": ("O", "WO")}


#: scripts written without spaces between a name's words (their letters are joined to compare them)
_UNSPACED = ("CJK", "KANA", "HANGUL")


#: a patronymic in Cyrillic (ПЕТРОВИЧ, ИВАНОВНА, ИЛЬИЧ, КУЗЬМИЧ, ПЕТРІВНА, Belarusian ПЯТРОВІЧ, ПЯТРОЎНА, Kazakh
#: СЕРІКҰЛЫ): written in the given component, in the middle one, left out or in free text by one person's devices
#: (A25-5, A27-2); and the words that follow a father's name (МАМЕДОВ^РАШАД ТОФИК ОГЛЫ), dropped with it
_PATRONYMIC = re.compile("(ИЧ|ІЧ|ВНА|ИЧНА|ІВНА|ОУНА|ЕУНА|ҰЛЫ|ҚЫЗЫ)$")
_MARKERS = {"ОГЛЫ", "ОГЛУ", "КЫЗЫ", "ГЫЗЫ", "УЛЫ", "ҰЛЫ", "ҚЫЗЫ", "ҚИЗИ", "КИЗИ", "ЎҒЛИ", "УГЛИ"}  # Uzbek too (A29)
_PATRONYMIC_MARKERS = frozenset(_MARKERS | {fold_name(m) for m in _MARKERS})


def _patronymic(words: list[str], keep: int) -> tuple[list[str], list[str]]:
    """``words`` without their patronymic (``_PATRONYMIC``, or a father's name and its marker), the first ``keep``
    kept, and the patronymic's words: compared where both names give one (ИВАНОВА^АННА СЕРГЕЕВНА / ИВАНОВА^АННА
    ПЕТРОВНА are two women, walk-through H135, W10), left out where one does not (A25-5)."""
    out, dropped = words[:keep], []
    for w in words[keep:]:
        if w in _PATRONYMIC_MARKERS:
            if len(out) > keep:
                dropped.append(out.pop())
        elif _PATRONYMIC.search(w):
            dropped.append(w)
        else:
            out.append(w)
    return out, dropped


def _script_name(group: str) -> tuple[str, list[str], set[str], set[str], set[str]]:
    """A name group in another script as ``script`` (its family and given words joined in order, a patronymic after
    the given name left out: ИВАНОВ^ИВАН ПЕТРОВИЧ, ИВАНОВ^ИВАН^ПЕТРОВИЧ and "ИВАНОВ ИВАН ПЕТРОВИЧ" are one person's,
    A25-5; never the first given word, nor a free text's first two: ПЕТРОВИЧ^МИЛИЦА), its given words (the given and
    middle components': DICOM's family^given^middle, A27-5), and the forms it may be written in (``script_forms``):
    as written, with the patronymic, the family name last (a free text's last word first: МАРИЯ ПЕТРОВА, A27-1) or
    the components swapped (АННА^ИВАНОВА, АННА СЕРГЕЕВНА^ИВАНОВА: walk-through H137, W2); its forms without
    initials (``script_bare``), which agree with a form of a name that writes none (ИВАНОВА АННА С. / ИВАНОВА^АННА,
    A29-3), not with another's without its initials (ПЕТРОВА МАРИЯ А. / ПЕТРОВА МАРИЯ Е.); and the family name with
    the given names' initials (``script_abbrev``), which agrees with a name written so (ИВАНОВА^А.С. / ИВАНОВА^АННА
    СЕРГЕЕВНА with no birth date: H137's W1). Not
    its words sorted: twins ПЕТРОВА АННА МАРИЯ / ПЕТРОВА МАРИЯ АННА were
    one name (attack run 28, A28-1); letters joined in order, so АННА-МАРІЯ and "АННА МАРІЯ" agree (A28-3)."""
    if "^" in group:
        family, given, middle = (fold_name(p).split() for p in (group.split("^") + ["", ""])[:3])
        given, patronymic = _patronymic(given + middle, 1)
        words, full = family + given, _without_initials(given)  # ΜΑΡΙΑ^Ε. / "ΜΑΡΙΑ" (A28-6's fix)
        forms = {"".join(words), "".join(given + family), "".join(words + patronymic),
                 "".join(given + patronymic + family)}
        rest = given + patronymic
        # the family name with the given names' initials, or the first given name written out (ΠΑΠΑ^ΜΑΡΙΑ ΑΝΝΑ as
        # ΠΑΠΑ ΜΑΡΙΑ Α.: A31-31)
        bare, abbrev = {"".join(family + full)}, {"".join(family + [w[:1] for w in rest]),
                                                  "".join(family + rest[:1] + [w[:1] for w in rest[1:]])}
    else:
        every = fold_name(group).split()
        words, given = _patronymic(every, 2)[0], []
        last_first, bare = every[-1:] + every[:-1], _without_initials(every)
        # the family name last, with the patronymic left out too ("АННА СЕРГЕЕВНА ИВАНОВА", A29-9)
        forms = {"".join(w) for w in (words, words[-1:] + words[:-1], every, last_first,
                                       _patronymic(last_first, 2)[0])}
        bare = {"".join(bare), "".join(bare[-1:] + bare[:-1])}
        # the family name (first or last) with the other words' initials, or the first of them written out: ИВАНОВ
        # ИВАН ПЕТРОВИЧ as ИВАНОВ И.П., ΠΑΠΑ ΜΑΡΙΑ ΑΝΝΑ as ΠΑΠΑ ΜΑΡΙΑ Α. (A31-16, A31-31)
        abbrev = {"".join(w[:1] + [x[:1] for x in w[1:]]) for w in (every, last_first)} | {
            "".join(w[:2] + [x[:1] for x in w[2:]]) for w in (every, last_first) if len(w) > 2} \
            if len(every) > 1 and all(len(w) > 1 for w in every) else set()
    return "".join(words), given, forms, bare, abbrev


def _after_given(words: list[str], given: list[str], patronymic: str, parts: bool) -> str:
    """The initial of the name after the first given name (``pi_in_<script>``): the patronymic's, else in components
    the second given word's, else in free text a letter after the family and given name (ИВАНОВА АННА С.) or the
    second of two after the family name alone (ИВАНОВА А. С.). Free text has no places to compare (its order is
    not known), and ИВАНОВА АННА С. agreed with ИВАНОВА^АННА ПЕТРОВНА, its form without the initial with the other's
    without the patronymic (attack run 30, A30-1)."""
    if patronymic:
        return patronymic[:1]
    if parts:
        return given[1][:1] if len(given) > 1 else ""
    full = [w for w in words if len(w) > 1]
    letters = words[len(full):]
    if len(words) == 3 and len(words[1]) == 1 and len(full) == 2:
        return words[1]  # АННА С. ИВАНОВА: the given name, the patronymic's initial, the family name (A31-7)
    if words[:len(full)] != full or not letters or any(len(w) > 1 for w in letters):
        return ""  # initials between the words: no order to read
    return letters[0] if len(full) == 2 else letters[1] if len(full) == 1 and len(letters) > 1 else ""


def _without_initials(words: list[str]) -> list[str]:
    """Given words in a script written with spaces without their initials (ИВАНОВ^И.^П.), which ``script_initial``
    compares: И / ИВАН were two given names (attack run 27's fix); a letter in a script without spaces is a word."""
    return words if words and _script_of(words[0]) in _UNSPACED else [w for w in words if len(w) > 1]


#: a word in a script without spaces longer than this holds a given name, shorter ones may be a family name alone:
#: hangul family names have one or two syllables (김민수 holds one); Han ones up to three characters (佐々木), kana ones
#: up to five (おがさわら): さとう, 佐藤 are family names alone as often as not (A27-4)
_FAMILY_AT_MOST = {"HANGUL": 2, "CJK": 3, "KANA": 5}


def _writes_a_given_name(group: str) -> bool:
    """Whether a name group in another script holds a given name: a given component, more than one word (ПЕТРОВА
    МАРИЯ), or more letters than a family name has in a script written without spaces (김민수, やまだたろう)."""
    if "^" in group:  # a given or a middle component (山田^^花子: A28-13)
        return bool(fold_name(" ".join(group.split("^")[1:3])))
    words = fold_name(group).split()
    return len(words) > 1 or bool(words) and len(words[0]) > _FAMILY_AT_MOST.get(_script_of(words[0]), 99)


def _may_write_a_given_name(group: str) -> bool:
    """``_writes_a_given_name``, or a word in a script without spaces of two letters or more (王伟, さとう): a given
    name and a family name, or the family name alone."""
    words = fold_name(group).split() if "^" not in group else []
    return _writes_a_given_name(group) or len(words) == 1 and len(words[0]) > 1 and _script_of(
        words[0]) in _UNSPACED


def _given_candidates(group: str) -> list[str]:
    """The words of a name group in another script that may be its given name: its given component's first word
    and all its words joined; for a free-text group (no "^": ПЕТРОВА МАРИЯ, 김민수) each word of two or more (one word
    is a family name, as DOE against DOE^JOHN), and a hangul or kana word's first few and last syllables apart
    (김민수: 김, 민수, 수; 남궁민수: 남궁, 민수; やまだたろう: やまだ, たろう), A23-12, A23-16."""
    if "^" in group:
        words = fold_name(group.split("^")[1]).split()
        return list(dict.fromkeys([words[0], "".join(words)])) if words else []
    words = fold_name(group).split()
    # hangul and kana written without a separator (김민수, やまだたろう): the family name is the first syllables
    joined = [w for w in words if len(w) > 1 and _script_of(w) in ("HANGUL", "KANA")]
    out = words if len(words) > 1 or joined else []
    # a hangul family name is one syllable but for a few of two (남궁민수): 김민준's 준 alone gave J, and twins 김민준 /
    # KIM^JIHO passed with a 'scripts' note only (attack run 31, A31-8)
    hangul = [w for w in joined if _script_of(w) == "HANGUL"]
    out += [part for w in hangul for k in (1, 2) if k == 1 or w[:2] in _HANGUL_FAMILIES_OF_TWO
            for part in (w[:k], w[k:])]
    kana = [w for w in joined if _script_of(w) == "KANA"]
    # the first one to six syllables and the rest, and the last one to four: every suffix of a long word grew with
    # its square (A25-6), and three left a four-kana family name's given name unread (やまもとけんじ, A26-5)
    return out + [part for w in kana for k in range(1, min(len(w), 7)) for part in (w[:k], w[k:])] + [
        w[-k:] for w in kana for k in range(1, min(len(w), 5))]


#: Korean family names of two syllables; every other is one (김, 이, 박).
_HANGUL_FAMILIES_OF_TWO = frozenset("남궁 황보 제갈 선우 독고 사공 서문 동방 어금 망절 소봉 장곡".split())


_GREEK_PAIR_INITIALS = {"ΕΙ": "I", "ΟΙ": "I", "ΑΙ": "E", "ΟΥ": "U"}


def _readings(script_given: str) -> str:
    """The Latin initials (``_READINGS``) a folded given name in another script may be written with, space-separated,
    or "" where none is known."""
    first = script_given[:1]
    if not first:  # ПЕТРОВА^^^^, 山田^: no given name (A22-21)
        return ""
    name = unicodedata.name(first, "").split()
    if first in _READINGS:
        # and a Greek vowel pair's sound: ΕΙΡΗΝΗ is IRINI or IRENE, ΟΥΡΑΝΙΑ OURANIA or URANIA (A25-2)
        letters = _READINGS[first] + _GREEK_PAIR_INITIALS.get(script_given[:2], "")
    elif name[:2] == ["HIRAGANA", "LETTER"]:
        syllable = name[-1]
        # the first letters of its spellings (``_KANA_SPELLINGS``), R as L too, E as YE too
        letters = "".join(dict.fromkeys(w[0] for w in _KANA_SPELLINGS.get(syllable, (syllable,))))
        letters += {"R": "L", "E": "Y"}.get(syllable[0] if syllable[0] == "R" else syllable, "")
    elif name[:2] == ["HANGUL", "SYLLABLE"]:
        syllable = name[-1]
        letters = "AEIOUYWLR" if syllable[0] in "AEIOUYW" else _HANGUL.get(syllable[0], syllable[0])
    else:
        letters = ""
    return " ".join(letters)


def issuer_traits(text: str) -> dict[str, str]:
    """The issuer of a PatientID as its namespace (``issuer``) and its universal ID (``issuer_uid``), upper case,
    each where given: a worklist broker writes HL7's CX-4 form ("HOSP_A&1.2.840.99&ISO") where the device writes
    "HOSP_A" (attack run 17, A17-10) or another system the universal ID alone ("&1.2.840.99&ISO"); two issuers
    differ where a part both give differs (A18-8)."""
    # HL7 v2 pasted whole separates the components with "^" (HOSP_A^1.2.840.99^ISO), DICOM's CX-4 with "&" (A22-5)
    text = text.upper().strip()
    if text.startswith("^") or text.count("^") >= 3:  # CX: ID^check digit^scheme^authority, the ID empty (A31-6)
        text = (text.split("^") + [""] * 4)[3]
    parts = [" ".join(p.split()) for p in re.split("[&^]", re.sub("^URN:OID:", "", text))]
    if re.fullmatch(r"\d+(\.\d+)+", parts[0]) and parts[1:] in ([], ["ISO"]):  # an OID alone: the universal ID
        return {"issuer_uid": parts[0]}  # (A22-5: 1.2.840.99 and HOSP_A&1.2.840.99&ISO are one authority)
    # a universal ID compared as ISO's only: HOSP_A&LOCAL_A&L and HOSP_A&1.2.840.99&ISO are one issuer (A31-6)
    kind = parts[2] if len(parts) > 2 else ""
    out = {"issuer": parts[0], "issuer_uid": parts[1] if len(parts) > 1 and kind in ("", "ISO") else ""}
    return {k: v for k, v in out.items() if v}


def issuer_matches(wanted: str, found: str) -> bool:
    """``found`` (an archive's IssuerOfPatientID) is the issuer ``wanted`` (screen's --issuer): a part both give
    (namespace, universal ID) and none that differs. `--issuer HOSP_A` found nothing where the studies carry
    "HOSP_A&1.2.840.99&ISO", which the person rule counts as HOSP_A (attack run 18, A18-9)."""
    mine, theirs = issuer_traits(wanted), issuer_traits(found)
    shared = mine.keys() & theirs.keys()
    return bool(shared) and all(mine[k] == theirs[k] for k in shared)


def birth_trait(text: str) -> str:
    """A birth date as the digits of what it gives, year first (1950-01-01 as 19500101, attack run 15, A15-1): a
    date with a time (an HL7 timestamp copied in) as its date, a day or month of 00 (a registry that knows the year
    only) left out, a day-month-year date written with separators as its year only (whether 05/12/1970 is 5
    December or 12 May cannot be told: A18-8); "" for none given, and for the placeholders devices write for
    "unknown" (00000000, 19000101, a year before 1900: attack run 16), which made one person two."""
    text = text.strip()
    if (dmy := re.fullmatch(r"\d{1,2}[./-]\d{1,2}[./-](\d{4})", text)) is not None:
        digits = dmy.group(1)
    elif (ymd := re.fullmatch(r"(\d{4})[./-](\d{1,2})[./-](\d{1,2})", text)) is not None:  # 1950-1-1 (A19-6)
        digits = "".join(f"{int(g):02d}" for g in ymd.groups())
    elif (stamp := re.fullmatch(r"(\d{8})\d{0,6}(\.\d+)?([+-]\d{4})?", text)) is not None:  # HL7 time, zone
        digits = stamp.group(1)
    else:
        digits = re.sub(r"\D", "", text)
        if len(digits) in (12, 14) and digits[:2] in ("18", "19", "20"):
            digits = digits[:8]
    while len(digits) in (6, 8) and digits.endswith("00"):
        digits = digits[:-2]
    placeholder = len(digits) in (4, 6, 8) and (digits[:4] < "1900" or "19000101".startswith(digits))
    # a year after this one is no birth date: YYMMDD 620304 read as the year 6203 made one person two (A22-8)
    future = len(digits) in (4, 6, 8) and int(digits[:4]) > _this_year()
    return "" if placeholder or future else digits


def _this_year() -> int:
    return dt.date.today().year


def birth_traits(text: str) -> dict[str, str]:
    """A birth date's traits at each precision it gives: ``birth`` (the full date), ``birth_month`` and
    ``birth_year``, so that an export that keeps the year (or year and month) only, as de-identification
    profiles and some perimeters write it, is compared with a full date at the precision both give: 1962 and
    19620304 agree, 1962 and 19710304 do not. Digits of another length are ``birth`` as they are."""
    digits = birth_trait(text)
    if len(digits) not in (4, 6, 8):
        return {"birth": digits} if digits else {}
    out = {"birth_year": digits[:4]}
    if len(digits) >= 6:
        out["birth_month"] = digits[:6]
    if len(digits) == 8:
        out["birth"] = digits
    return out


#: ``differing``'s words for a name whose family and first given name both differ (``whole_name_differs``).
WHOLE_NAME = "family and given name"


def differing(mine: dict[str, str], theirs: dict[str, str]) -> list[str]:
    """What tells two people's traits (``Patient.traits`` or ``hashed_traits`` of them) apart, in words: "issuer
    of the ID", "birth date", "family and given name" (``whole_name_differs``), else "name"; a trait one of them
    leaves empty contradicts nothing."""
    out = list(dict.fromkeys(words for k, words in PERSON_TRAITS.items()
                             if k in mine and k in theirs and mine[k] != theirs[k]))
    if whole_name_differs(mine, theirs):
        return out + [WHOLE_NAME]
    return out + (["name"] if other_name(mine, theirs) else [])


def whole_name_differs(mine: dict[str, str], theirs: dict[str, str]) -> bool:
    """The two names share no word after the fold (``wordset``: the family and first given name, or a free-text
    name's words): another person's name, not a spelling (a typo or a marriage changes one of them; word order and
    the other script are folded already). Family and given names compared one by one missed a name written without
    "^": ALPHA^ANN and "ZULU ZED" were one person's two spellings (attack run 16, A16-17). Words are compared
    within a script (``wordset``: Latin letters, ``<script>set``: each other script): PETROVA^MARIA and
    ПЕТРОВА^МАРИЯ share no script, so they tell nothing and are not another person's name (``TRANSCRIBED``)."""
    kinds = _word_sets(mine) & _word_sets(theirs)
    if not kinds:  # no script in common: another name only where neither can be written in the other
        return bool(_word_sets(mine) and _word_sets(theirs)) and not any(
            {a, b} <= TRANSCRIBED or "wordset" in (a, b) for a in _word_sets(mine) for b in _word_sets(theirs))
    return not any(set(mine[k].split()) & set(theirs[k].split()) for k in kinds)


def other_person(mine: dict[str, str], theirs: dict[str, str]) -> bool:
    """Another person, by what a spelling cannot explain: another issuer of the ID or birth date (both given), or
    a whole other name (``whole_name_differs``: ALPHA^ANN and ZULU^ZED under one ID were kept as one person's
    two spellings where one side alone gave an issuer and birth date, attack run 16, A16-14) where no full birth
    date ties the two: with the same ID and birth date, MOHAMMED^AHMED / MUHAMMAD^AHMAD (two
    transliterations) is said, not refused (attack run 17, A17-1)."""
    if any(mine[k] != theirs[k] for k in PERSON_TRAITS if k in mine and k in theirs):
        return True
    # only the full birth date, a fact about the person, ties two whole other names; an equal issuer qualifies the
    # ID, which is equal already (A18-5), and a year is shared by too many
    return not ("birth" in mine and "birth" in theirs) and whole_name_differs(mine, theirs)


def other_name(mine: dict[str, str], theirs: dict[str, str]) -> bool:
    """``_other_name`` either way round: a verdict that hung on which header came first (a free-text name against
    a name in components) followed the archive's answer order (attack run 20, A20-4)."""
    return _other_name(mine, theirs) or _other_name(theirs, mine)


def _other_name(mine: dict[str, str], theirs: dict[str, str]) -> bool:
    """The names differ after the fold. Given names (``_given_differs``) always: twins share the ID, the birth
    date and the family name. Where the full birth date ties the two, nothing else: under one ID and birth date a
    marriage, a double surname one device truncates, MACDONALD / MC DONALD, a name in another script or one that
    could not be decoded are one person's, and a 'people' check withheld the Trend's flags for them (attack runs 18
    and 19, A18-10, A19-3). Otherwise also: the other-script forms of one script; a name that cannot be compared
    (``garbled``, or written in no common script: PETROVA^MARIA / ПЕТРОВА^МАРИЯ); the family and given names'
    ``words`` where both give them (word order aside: DOE^JOHN and "JOHN DOE"); else the family names."""
    def differs(k: str) -> bool:
        return k in mine and k in theirs and mine[k] != theirs[k]

    if differs("garbled"):
        return True  # two names not decoded, written otherwise (A31-1)
    if _one_native_name(mine, theirs):
        return False
    if _given_differs(mine, theirs):
        return True
    if "birth" in mine and "birth" in theirs:
        # where no given name can be read on both sides (free text, a Han name written without "^"), its words or
        # letters are compared instead, and a whole other name is said: nothing was compared and two people
        # passed as one (attack run 20, A20-1)
        given = any(k in mine and k in theirs for k in ("given", "initial", "script_given", "script_initial"))
        free = "free" in mine or "free" in theirs
        if _given_differs_across_scripts(mine, theirs):
            return True
        return whole_name_differs(mine, theirs) or (not given or free) and (
            differs("words") and not _free_agree(mine, theirs)
            or _script_differs(mine, theirs) and not differs("script_kind"))  # kanji against kana tell nothing (A31-14)

    if _script_differs(mine, theirs) and not differs("script_kind"):
        return True
    if any("garbled" in a and any(k in b for k in NAME_TRAITS) for a, b in ((mine, theirs), (theirs, mine))):
        return True
    scripts = [_word_sets(t) for t in (mine, theirs)]
    if all(scripts) and not scripts[0] & scripts[1]:
        return True
    if "words" in mine and "words" in theirs and mine["words"] == theirs["words"] or _swapped(mine, theirs):
        return False
    if ("free" in mine or "free" in theirs) and _free_agree(mine, theirs):
        return False  # as where a birth date ties them: "GARCIA LOPEZ" / GARCIA LOPEZ^MARIA (A28-2)
    return differs("words") and not all("family" in t for t in (mine, theirs)) or differs("family")


def _one_native_name(mine: dict[str, str], theirs: dict[str, str]) -> bool:
    """Both write the same full name in another script (family and given name, patronymic, numbers alike): the Latin
    groups beside it are two romanisations of one name (KIM^MINSU=김^민수 / KIM^MINSOO=김^민수, PETROVA^MARIA /
    PETROVA^MARIYA=ПЕТРОВА^МАРИЯ), which were said as another name (attack run 30, A30-12)."""
    if "script" not in mine or mine.get("script") != theirs.get("script") or "script_alone" in mine \
            or "script_alone" in theirs or _labels_apart(mine, theirs):
        return False
    if mine.get("initial") != theirs.get("initial") or mine.get("suffix") != theirs.get("suffix"):
        return False  # KIM^JIHYE=김^민수 / KIM^MINSU=김^민수: no romanisation of the other's; father and son
    if "script_given" not in mine or any(k in mine and k in theirs and mine[k] != theirs[k]
                                         for k in ("initial2", "marker", "letter_order")):
        return False  # a native initial alone (ИВАНОВА^А.) ties no given name; middle initials that differ (A31-27)
    keys = {k for k in (*mine, *theirs) if k.startswith(("patronymic_in_", "pi_in_", "given", "i1_in_", "i2_in_"))
            and "_in_" in k}
    return all(mine.get(k) == theirs.get(k) for k in keys)


def _free_agree(mine: dict[str, str], theirs: dict[str, str]) -> bool:
    """A free-text name (whose order is not known) and another agree: a one-word name within the other (DOE /
    DOE^JOHN); the same two words in either order (JOHN DOE / DOE JOHN: no given names to swap); the words joined in
    the order written (``_joined``: JOHN ALBERT DOE / DOE^JOHN ALBERT, A20-5; words joined or split, A22-9); or a
    middle initial one side leaves out where the initials both give agree (DOE^JOHN^A / "DOE, JOHN": A14-19). Not
    the same words as a set where there are more than two: JOSE MARIA GARCIA / GARCIA^MARIA JOSE are twins (A23-1),
    and one set within the other is not enough: JOSE GARCIA / MARIA JOSE GARCIA are twins as often as a middle name
    dropped (A21-1)."""
    if "allwords" not in mine or "allwords" not in theirs:
        return True
    a, b = set(mine["allwords"].split()), set(theirs["allwords"].split())
    longs = mine.get("longwords", ""), theirs.get("longwords", "")
    two = len(longs[0].split()) <= 2
    # one word left of a free text that had two (BEN SMITH without the "particle" BEN) is no family name alone (A31-4)
    alone = [len(x) == 1 and "words" not in t for x, t in ((a, mine), (b, theirs))]
    return (alone[0] and a <= b or alone[1] and b <= a or a == b and two or _joined_agree(mine, theirs)
            or _abbreviation_agrees(mine, theirs)
            or longs[0] == longs[1] and two and ("letterwords" in mine) != ("letterwords" in theirs))


def _script_differs(mine: dict[str, str], theirs: dict[str, str]) -> bool:
    """Both write a name in another script, and none of its forms (``script_forms``) agree, nor is one the family
    name alone within the other (``_alone_agrees``)."""
    if "script" not in mine or "script" not in theirs:
        return False
    forms, bare, abbrev = ([set(t.get(k, "").split()) for t in (mine, theirs)]
                           for k in ("script_forms", "script_bare", "script_abbrev"))
    agree = forms[0] & forms[1] or (bare[0] | abbrev[0]) & forms[1] or forms[0] & (bare[1] | abbrev[1])
    return not agree and not _alone_agrees(mine, theirs)


def _alone_agrees(mine: dict[str, str], theirs: dict[str, str]) -> bool:
    """One writes the family name alone in another script (``script_alone``: ИВАНОВА, 山田^) and its words are among
    the other's in that script, as DOE agrees with DOE^JOHN: ИВАНОВА / ИВАНОВА^АННА got the 'people' check (A27-8)."""
    for a, b in ((mine, theirs), (theirs, mine)):
        # in every script both write (IVANOVA=ИВАНОВА / ИВАНОВА^АННА: A29-1's test); not beside a Latin given
        # name (KIM^JIHYE=김), which is compared across scripts, not agreed; a Latin family name alone beside it
        # (YAMADA=山田) is among the other's words too (A28-7)
        sets = [k for k in _word_sets(a) if k in b]
        if "script_alone" in a and not {"given", "initial"} & set(a) and len(a.get("allwords", "").split()) < 2 and \
                any(k != "wordset" for k in sets) and all(set(a[k].split()) <= set(b[k].split()) for k in sets):
            return True
    return False


def _script_givens_differ(mine: dict[str, str], theirs: dict[str, str]) -> bool:
    """The given names both write in one script (``given_in_<script>``) differ, unless one is a form of the other
    (``script_forms``). In a script without spaces by their letters joined; in one with spaces word by word and
    initial by initial, each by its place where both give one (``given<n>_in_``, ``i<n>_in_``): ΜΑΡΙΑ / ΜΑΡΙΑ ΕΛΕΝΗ,
    محمد / محمد احمد are one person's (A27-1), ΜΑΡΙΑ ΕΛΕΝΗ / ΜΑΡΙΑ ΑΝΝΑ or ΜΑΡΙΑ Α., عبد الله / عبد الرحمن twins (A26-1,
    A28-6); a whole word also where the letters joined agree (АННА-МАРІЯ / АННА МАРІЯ, A26-2)."""
    if set(mine.get("script_forms", "").split()) & set(theirs.get("script_forms", "").split()):
        return False  # one name: components swapped (ИВАНОВА^АННА / АННА^ИВАНОВА), as DOE^JOHN / JOHN^DOE
    if any(k.startswith("pi_in_") and k in theirs and mine[k] != theirs[k] for k in mine):
        return True  # the name after the given name: ИВАНОВА АННА С. / ИВАНОВА^АННА ПЕТРОВНА (A30-1)
    for key in _given_scripts(mine) & _given_scripts(theirs):
        if mine[key] != theirs[key] and key.replace("given_in_", "i1_in_") not in mine:
            return True  # a script without spaces: its letters joined
    for key in mine:
        if re.match(r"(given|i)\d_in_", key) and key in theirs and mine[key] != theirs[key]:
            joined = "given_in_" + key.split("_in_")[1]
            if key.startswith("i") or mine.get(joined) != theirs.get(joined):  # not АННАМАРІЯ / АННА МАРІЯ
                return True
    return False


def _abbreviation_agrees(mine: dict[str, str], theirs: dict[str, str]) -> bool:
    """One reads as the other with some words as their initials (``_abbreviated``)."""
    return any(set(a.get("joined", "").split()) & set(b.get("abbrevs", "").split())
               for a, b in ((mine, theirs), (theirs, mine)))


def _joined_agree(mine: dict[str, str], theirs: dict[str, str]) -> bool:
    """The names read the same with their words joined (``_joined``), family name first or last."""
    return bool(set(mine.get("joined", "").split()) & set(theirs.get("joined", "").split()))


def _given_differs_across_scripts(mine: dict[str, str], theirs: dict[str, str]) -> bool:
    """A name in Latin letters and one in another script only (no common script) whose given names cannot begin
    with one letter (``_readings``): under one ID and birth date, twins ПЕТРОВА^МАРИЯ / PETROVA^ANNA passed as one
    person (A18-10, A22-4). Nothing finer: consonant classes and name endings, read across scripts (sessions 20-21),
    said one person's common romanisations as two people (Korean WOO, Greek Γ as Y, Serbian Ц as C: attack run 24,
    A24-10, A24-11), each reading fixed found the next, and a reading cannot tell twins one vowel apart (민수 /
    MINSEO) anyway. Whatever the initials do not tell apart gets the 'scripts' check (``scripts_apart``) instead."""
    if _word_sets(mine) & _word_sets(theirs) or ("wordset" in mine) == ("wordset" in theirs):
        return False
    if "initials" not in mine or "initials" not in theirs:
        return False  # no reading here (kanji, Hebrew, Thai): nothing to compare, as A18-10 (A22-20)
    return not set(mine["initials"].split()) & set(theirs["initials"].split())


def _given_differs(mine: dict[str, str], theirs: dict[str, str]) -> bool:
    """The given names differ (the first, or all joined; the second where both give one; the suffix; the initial
    where one gives only that); a name whose family and given components are swapped (DOE^JOHN / JOHN^DOE) does
    not."""
    def differs(k: str) -> bool:
        return k in mine and k in theirs and mine[k] != theirs[k]

    for a, b in ((mine, theirs), (theirs, mine)):
        # a given name in another script only, its Latin group the family name alone, against one in Latin letters
        # only (KIM=김^민수 / KIM^JIHYE): their initials (A24-1's rare form)
        if _givens_apart(a, b) and "script_initials" in a and "initials" in b and not set(
                a["script_initials"].split()) & set(b["initials"].split()):
            return True
    # the groups in other scripts first: a Latin group in free text or with the components swapped returned below
    # before they were compared (IVANOVA=ИВАНОВА^МАРИЯ Е. / IVANOVA=ИВАНОВА^МАРИЯ А.: A29-6)
    if "script_kind" in mine and not differs("script_kind") and (differs("script_given") or differs("script_initial")) \
            and not (_given_scripts(mine) and _given_scripts(theirs)):
        # an initial (ИВАНОВ^И. / ИВАНОВ^П.); where both write given names of their own, they are compared per
        # script below, or get the 'scripts' check (``_given_scripts_apart``)
        return True
    if any(differs(k) for k in mine if k.startswith("patronymic_in_")):
        return True  # both give a patronymic, and they differ (walk-through H135, W10)
    if _script_givens_differ(mine, theirs):
        # in any script both write, whichever group comes first: the standard's ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう against
        # 山田^花子 compared the kana with the kanji and nothing (A24-1)
        return True

    if "words" in mine and "words" in theirs and mine["words"] == theirs["words"] and differs("family"):
        return differs("suffix") or _labels_apart(mine, theirs)  # the components swapped (SMITH^TWIN 1 / TWIN 2^SMITH)
    if _swapped(mine, theirs):
        return not _swapped_agree(mine, theirs) or _labels_apart(mine, theirs) \
            or any(differs(k) for k in ("suffix", "marker"))
    if ("free" in mine or "free" in theirs) and "allwords" in mine and "allwords" in theirs:
        # a free-text name's order is not known: its words, initials too, against the other's as a set (JOHN ALBERT
        # DOE / DOE^JOHN ALBERT agree; GARCIA MARIA JOSE / GARCIA MARIA ISABEL do not); one set within the other is
        # not enough: JOSE GARCIA / MARIA JOSE GARCIA are twins as often as a middle name dropped (A21-1)
        return not _free_agree(mine, theirs) or _labels_apart(mine, theirs) \
            or any(differs(k) for k in ("suffix", "marker", "letter_order"))
    if "given" in mine and "given" in theirs:
        if differs("given") and differs("givens") and differs("given_plain") \
                and not (differs("family") and not differs("family_vowels") and not differs("given_vowels")):
            return True
    elif differs("initial"):
        return True
    same_givens = "givens" in mine and "givens" in theirs and mine["givens"] == theirs["givens"]
    return differs("given2") and not same_givens or _labels_apart(mine, theirs) \
        or any(differs(k) for k in ("initial2", "given3", "initial3", "suffix", "marker"))


def _swapped(mine: dict[str, str], theirs: dict[str, str]) -> bool:
    """One writes the other's family and first given name in each other's component (DOE^JOHN ALBERT / JOHN
    ALBERT^DOE, DOE^JOHN / JOHN A^DOE): the components swapped beside a second given name or an initial, said as
    another name where the names alone were (attack run 30, A30-3)."""
    return "order" in mine and mine["order"] == theirs.get("swap")


def _swapped_agree(mine: dict[str, str], theirs: dict[str, str]) -> bool:
    """Swapped names (``_swapped``) agree where one leaves out a second given name or an initial the other writes, as
    DOE^JOHN / DOE^JOHN ALBERT do; not where each writes one of its own (DOE^JOHN A / JOHN B^DOE, DOE^JOHN A / JOHN
    BERNARD^DOE)."""
    longs, letters = ([set(t.get(k, "").split()) for t in (mine, theirs)] for k in ("longwords", "letterwords"))
    within = [a <= b or b <= a for a, b in (longs, letters)]
    return longs[0] == longs[1] and within[1] or letters[0] == letters[1] and within[0]


def _labels_apart(mine: dict[str, str], theirs: dict[str, str]) -> bool:
    """The numbers in two names differ; beside a newborn's label (``_NEWBORN``) also a number or letter one writes
    and the other does not: a registration names newborn twins SMITH^TWIN and SMITH^TWIN 2 or TWIN A as often as
    TWIN 1 and TWIN 2, and the label on one side only passed them as one person (attack runs 30, 31: A30-4, A31-3).
    Elsewhere a number or letter on one side only is a suffix or an initial one device leaves out (DOE^JOHN III /
    DOE^JOHN: A31-10)."""
    if "newborn" not in mine and "newborn" not in theirs:
        return "number" in mine and "number" in theirs and mine["number"] != theirs["number"]
    keys = {"number", "letterwords", "initial2", "letter_order"} | {
        k for k in (*mine, *theirs) if re.match(r"(i\d|pi)_in_", k)}
    return any(mine.get(k, "") != theirs.get(k, "") for k in keys)


def other_traits(mine: dict[str, str], theirs: dict[str, str]) -> bool:
    """Two people, or one name written two ways, by their traits: ``other_person`` or ``other_name``."""
    return other_person(mine, theirs) or other_name(mine, theirs)


def one_person(patients: Iterable[Patient]) -> Patient | None:
    """The one person ``patients`` all are (merged), or None when they are several (``Patient.others``: another
    ID, issuer or birth date; a name written otherwise is the same person here, said by ``names_differ``)."""
    person, seen = None, []
    for patient in patients:
        # each with every other, not only with the merged one, which blends them: one header's birth date beside
        # another's name tied two whole other names (attack run 18, A18-7)
        if person is not None and (person.others(patient) or any(p.others(patient) for p in seen)):
            return None
        person = patient if person is None else person.merged(patient)
        seen.append(patient)
    return person


def names_differ(patients: Iterable[Patient | None]) -> bool:
    """Whether these (one person's, ``one_person``) write the name in more than one way after the fold, or in two
    scripts that are not compared (``scripts_apart``)."""
    traits = [p.traits() for p in patients if p is not None]
    return not one_set_of_traits(traits) or bool(scripts_apart(traits))


#: a word set's script in words (``_word_sets``' keys); the others by their Unicode name (Cyrillic, Hangul, Thai)
_SCRIPT_WORDS = {"wordset": "Latin", "cjkset": "Han", "kanaset": "kana", "garbled": "bytes not decoded"}


def scripts_apart(all_traits: Iterable[dict[str, str]]) -> str:
    """The scripts of two of these names (traits under one ID, plain or hashed) that share none, in words ("Hangul
    and Latin"), or "". Their given names are compared by their readings (``_given_differs_across_scripts``) where
    those tell two people apart, but a reading cannot tell the rest: boy and girl twins 민수 / MINSEO differ in a
    vowel that romanisation writes several ways, حسن / HUSSEIN share their consonants, and kanji, Hebrew or Thai
    have no reading here (attack runs 22 and 23: A22-4, A23-15). So where nothing told them apart, it is said that
    they were not compared, rather than passed as one person or, for one person's two devices, refused."""
    named = [t for t in all_traits if _scripts(t)]
    for k, mine in enumerate(named):
        for theirs in named[k + 1:]:
            if not _scripts(mine) & _scripts(theirs) or _givens_apart(mine, theirs) or _givens_apart(theirs, mine) \
                    or _given_scripts_apart(mine, theirs):
                return name_scripts({**mine, **theirs})
    return ""


def _givens_apart(mine: dict[str, str], theirs: dict[str, str]) -> bool:
    """``mine`` writes its given name in another script only, its Latin group the family name alone (KIM=김^민수),
    and ``theirs`` in Latin letters only (KIM^MINSEO): their given names were compared by an initial at most, the
    family name alone shared (A24-1's rare form)."""
    return "script_given_only" in mine and ("given" in theirs or "free" in theirs) and not any(
        k.startswith("given_in_") for k in theirs)


def _given_scripts_apart(mine: dict[str, str], theirs: dict[str, str]) -> bool:
    """Both write a given name in a script of its own (``given_in_<script>``) and share none of those scripts: one
    kanji family name with a kanji and a kana given name (山田^勇気 / 山田^ゆうき, or hanja / hangul) cannot be
    compared, as kanji has no reading here. It was said as two people (the cost of A24-12's fix, A25-3) where
    やまだ^ゆうき gets the 'scripts' check; both get that check now, and twins 山田^太郎 / 山田^さくら with it."""
    mine_in, theirs_in = _given_scripts(mine), _given_scripts(theirs)
    return bool(mine_in and theirs_in and not mine_in & theirs_in)


def _given_scripts(traits: dict[str, str]) -> set[str]:
    """The ``given_in_<script>`` keys of ``traits``: the scripts it writes a given name of its own in."""
    return {k for k in traits if k.startswith("given_in_")}


def _scripts(traits: dict[str, str]) -> set[str]:
    """The word-set keys of ``traits`` (``_word_sets``), or "garbled" for a name that could not be decoded: under one
    birth date it passed as the patient's with nothing said, where a name in another script is said (A24-4)."""
    return _word_sets(traits) | ({"garbled"} if "garbled" in traits else set())


def name_scripts(traits: dict[str, str]) -> str:
    """The scripts a name (its traits, plain or hashed) is written in, in words: "Hangul", "Han, kana and Latin"."""
    words = sorted({_SCRIPT_WORDS.get(s) or s[:-3].title() for s in _scripts(traits)}, key=str.lower)
    return " and ".join(filter(None, [", ".join(words[:-1]), words[-1]])) if words else ""


def what_differs(all_traits: Iterable[dict[str, str]]) -> str:
    """What tells these traits (``Patient.traits`` or ``hashed_traits``, under one ID) apart, in words for a
    refusal: "another issuer of the ID", "another birth date" or both; else "another family and given name"
    (``whole_name_differs``), or "another name" where only part of the name differs after the fold. A refusal
    under the patient's own ID said "the header's PatientID is not this patient's" (attack run 15, A15-18) or
    "issuer of the ID, name or birth date" (attack run 16, A16-1)."""
    all_traits = list(all_traits)
    found = {w for a in all_traits for b in all_traits for w in differing(a, b)}
    words = [w for w in dict.fromkeys(PERSON_TRAITS.values()) if w in found] or \
        [WHOLE_NAME if WHOLE_NAME in found else "name" if found else "issuer of the ID or birth date"]
    return "another " + " and another ".join(words)


def hashed_traits(patient: Patient) -> dict[str, str]:
    """``patient``'s traits as short digests (8 hex digits), compared as the traits are and kept in the study's
    header cache instead of names and birth dates. Not keyed with the installation's salt: the cache does not
    record the salt, and after a salt change one person's old and new digests differed, "two people" that stayed
    (attack run 15, A15-12); the cache holds the PatientID itself in plain text anyway."""
    import hashlib

    def digest(k: str, v: str) -> str:
        return hashlib.blake2b(f"person\0{k}\0{v}".encode(), digest_size=4).hexdigest()

    # the word sets word by word, so that hashed sets still tell whether two names share a word
    return {k: " ".join(sorted(digest("word", w) for w in v.split())) if k.endswith("set") or k in SETS
            else digest("order" if k == "swap" else k, v)  # compared with each other (``_swapped``)
            for k, v in patient.traits().items()}


def one_set_of_traits(all_traits: Iterable[dict[str, str]], names: bool = True) -> bool:
    """Whether these traits (one per scan or field under one PatientID) can all be one person's: no issuer or
    birth date differs (``other_person``), nor, with ``names``, a name after the fold (``other_name``)."""
    differ = other_traits if names else other_person
    seen: list[dict[str, str]] = []
    for traits in all_traits:  # each with every other: traits merged from several headers blended a Latin group of
        # one with the native group of another, and one person's headers were two people in one order (A29-1)
        if any(differ(t, traits) for t in seen):
            return False
        seen.append(traits)
    return True


def same_person_across_ids(mine: dict[str, str], theirs: list[dict[str, str]]) -> bool:
    """Whether traits ``mine`` name the person ``theirs`` (one set) all name, by what both give: a birth date and
    a name at least, and nothing differing (``one_set_of_traits``). Under two PatientIDs an absent trait proves
    nothing. The study index's rule for a scan listed under an old ID; the trainer's split joins more loosely
    (``trainer.manifest._maybe_one_person``: a joined namesake costs nothing there)."""
    merged: dict[str, str] = {}
    for traits in theirs:
        merged = {**traits, **merged}
    shared = mine.keys() & merged.keys()
    return ("birth" in shared and bool(shared & {"family", "words", "script"})
            and one_set_of_traits([*theirs, mine]))
