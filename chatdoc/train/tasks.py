"""Multi-task training data for the model's narrow jobs (``chatdoc.llm.jobs``): ack, question, answer.

Every example is one chatdoc JSONL conversation (``chatdoc.train.data``) with ``"target": "last"``: the prompt is
the job's system text (rendered by :mod:`chatdoc.llm.jobs`, exactly as at run time) + the recent turns, and only
the LAST doctor turn is trained on. ``"split"`` is decided here, by source conversation / MedQuAD document, so a
conversation never feeds both training and validation.

    ack        (a) real doctor acknowledgements from MTS-Dialog / ACI-BENCH: the first sentence of a doctor turn
               right after a patient turn, a statement of <= 15 words whose content words are all the patient's
               or in :data:`ACK_WORDS`; (b) reflective acknowledgements built from the patient's own words.
    question   real one-question doctor turns labelled with the question-bank item whose keywords they name
               (system text = ``question_system(persona, who, item.topic or item.slot)``, as ``respond`` builds
               it), plus the bank's own template questions.
    answer     MedQuAD (CC BY 4.0): passage = the start of the answer, target = one or two sentences copied from
               the passage (extractive); the question rephrased in a patient's voice. Plus dose/prescription
               refusals.
    consult    a share of the original consultation data (doctor turns with the persona system text).

MTS-Dialog's validation split is never used (it is ``chatdoc eval adapter``'s eval set).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatdoc.llm.jobs import ack_system, answer_system, question_system
from chatdoc.llm.prompt import Turn

TASKS = ("ack", "question", "answer", "consult")
# target mix of the training data (ack 35 / question 35 / answer 30, then consult ~15% of the total)
MIX = {"ack": 0.30, "question": 0.30, "answer": 0.25, "consult": 0.15}
CONTEXT_TURNS = 4  # recent turns shown with a job (settings.dialogue.wording_context_turns)
PAEDIATRIC_SHARE = 0.2
VAL_FRAC = 0.05
ACK_MAX_WORDS = 15
ANSWER_MAX_WORDS = 45
PASSAGE_MAX_WORDS = 90

# acknowledgement / empathy words an ack may use although the patient did not say them
ACK_WORDS = frozenset("""
okay ok alright all right sorry hear hearing heard sounds sound thank thanks understand understandable difficult
painful worrying worried worry see got it helpful know telling told good glad sure clear noted makes make sense must
hard tough really appreciate frightening scary unpleasant uncomfortable well great fine yes yeah hmm mm oh mhm
letting gotcha perfect excellent wonderful nice lovely awful horrible terrible upsetting stressful rough shame
""".split())

STOPWORDS = frozenset("""
a an the and or but so if then than that this these those there here it its it's i i'm i've i'd i'll me my mine myself
you you're you've you'd you'll your yours yourself we we're we've us our ours they they're they've them their theirs
he she him her his hers is am are was were be been being have has had having do does did doing done to of in on at by
for with about from into onto up down out over under again once as just very too also not no nor don't didn't
doesn't isn't aren't wasn't weren't haven't hasn't hadn't can't cannot won't wouldn't couldn't shouldn't can could
would should will shall may might what which who whom whose when where why how any some all each every both few more
most other such only own same s t now let let's that's what's there's here's what's um uh like kind sort bit lot
little much many yet still even ever because while until since before after during through off how's way thing things
something anything nothing everything one
""".split())

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("\u2019", "'"))


def _norm(w: str) -> str:
    w = re.sub(r"'s$", "", w)
    return w[:-1] if len(w) > 3 and w.endswith("s") else w


def content_words(text: str) -> set[str]:
    return {w for w in words(text) if w not in STOPWORDS}


def foreign_words(ack: str, patient: str) -> set[str]:
    """Content words of ``ack`` that are neither the patient's nor acknowledgement/empathy words."""
    said = {_norm(w) for w in words(patient)}
    return {w for w in content_words(ack) if w not in ACK_WORDS and _norm(w) not in said}


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENT.split(" ".join(text.split())) if s.strip()]


def _h(key: str) -> float:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64


def _pick(options: Sequence[str], key: str) -> str:
    return options[int(_h(key) * len(options)) % len(options)]


def split_of(group: str, val_frac: float = VAL_FRAC) -> str:
    return "validation" if _h("split:" + group) < val_frac else "train"


# ---------------------------------------------------------------------------------------------- examples


@dataclass
class Example:
    id: str
    task: str
    source: str  # mts | aci | medquad | bank | refusal
    group: str  # source conversation / MedQuAD document: decides the split
    system: str
    history: list[Turn]
    target: str
    persona: str = "gp"
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def split(self) -> str:
        return split_of(self.group)

    def to_json(self) -> dict[str, Any]:
        turns = [{"role": t.role, "text": t.text} for t in self.history] + [{"role": "doctor", "text": self.target}]
        return {"id": self.id, "system": self.system, "turns": turns, "target": "last", "split": self.split,
                "task": self.task, "source": self.source, "persona": self.persona, **({"meta": self.meta} if self.meta else {})}


@dataclass
class Personas:
    gp: str
    paediatric: str

    def system(self, name: str) -> str:
        return self.paediatric if name == "paediatric" else self.gp

    @staticmethod
    def who(name: str) -> str:
        # exactly as chatdoc.dialogue.respond builds it
        return "the parent about their child's" if name == "paediatric" else "the patient about their"


def load_personas(personas_dir: Path | None = None) -> Personas:
    from chatdoc.train.data import default_system

    if personas_dir is None:
        from chatdoc.config import get_settings

        s = get_settings()
        personas_dir = s.path(s.dialogue.personas_dir)
    return Personas(default_system(personas_dir, "gp"), default_system(personas_dir, "paediatric"))


def _persona_for(key: str) -> str:
    return "paediatric" if _h("persona:" + key) < PAEDIATRIC_SHARE else "gp"


def _context(turns: Sequence[Turn], k: int, n: int = CONTEXT_TURNS) -> list[Turn]:
    return list(turns[max(0, k - n):k])


# ---------------------------------------------------------------------------------------------- ack

_FILLER = re.compile(r"^(?:(?:um+|uh+|er+|well|yeah|yes|yep|so|okay|ok|oh|and|but|hmm|mm+|like|i mean|you know)"
                     r"\s*[,.]?\s+)+", re.I)
_DOSE = re.compile(r"\b\d+(?:\.\d+)?\s*(?:mg|mcg|µg|ml|g|grams?|milligrams?|units?|iu|tablets?|pills?)\b|\bdos(?:e|es|age|ing)\b",
                   re.I)
_ADVICE = re.compile(r"\b(?:should|need to|recommend|suggest|prescrib\w*|diagnos\w*|take|try|go to|let's|we'll|i'll|"
                     r"i'm going to|we're going to|i want you|you have an?|it's probably|sounds like you have)\b", re.I)
_WORRY = re.compile(r"\b(?:scared|worried|worrying|frightened|anxious|nervous|terrified|concerned|panick\w*|afraid|"
                    r"stressed)\b", re.I)
_PAIN = re.compile(r"\b(?:pain|painful|hurts?|hurting|sore|aching|aches?|agony|killing me)\b", re.I)
_SHORT_ANSWER = re.compile(r"^(?:no|nope|yes|yeah|yep|not really|none|never|i don't think so|about|around|maybe|"
                           r"a few|a couple|just|only|since|for)\b", re.I)

THANKS = ("Thank you, that's helpful to know.", "Okay, thank you for telling me.", "Thanks, that's helpful.",
          "Okay, that's helpful to know.", "Thank you, that's clear.", "Alright, thank you.",
          "Okay, got it, thank you.", "Thank you for letting me know.")
WORRIED = ("That sounds really worrying.", "I can understand why that's worrying.", "That must be difficult.",
           "I'm sorry, that sounds really hard.", "That sounds frightening, I'm sorry.", "I understand, that's a lot to deal with.")
PAINFUL = ("I'm sorry, that sounds really painful.", "That sounds painful, I'm sorry to hear it.",
           "I'm sorry you've been in pain.", "That sounds uncomfortable, I'm sorry.")
REFLECT_OPENERS = ("I'm sorry {c}.", "Okay, so {c}.", "Thank you, so {c}.", "I see, {c}.", "Okay, {c}.",
                   "Thanks for telling me {c}.", "I understand, {c}.", "Alright, {c}.")
_PRONOUNS = [(r"\bi'm\b", "you're"), (r"\bi've\b", "you've"), (r"\bi'd\b", "you'd"), (r"\bi'll\b", "you'll"),
             (r"\bi am\b", "you are"), (r"\bi was\b", "you were"), (r"\bmyself\b", "yourself"), (r"\bmy\b", "your"),
             (r"\bme\b", "you"), (r"\bmine\b", "yours"), (r"\bi\b", "you"), (r"\bwe\b", "you"), (r"\bour\b", "your"),
             (r"\bus\b", "you")]
_NO_REFLECT = re.compile(r"\b(?:sorry|what's|what|doctor|dr|okay|ok|think|know|mean|guess|remember|sure|you|your|"
                         r"he|she|they|yeah|um|uh)\b", re.I)
_REFLECT_START = re.compile(r"^(?:my|i|i've|i'm|i have|it|it's|the|this|there's|i've been|i keep|i get|i had|i feel)\b",
                            re.I)


def _second_person(clause: str) -> str:
    out = clause.lower().replace("\u2019", "'")
    for pat, rep in _PRONOUNS:
        out = re.sub(pat, rep, out)
    return out


_DAYS = ("monday tuesday wednesday thursday friday saturday sunday january february march april june july august "
         "september october november december").split()


def _proper(text: str) -> str:
    """Days and months capitalised (``saturday`` -> ``Saturday``)."""
    return re.sub(r"\b[a-z]+\b", lambda m: m.group(0).capitalize() if m.group(0) in _DAYS else m.group(0), text)


def reflect(patient: str, key: str) -> str | None:
    """A short acknowledgement built from the patient's own words, or None when nothing fits."""
    text = " ".join(patient.split())
    if not text or "?" in text:
        return None
    n = len(words(text))
    if _WORRY.search(text):
        return _pick(WORRIED, key)
    first = _FILLER.sub("", sentences(text)[0]).strip()
    if n <= 3 or (_SHORT_ANSWER.match(text) and n <= 8):
        return _pick(THANKS, key)
    painful = [a for a in PAINFUL if not foreign_words(a, text)]
    if painful and _PAIN.search(first) and _h("pain:" + key) < 0.5:
        return _pick(painful, key)
    clause = re.split(r",|;| - | but | because | so | and then ", first, maxsplit=1)[0].strip().rstrip(".!")
    cw = words(clause)
    if (_REFLECT_START.match(clause) and 4 <= len(cw) <= 10 and not _NO_REFLECT.search(clause)
            and not any(a == b for a, b in zip(cw, cw[1:]))) and not _DOSE.search(clause) and not re.search(r"\d", clause):
        c = _proper(_second_person(clause))
        opener = _pick(REFLECT_OPENERS, key)
        if opener.startswith("I'm sorry") and not _PAIN.search(clause) and not re.search(
                r"\b(?:swollen|bad|worse|awful|tired|sick|ill|unwell|rash|cough|fever|bleeding|dizzy|itchy)\b", clause):
            opener = "Okay, so {c}."
        out = opener.format(c=c)
        out = out[0].upper() + out[1:]
        if len(words(out)) <= ACK_MAX_WORDS and not foreign_words(out, text):
            return out
    if painful and _PAIN.search(text):
        return _pick(painful, key)
    if n <= 6:
        return _pick(THANKS, key)
    return None


_WEAK_ACK = frozenset({"yes", "yeah", "well", "oh", "hmm", "mm", "mhm", "it", "make", "makes", "know", "told"})


def real_ack(doctor: str, patient: str) -> str | None:
    """The first sentence of a doctor turn, when it is a short acknowledgement of the patient's turn."""
    sents = sentences(doctor)
    if not sents:
        return None
    s = sents[0]
    if "?" in patient or not (set(words(s)) & (ACK_WORDS - _WEAK_ACK)):
        return None
    if "?" in s or not s.endswith((".", "!")) or not 3 <= len(words(s)) <= ACK_MAX_WORDS:
        return None
    if _ADVICE.search(s) or _DOSE.search(s) or re.search(r"[\[\]<>:]", s) or re.search(r"\d", s):
        return None
    if foreign_words(s, patient):
        return None
    return s


def ack_examples(convs, personas: Personas, stats: Counter) -> Iterator[Example]:
    for conv in convs:
        t = conv.turns
        for k in range(1, len(t)):
            if t[k].role != "doctor" or t[k - 1].role != "patient":
                continue
            patient = t[k - 1].text
            key = f"{conv.id}#{k}"
            p = _persona_for(key)
            hist = _context(t, k)
            real = real_ack(t[k].text, patient)
            if real:
                stats[f"ack/{conv.source}/real"] += 1
                yield Example(f"ack-{key}-{p}", "ack", conv.source, conv.id, ack_system(personas.system(p)), hist, real, p,
                              {"kind": "real"})
                continue
            refl = reflect(patient, key)
            if refl:
                stats[f"ack/{conv.source}/reflective"] += 1
                yield Example(f"ack-{key}-{p}-r", "ack", conv.source, conv.id, ack_system(personas.system(p)), hist, refl, p,
                              {"kind": "reflective"})


# ---------------------------------------------------------------------------------------------- question

GENERIC_KEYWORDS = frozenset({"when", "start", "began", "where", "side", "feel", "like", "bad", "rate", "time", "comes",
                              "goes", "also", "help", "back", "point", "area", "taking", "10", "hot", "see", "other"})
_TOPIC_STOP = {"whether", "what", "when", "where", "they", "their", "from", "with", "about", "them"}


def bank_items() -> list[tuple[str, Any]]:
    """(question-set id, item) for every item of every question set, items with the same topic kept once."""
    from chatdoc.dialogue.questions import question_sets

    out, seen = [], set()
    for sid, qs in question_sets().items():
        for it in qs.items:
            k = (it.slot, it.topic)
            if k not in seen:
                seen.add(k)
                out.append((sid, it))
    return out


def item_keywords(item) -> list[str]:
    """The words that show a question names the item (as ``chatdoc.dialogue.respond`` checks it)."""
    kws = [k.lower() for k in item.keywords]
    kws += [w for w in re.findall(r"[a-z]{4,}", item.topic.lower()) if w not in _TOPIC_STOP]
    return kws


def names_item(question: str, item) -> bool:
    low = question.lower()
    return any(k in low for k in item_keywords(item))


def label_question(question: str, items) -> Any | None:
    """The bank item a question is about: most (specific) keyword hits at word starts; None when unclear."""
    low = question.lower()
    best, best_score = None, 0.0
    for _, it in items:
        score = 0.0
        for k in set(it.keywords):
            if re.search(r"\b" + re.escape(k), low):
                score += 0.4 if k in GENERIC_KEYWORDS else 1.0
        if score > best_score and any(k not in GENERIC_KEYWORDS and re.search(r"\b" + re.escape(k), low) for k in it.keywords):
            best, best_score = it, score
    return best


def single_question(doctor: str) -> str | None:
    """A doctor turn that is one short question (optionally after a short acknowledgement): the question."""
    sents = sentences(doctor)
    if not sents or doctor.count("?") != 1 or not sents[-1].endswith("?"):
        return None
    if any(len(words(s)) > 6 for s in sents[:-1]) or len(sents) > 3:
        return None
    q = sents[-1]
    q = re.sub(r"^(?:(?:and|so|okay|ok|um+|uh+|alright|now|well)\s*,?\s+)+", "", q, flags=re.I)
    if not q:
        return None
    q = q[0].upper() + q[1:]
    if not 4 <= len(words(q)) <= 25 or re.search(r"[\[\]<>:]|\b(?:doctor|dr)\b", q, re.I):
        return None
    return q


def question_examples(convs, personas: Personas, stats: Counter) -> Iterator[Example]:
    from chatdoc.dialogue.personas import to_parent
    from chatdoc.dialogue.respond import accept

    items = bank_items()
    for conv in convs:
        t = conv.turns
        for k in range(1, len(t)):
            if t[k].role != "doctor":
                continue
            q = single_question(t[k].text)
            if not q:
                continue
            item = label_question(q, items)
            if item is None:
                stats[f"question/{conv.source}/unlabelled"] += 1
                continue
            key = f"{conv.id}#{k}"
            p = _persona_for(key)
            target = to_parent(q) if p == "paediatric" else q
            if not accept(target, item, audience="parent" if p == "paediatric" else "self"):
                continue  # the run-time acceptance check: names the topic, asks the person in the chat
            stats[f"question/{conv.source}/real"] += 1
            yield Example(f"question-{key}-{p}", "question", conv.source, conv.id,
                          question_system(personas.system(p), Personas.who(p), item.topic or item.slot),
                          _context(t, k), target, p, {"slot": item.slot, "topic": item.topic or item.slot})


OPENERS = ("I've been having problems with {t}.", "It's about {t}.", "I wanted to talk about {t}.",
           "I'm here because of {t}.")


def bank_examples(personas: Personas, stats: Counter, repeats: int = 2) -> Iterator[Example]:
    from chatdoc.dialogue.personas import get_persona
    from chatdoc.dialogue.questions import question_sets

    try:
        paed = get_persona("paediatric")
    except Exception:  # noqa: BLE001 - a missing persona only removes the parent wording
        paed = None
    for sid, qs in question_sets().items():
        title = qs.title.lower().replace(" / ", " and ")
        for i, it in enumerate(qs.items):
            for r in range(repeats):
                key = f"bank-{sid}-{it.slot}-{r}"
                p = "paediatric" if r % 2 else "gp"
                target = paed.phrase(it.question, it.child) if (p == "paediatric" and paed) else it.question
                opener = _pick(OPENERS, key).format(t=title)
                if p == "paediatric":
                    opener = opener.replace("I've been having", "My child has been having").replace("I'm here", "We're here")
                hist = [] if sid == "general" and r == 0 else [Turn("patient", opener)]
                stats["question/bank/template"] += 1
                yield Example(f"question-{key}-{p}", "question", "bank", f"bank-{sid}-{i}",
                              question_system(personas.system(p), Personas.who(p), it.topic or it.slot), hist, target, p,
                              {"slot": it.slot, "topic": it.topic or it.slot})


# ---------------------------------------------------------------------------------------------- answer

MEDQUAD_SOURCE_NAMES = {"MPlusHealthTopics": "MedlinePlus", "GHR": "MedlinePlus Genetics", "GARD": "GARD",
                        "NIDDK": "NIDDK", "NINDS": "NINDS", "NIHSeniorHealth": "NIHSeniorHealth",
                        "CancerGov": "the National Cancer Institute", "NHLBI": "NHLBI", "CDC": "the CDC"}
_HEADER = re.compile(r"\b(?:key points?|summary|see also|references?|source|learn more|related information)\b\s*[:\-]?",
                     re.I)
_BAD_SENT = re.compile(r"(?:^|\s)[-\u2022*]\s|:|\?|\(see|\bclick\b|\bthis (?:section|page|summary|fact sheet|topic)\b|"
                       r"\bhttp|www\.|\bbelow\b|\bfollowing\b|\bthese resources\b|\bontology\b|\bwe\b|\bour\b", re.I)


def _focus(q: str, pat: str) -> str | None:
    m = re.match(pat, q, re.I)
    return m.group(1).strip() if m else None


def _lower(text: str) -> str:
    """Lower-case except acronyms (``COPD``, ``ALS``)."""
    return " ".join(w if (len(w) > 1 and w.isupper()) else w.lower() for w in text.split())


QUESTION_STYLES: list[tuple[str, tuple[str, ...]]] = [
    (r"^what (?:are|is \(are\)) the (?:signs and )?symptoms of (.+?)\s*\?*$",
     ("what are the symptoms of {x}?", "how would i know if i had {x}?", "what signs of {x} should i look out for?",
      "what symptoms does {x} cause?")),
    (r"^what (?:are|is \(are\)) the treatments? for (.+?)\s*\?*$",
     ("how is {x} treated?", "what can be done for {x}?", "is there any treatment for {x}?", "how do you treat {x}?")),
    (r"^what causes (.+?)\s*\?*$", ("what causes {x}?", "why do people get {x}?", "what actually causes {x}?")),
    (r"^how to prevent (.+?)\s*\?*$", ("how can i avoid getting {x}?", "can {x} be prevented?", "how do i prevent {x}?")),
    (r"^what is the outlook for (.+?)\s*\?*$", ("what's the outlook with {x}?", "will {x} get better?",
                                               "what usually happens with {x}?")),
    (r"^how many people are affected by (.+?)\s*\?*$", ("how common is {x}?", "do many people get {x}?")),
    (r"^is (.+?) inherited\s*\?*$", ("does {x} run in families?", "can {x} be passed down?", "is {x} inherited?")),
    (r"^who is at risk for (.+?)\?*\s*\?*$", ("who is more likely to get {x}?", "who gets {x}?", "am i at risk of {x}?")),
    (r"^how to diagnose (.+?)\s*\?*$", ("how do they find out if you have {x}?", "how is {x} diagnosed?")),
    (r"^what (?:are|is \(are\)) the genetic changes related to (.+?)\s*\?*$", ("what genes are involved in {x}?",
                                                                "is {x} caused by genes?")),
    (r"^what (?:is|are) \(are\) (.+?)\s*\?*$", ("what is {x}?", "what actually is {x}?", "can you tell me what {x} is?",
                                               "what's {x}?", "i've heard of {x}, what is it?", "what is {x} exactly?")),
    (r"^what (?:is|are) (.+?)\s*\?*$", ("what is {x}?", "what actually is {x}?", "can you tell me what {x} is?")),
]


def patient_question(question: str, key: str) -> str:
    q = " ".join(question.split())
    for pat, styles in QUESTION_STYLES:
        x = _focus(q, pat)
        if x:
            return _pick(styles, key).format(x=_lower(x.rstrip("?").strip()))
    q = _lower(re.sub(r"\s+\?", "?", q))
    return q if q.endswith("?") else q + "?"


def passage_of(answer: str, max_words: int = PASSAGE_MAX_WORDS) -> str | None:
    """The start of an answer, whole sentences up to ``max_words`` (leading question/header sentences dropped)."""
    text = " ".join(answer.split())
    if _HEADER.match(text):
        return None
    sents = sentences(text)
    while sents and (sents[0].endswith("?") or len(words(sents[0])) < 4):
        sents.pop(0)
    out: list[str] = []
    n = 0
    for s in sents:
        w = len(s.split())
        if out and n + w > max_words:
            break
        if not out and w > max_words:
            return None
        out.append(s)
        n += w
    return " ".join(out) if out else None


def _good_answer_sentence(s: str) -> bool:
    n = len(words(s))
    return (6 <= n <= 40 and s.endswith(".") and not _BAD_SENT.search(s) and not _DOSE.search(s)
            and not _HEADER.search(s) and not re.search(r"(?:\b[A-Z][\w-]*\s+){4,}", s) and s.count(",") <= 4 and s.count(";") == 0)


def answer_target(passage: str, key: str) -> str | None:
    sents = sentences(passage)
    if not sents or not _good_answer_sentence(sents[0]):
        return None
    out = sents[0]
    if len(sents) > 1 and _good_answer_sentence(sents[1]) and _h("two:" + key) < 0.5:
        two = out + " " + sents[1]
        if len(two.split()) <= ANSWER_MAX_WORDS:
            out = two
    return out if len(out.split()) <= ANSWER_MAX_WORDS else None


def medquad_rows(data_dir: Path, stats: Counter) -> Iterator[dict[str, Any]]:
    f = Path(data_dir) / "medquad" / "medquad.jsonl"
    with open(f, encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            try:
                row = json.loads(line)
                if not isinstance(row, dict) or not isinstance(row.get("question"), str) or not isinstance(row.get("answer"), str):
                    raise ValueError("question/answer missing")
            except (ValueError, json.JSONDecodeError):
                stats["answer/medquad/bad_record"] += 1
                continue
            yield row


def answer_examples(data_dir: Path, personas: Personas, stats: Counter) -> Iterator[Example]:
    seen_q: set[str] = set()
    seen_id: Counter = Counter()
    for row in medquad_rows(data_dir, stats):
        try:
            pid = str(row.get("id") or "")
            doc = pid.split("-")[0] or pid
            q = " ".join(row["question"].split())
            if q.lower() in seen_q:
                continue
            passage = passage_of(row["answer"])
            if not passage:
                stats["answer/medquad/no_passage"] += 1
                continue
            target = answer_target(passage, pid)
            if not target:
                stats["answer/medquad/no_target"] += 1
                continue
            seen_q.add(q.lower())
            p = _persona_for("medquad:" + pid)
            source = MEDQUAD_SOURCE_NAMES.get(str(row.get("source")), str(row.get("source") or "MedlinePlus"))
            pq = patient_question(q, pid)
            stats["answer/medquad/extractive"] += 1
            # MedQuAD ids repeat (across its sources, and a few within one): the id names the source and the
            # repeat; the split stays by document id
            eid = f"answer-medquad-{row.get('source')}-{pid}-{p}"
            seen_id[eid] += 1
            if seen_id[eid] > 1:
                eid += f"~{seen_id[eid]}"
            yield Example(eid, "answer", "medquad", "medquad-" + doc,
                          answer_system(personas.system(p), passage, source), [Turn("patient", pq)], target, p,
                          {"passage": " ".join(passage.split()), "source_name": source, "qtype": row.get("qtype"),
                           "medquad_source": row.get("source")})
        except Exception:  # noqa: BLE001 - one bad record is skipped and counted, never fatal
            stats["answer/medquad/bad_record"] += 1


REFUSALS = (
    "I'm sorry, I can't advise on doses, but your pharmacist or GP can tell you what is safe.",
    "I can't give advice about doses or prescriptions; please ask your pharmacist or GP.",
    "That's a question about your dose, which I can't answer, but your pharmacist can help.",
    "I'm not able to advise on how much medicine to take; your GP or pharmacist can.",
    "I can't change or recommend doses, so please check with your GP or pharmacist.",
    "Dosing needs a pharmacist or doctor, so I can't advise on that, I'm sorry.",
    "Please ask your pharmacist or GP about that, as I can't give advice on doses.",
    "I'm sorry, I can't help with doses or prescriptions, but your pharmacist or GP can.",
)
DRUGS = ("tramadol", "paracetamol", "ibuprofen", "codeine", "amoxicillin", "sertraline", "metformin", "naproxen",
         "co-codamol", "citalopram", "prednisolone", "insulin", "diazepam", "warfarin", "gabapentin", "morphine",
         "my inhaler", "calpol", "my blood pressure tablets", "amitriptyline")
DOSE_QUESTIONS = (
    "how many of my {d} can i take?", "can you up my dose of {d}?", "is it ok to take 3 {d} at once?",
    "how much {d} should i give my son?", "can i double my {d} tonight?", "can you prescribe me some {d}?",
    "what dose of {d} should i be on?", "can i take {d} every two hours?", "how much {d} is too much?",
    "can i have a stronger dose of {d}?", "my {d} isn't working, can i take more?", "how many mg of {d} can i take a day?",
)


def refusal_examples(data_dir: Path, personas: Personas, stats: Counter, n: int = 150) -> Iterator[Example]:
    passages = []
    for row in medquad_rows(data_dir, Counter()):
        if row.get("source") == "MPlusHealthTopics":
            p = passage_of(row["answer"])
            if p:
                passages.append(p)
        if len(passages) >= 200:
            break
    if not passages:
        return
    rng = random.Random(7)
    for i in range(n):
        d = rng.choice(DRUGS)
        q = rng.choice(DOSE_QUESTIONS).format(d=d).replace("my my ", "my ").replace("of my ", "of my ")
        p = "paediatric" if rng.random() < PAEDIATRIC_SHARE else "gp"
        passage = rng.choice(passages)
        stats["answer/refusal/dose"] += 1
        yield Example(f"answer-refusal-{i}-{p}", "answer", "refusal", f"refusal-{i}",
                      answer_system(personas.system(p), passage, "MedlinePlus"),
                      [Turn("patient", q)], rng.choice(REFUSALS), p,
                      {"kind": "refusal", "passage": " ".join(passage.split()), "source_name": "MedlinePlus"})


# ---------------------------------------------------------------------------------------------- consult


def consult_examples(convs, personas: Personas, stats: Counter, context: int = 6) -> Iterator[Example]:
    """Original consultation data: a doctor turn with the (gp) persona system text, as the first adapter learnt."""
    for conv in convs:
        t = conv.turns
        for k in range(1, len(t)):
            if t[k].role != "doctor" or len(words(t[k].text)) > 60:
                continue
            key = f"{conv.id}#{k}"
            stats[f"consult/{conv.source}/turn"] += 1
            yield Example(f"consult-{key}", "consult", conv.source, conv.id, personas.gp, _context(t, k, context),
                          t[k].text, "gp")


# ---------------------------------------------------------------------------------------------- build


def _dialogues(data_dir: Path, stats: Counter):
    from chatdoc.train.data import DataError, load_aci, load_mts

    convs = []
    for name, loader in (("mts", load_mts), ("aci", load_aci)):
        try:
            convs += [c for c in loader(data_dir) if c.split != "eval"]
        except DataError:
            stats[f"missing/{name}"] += 1
    return convs


def _take(examples: list[Example], n: int | None, seed: str) -> list[Example]:
    examples = sorted(examples, key=lambda e: _h(seed + e.id))
    return examples if n is None else examples[:n]


def build_tasks(data_dir: Path, *, limit_per_task: int | None = None, total: int = 6000,
                personas: Personas | None = None) -> tuple[list[Example], dict[str, Any]]:
    """All task examples (mixed by :data:`MIX`, at most ``total`` or ``limit_per_task`` per task) and a report."""
    data_dir = Path(data_dir)
    personas = personas or load_personas()
    stats: Counter = Counter()
    convs = _dialogues(data_dir, stats)
    pools: dict[str, list[Example]] = {
        "ack": list(ack_examples(convs, personas, stats)),
        "question": list(question_examples(convs, personas, stats)),
        "answer": [],
        "consult": list(consult_examples(convs, personas, stats)),
    }
    bank = list(bank_examples(personas, stats))
    refusals: list[Example] = []
    if (data_dir / "medquad" / "medquad.jsonl").is_file():
        pools["answer"] = list(answer_examples(data_dir, personas, stats))
        refusals = list(refusal_examples(data_dir, personas, stats))
    else:
        stats["missing/medquad"] += 1
    out: list[Example] = []
    for task in TASKS:
        n = round(total * MIX[task]) if limit_per_task is None else limit_per_task
        fixed = (bank if task == "question" else refusals if task == "answer"
                 else [e for e in pools["ack"] if e.meta.get("kind") == "real"] if task == "ack" else [])
        if task == "ack":
            pools["ack"] = [e for e in pools["ack"] if e.meta.get("kind") != "real"]
        if limit_per_task is not None:
            fixed = fixed[: max(1, limit_per_task // 10)] if fixed else []
        out += fixed + _take(pools[task], max(0, n - len(fixed)), task)
    out = _take(out, None, "mix")
    report = _report(out, stats)
    return out, report


def _report(examples: Sequence[Example], stats: Counter) -> dict[str, Any]:
    per: dict[str, Any] = {}
    for e in examples:
        d = per.setdefault(e.task, {"total": 0, "splits": Counter(), "sources": Counter(), "personas": Counter()})
        d["total"] += 1
        d["splits"][e.split] += 1
        d["sources"][e.source] += 1
        d["personas"][e.persona] += 1
    return {
        "examples": len(examples),
        "tasks": {k: {**v, "splits": dict(v["splits"]), "sources": dict(v["sources"]), "personas": dict(v["personas"])}
                  for k, v in per.items()},
        "candidates": dict(sorted(stats.items())),
        "skipped": {k: v for k, v in sorted(stats.items()) if k.endswith(("bad_record",)) or k.startswith("missing/")},
    }


def write_tasks(examples: Sequence[Example], path: Path) -> int:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for e in examples:
            f.write(json.dumps(e.to_json(), ensure_ascii=False) + "\n")
    return len(examples)
