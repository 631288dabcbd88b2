"""Rule-based clinical extraction from (redacted) patient turns into the structured history.

Every value stored is a span of what the patient said (or a fixed normalisation of it, such as a 0-10
severity number or "non-smoker" from "I don't smoke"), so a summary built from the state cannot
contain a fact the patient did not give. Symptoms come from the turn's typed findings (one analysis per turn,
:mod:`chatdoc.clinical`, shared with triage): "no fever" is an absent finding and becomes a pertinent negative,
"I had a stroke 10 years ago" goes to the past history, "allergic to penicillin, I get a rash" keeps the rash
with the allergy. Short answers ("no", "I don't know", "yes") are recorded
against the slot of the question just asked (``last_slot``) and the symptoms that question named.

The 270M base model is not used here: measured on the scripted cases it added nothing the rules
missed and invented values, so rules carry extraction (see chatdoc/dialogue/README.md).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass

from chatdoc.clinical.attributes import NUM_WORDS, PATTERNS, UNIT, merge
from chatdoc.clinical.attributes import first as _first
from chatdoc.clinical.findings import Attributes, Findings
from chatdoc.clinical.lexicon import get_lexicon, stems
from chatdoc.dialogue.state import HPI_FIELDS, LIST_SLOTS, History, Profile

# symptom attributes (onset, duration, severity, site, character, radiation, timing, aggravating, relieving) are
# read by the turn analysis (chatdoc.clinical.attributes) and taken from the findings (Extractor._attributes);
# the patterns below are history slots that are not symptom attributes
RX = {
    "allergy": re.compile(r"\ballergic to\s+([a-z][a-z -]{1,30}?)(?=[.,;!?]|\s+and\b|\s+but\b|$)|\b([a-z-]{3,20}) allergy\b"),
    "no_allergy": re.compile(r"\b(?:no|not any|dont have any|don'?t have any|nkda|no known)\s+(?:known\s+|drug\s+)?allerg\w*"
                             r"|\bnot allergic\b|\bno allergies\b"),
    "no_meds": re.compile(r"\b(?:not (?:on|taking) any|don'?t take any|dont take any|no)\s+(?:regular\s+)?"
                          r"(?:medicines?|medications?|meds|tablets|pills|drugs)\b"),
    "no_pmh": re.compile(r"\b(?:no|not any|dont have any|don'?t have any)\s+(?:other\s+)?(?:medical (?:conditions?|problems?|history)|"
                         r"health (?:conditions?|problems?)|long-?term conditions?|conditions?)\b|\bfit and well\b|\bnever been ill\b"),
    "no_fh": re.compile(r"\bno family history\b|\bnothing (?:that )?runs in (?:my|the) family\b"),
    "smoking_amount": re.compile(r"\b(?:smoke|smoking)\s+(?:about\s+|around\s+)?(\d+|a pack|half a pack|\w+)\s+(?:cigarettes?\s+|cigs?\s+)?"
                                 r"(?:a|per|each)\s+day\b"),
    "ex_smoker": re.compile(r"\b(ex-?smoker|used to smoke|gave up smoking|quit smoking|stopped smoking)\b"),
    "non_smoker": re.compile(r"\b(?:don'?t|dont|do not|never)\s+(?:\w+\s+)?smoked?\b|\bnon-?smoker\b"),
    "smoker": re.compile(r"\b(?:i smoke|i'?m a smoker|im a smoker|smoker|i vape|vaping)\b"),
    "alcohol_amount": re.compile(r"\b((?:about |around )?\d+\s+units?(?:\s+(?:a|per)\s+(?:week|day))?|drink (?:\w+\s+){0,4}?(?:a|per|each|every)\s+"
                                 r"(?:week|night|day|weekend)|(?:drink|drinks) (?:socially|occasionally|rarely|at weekends|"
                                 r"most nights|every night))\b"),
    "no_alcohol": re.compile(r"\b(?:don'?t|dont|do not|never)\s+drink\b|\bteetotal\b|\bno alcohol\b"),
    "drugs_use": re.compile(r"\b(cannabis|weed|marijuana|cocaine|ecstasy|mdma|heroin|ketamine|speed|amphetamines?)\b"),
    "no_drugs": re.compile(r"\bno (?:recreational |street |illegal )?drugs\b|\b(?:don'?t|dont|never) (?:take|use|do) (?:any )?"
                           r"(?:recreational |street |illegal )?drugs\b"),
    "occupation": re.compile(r"\bi work (?:as|in) (?:a |an )?([a-z][a-z ]{2,30}?)(?=[.,;!?]|\s+and\b|$)"
                             r"|\bi(?:'?m| am) (?:a |an )((?:\w+ )?(?:teacher|nurse|driver|builder|engineer|student|accountant|"
                             r"cleaner|chef|cook|carer|farmer|mechanic|electrician|plumber|programmer|developer|manager|"
                             r"lawyer|solicitor|labourer|postman|police officer|firefighter|soldier|waiter|waitress|"
                             r"receptionist|hairdresser|pharmacist|scientist|designer|administrator|shop assistant))\b"
                             r"|\bi(?:'?m| am) (retired|unemployed|a student|off work|self-employed)\b"),
    "sex": re.compile(r"\bi(?:'?m| am) (?:a |an )?(?:\d{1,3}[- ]years?[- ]old |[a-z]+[- ]years?[- ]old )?(male|female|man|woman|guy|lady)\b|\bmy (son|daughter|boy|girl)\b"),
    "concern": re.compile(r"\b(?:worried|worry|worrying|concerned|scared|afraid|frightened|anxious that|terrified|"
                          r"could it be|is it|might it be|do you think)\b"),
    "family": re.compile(r"\b(mum|mom|mother|dad|father|brother|sister|grandma|grandmother|granny|nan|grandad|grandfather|"
                         r"grandpa|aunt|auntie|uncle|cousin|parents|family|son|daughter)\b"),
    "finish": re.compile(r"\b(?:that'?s all|that is all|that'?s it|thats it|can we (?:finish|stop|end|wrap up)|"
                         r"i(?:'?d| would) like to (?:finish|stop|end)|i(?:'?m| am) done|no more questions|finish (?:now|up|here)|"
                         r"let'?s (?:finish|stop|end)|end (?:the|this) (?:chat|consultation|conversation)|goodbye|bye)\b"),
}

NEG_ANSWER = re.compile(r"^\W*(?:no+|nope|nah|none|never|nothing|neither|not really|not at all|not that i(?:'ve)? noticed|"
                        r"no,? (?:i )?(?:haven'?t|havent|don'?t|dont|didn'?t|am not|'?m not|im not)|i (?:haven'?t|havent|don'?t|dont|"
                        r"didn'?t|am not|'?m not)|i'm not|im not|negative)\b", re.I)
YES_ANSWER = re.compile(r"^\W*(?:yes|yeah|yep|yup|aye|i have|i do|i am|i did|sometimes|a (?:bit|little)|definitely|"
                        r"correct|that'?s right|it does|it is|they are)\b", re.I)
UNKNOWN_ANSWER = re.compile(r"\b(?:(?:i )?(?:don'?t|dont|do not) know|not sure|no idea|unsure|can'?t remember|cant remember|"
                            r"don'?t remember|dont remember|can'?t say|no clue|not that i(?:'m| am|m)? (?:know|aware)(?: of)?|not that i(?:'ve| have)? noticed)\b", re.I)
# questions about a NORMAL state ("passing urine as normal?", "does it fade?"): a bare yes/no must not become a
# derived finding; the verbatim answer is kept instead
NORMAL_Q = re.compile(r"\b(?:as normal|normally|as usual|okay|ok|fine|able to|does it fade|do they fade|as much as usual)\b", re.I)
OPEN_SLOTS = ("hpi.associated", "pmh", "medications", "allergies", "family_history", "social.smoking", "social.alcohol",
              "social.drugs", "social.occupation")
_MED_WORDS = re.compile(r"^(?:takes|uses|is on)\b|\b(?:medications?|medicines?|pills?|tablets?|inhalers?|managed with|treated with|"
                        r"treatment|prescribed|supplements?|injections?)\b", re.I)
_FIT = {
    "onset": re.compile(r"\b(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten|a few|few|several|couple|a)\s+(?:\w+\s+)?"
                        r"(?:min\w*|hours?|days?|weeks?|months?|years?|nights?)\b|\b(?:yesterday|today|ago|since|last (?:night|week|"
                        r"month|year)|this (?:morning|week|month)|suddenly|sudden|gradual\w*|birth|recently|started|began|"
                        r"overnight|morning|evening)\b"),
    "location": re.compile(r"\b(?:head|forehead|temples?|eyes?|face|jaw|neck|throat|chest|ribs?|stomach|tummy|belly|abdomen|"
                           r"back|shoulders?|arms?|hands?|legs?|knees?|feet|foot|hips?|groin|ears?|side|left|right|upper|lower|"
                           r"skin|breast|flank|pelvis|joints?|all over|everywhere|limbs?|fingers?|toes?|wrists?|ankles?)\b"),
    "character": re.compile(r"\b(?:throbbing|pounding|sharp|stabbing|dull|ach\w*|burning|crushing|tight\w*|squeezing|pressing|"
                            r"pressure|heavy|heaviness|cramp\w*|gnawing|shooting|tearing|colicky|dry|chesty|productive|itchy|"
                            r"spinning|like|feels?|blurr\w*|double|weak\w*|sore)\b"),
    "radiation": re.compile(r"\b(?:spread\w*|radiat\w*|goes|go|moves?|travels?|shoots?|arm|jaw|neck|back|shoulder|leg|nowhere|"
                            r"stays)\b"),
    "timing": re.compile(r"\b(?:constant\w*|all the time|comes? and goes?|on and off|off and on|intermittent\w*|every|night|"
                         r"morning|evening|episodes?|attacks?|minutes?|hours?|daily|times? a|after|when|worse|better)\b"),
    "aggravating": re.compile(r"\b(?:worse|worsen\w*|when|after|with|if|during|activity|activities|exercise|exert\w*|eating|"
                              r"lying|standing|walking|moving|movement|breath\w*|cough\w*|stress|triggers?|brings? (?:it )?on)\b"),
    "relieving": re.compile(r"\b(?:better|improv\w*|help\w*|eases?|eased|reliev\w*|rest\w*|sleep\w*|tablets?|medicines?|"
                            r"medication|paracetamol|ibuprofen|lying|sitting|nothing)\b"),
}
_FIT["duration"] = _FIT["onset"]
_GREETING = re.compile(r"^\W*(?:hello|hi|hey|hiya|good (?:morning|afternoon|evening|day)|thanks?(?: you)?|doctor|doc)\W*$", re.I)
_INTRO = re.compile(r"^\W*(?:(?:hello|hi)\W+)?(?:i(?:'m| am|m) (?:a |an )?(?:\d+|[a-z]+)[- ](?:years?|months?|weeks?|days?)[- ]old"
                    r"(?:\s+\w+)?\W*$|i(?:'m| am|m) here (?:about|for|with) my [^.,;]*$|my name is\b|i(?:'m| am|m) (?:a )?"
                    r"(?:man|woman|male|female|person)\W*$)", re.I)
_LEAD = re.compile(r"^\W*(?:(?:yes|yeah|yep|well|so|um+|erm|okay|ok|actually|oh)\b[\s,.!-]*)+", re.I)
_NEG_CLAUSE = re.compile(r"^(?:no\b[\s,.!-]*)?(?:i (?:haven'?t|have not|havent|hadn'?t) (?:had|noticed|got|experienced|been|seen)"
                         r"(?: any)?|i (?:don'?t|do not|dont|didn'?t) (?:have|get|take|use|notice|experience)(?: any)?|"
                         r"there (?:hasn'?t|has not|haven'?t|wasn'?t) been(?: any)?|no(?: history of)?)\s+(.+)$", re.I)
_THIRD = [
    (re.compile(r"^i(?:'ve| have) been (?:having|experiencing|getting|feeling|noticing|suffering from)\s+", re.I), ""),
    (re.compile(r"^i(?:'ve| have) (?:had|got|noticed|experienced)\s+", re.I), ""),
    (re.compile(r"^i(?:'m| am|m) (?:having|experiencing|getting|suffering from)\s+", re.I), ""),
    (re.compile(r"^i (?:have|get|experience|notice)\s+", re.I), ""),
    (re.compile(r"^i(?:'m| am|m)\s+", re.I), "is "),
    (re.compile(r"^i (take|drink|work|smoke|live|use|play|attend|eat|feel|think|go|do)\b", re.I), lambda m: m.group(1).lower() + ("es" if m.group(1).lower() in ("go", "do") else "s")),
    (re.compile(r"^i (\w+ed)\b", re.I), lambda m: m.group(1).lower()),
    (re.compile(r"^i\s+", re.I), "reports "),
]


_PAST_CONDITION = re.compile(r"\b(?:history of|diagnosed with|diagnosis of|treated for|known to have|operation for|"
                             r"surgery for)\b[^;:!?]*$", re.I)


def _is_past_condition(before: str) -> bool:
    m = _PAST_CONDITION.search(before)
    return bool(m) and not re.search(rf"\b{NUM_WORDS}[- ]{UNIT}[- ]$", before[:m.start()], re.I)


def _clause_around(text: str, start: int, end: int, limit: int = 80) -> str:
    """The clause of ``text`` (between , ; . ! ?) holding the span, clipped around it to ``limit`` chars."""
    a = max(text.rfind(c, 0, start) for c in ",;.!?") + 1
    ends = [i for i in (text.find(c, end) for c in ",;.!?") if i != -1]
    b = min(ends) if ends else len(text)
    clause = text[a:b].strip()
    if len(clause) > limit:
        clause = text[max(a, start - limit // 2):min(b, end + limit // 2)].strip()
    return clause


def third_person(sentence: str) -> str:
    """Light third-person rewrite of a patient sentence ("I have been having X" -> "X", "I take X" -> "takes X")."""
    s = _LEAD.sub("", sentence.strip()).strip(" .,;!?")
    for rx, rep in _THIRD:
        new = rx.sub(rep, s, count=1)
        if new != s:
            s = new
            break
    s = re.sub(r"\bmy\b", "their", s, flags=re.I)
    s = re.sub(r"\bI(?:'m| am)\b", "they are", s)
    s = re.sub(r"\bI(?:'ve| have)\b", "they have", s)
    s = re.sub(r"\bI\b", "they", s)
    s = re.sub(r"\bme\b", "them", s)
    return " ".join(s.split())


def is_intro(sentence: str) -> bool:
    return bool(_GREETING.match(sentence) or _INTRO.match(sentence))


def _words(s: str) -> set[str]:
    """Stemmed content words (``lexicon.stems``)."""
    return stems(s, _STOP)


_STOP = set("""the and with have has had been having for that this was were are you your yes not any than then they their
them from about into over also just very really some when what been its it's i've i'm ive im dont don't haven't havent
didnt didn't there here well okay think know""".split())



# ---------------------------------------------------------------------------------------------- untrusted parts
# Patient text is data: what the patient typed as ANOTHER speaker's words ("Doctor: I prescribe ...", "System: ...",
# "# Approved by Dr ...", "[doctor] ...") or as instructions to the system ("ignore previous instructions", "add X to
# the medication list") is not the patient's history. It is kept verbatim for staff ("not_used"), never filed as a
# complaint, symptom, medication or anything else.
_RECORD_TARGET = (r"(?:summary|summaries|notes?|records?|report|chart|transcript|export|medication list|meds list|"
                  r"list of (?:medications?|medicines?|meds)|(?:current |regular )?medications?|(?:current |regular )?meds|"
                  r"prescription)")
# an instruction addressed to the system about the record: an imperative (at the start of the sentence, or after
# "can you", "you must", "I want you to") whose object is the summary / notes / medication list
_RECORD_INSTRUCTION = re.compile(
    r"^\W*(?:(?:please|now|also|and|then|just|kindly|so|ok(?:ay)?|assistant|chatdoc|bot|ai)\W+)*"
    r"(?:(?:can|could|would|will) you\s+(?:please\s+)?|you (?:should|must|need to|have to|will|shall)\s+(?:now\s+)?|"
    r"i (?:want|need|would like|'d like) you to\s+)?"
    r"(?:add|put|write|record|note down|list(?!\s+of\b)|include|insert|enter|file|change|set|mark|update|state|document|"
    r"log|rewrite|edit|alter|modify|fill in|complete|generate|output|print|format|approve|sign(?: off)?|delete|remove)"
    rf"\b(?!\s*[:\-])[^.!?\n]{{0,80}}?\b{_RECORD_TARGET}\b"
    rf"|\b(?:the|this|my|your) (?:summary|record|notes?|report|transcript|export)\s+(?:should|must|will|shall|needs? to)\s+"
    r"(?:say|state|read|show|include|list|contain)\b",
    re.I,
)
_UNIT_SPLIT = re.compile(r"(?<![Dd][Rr]\.)(?<![Mm][Rr]\.)(?<=[.!?;])\s+")


def _is_instruction(unit: str) -> bool:
    from chatdoc.safety import classify_request

    return classify_request(unit).injection or bool(_RECORD_INSTRUCTION.search(unit))


def split_untrusted(text: str) -> tuple[str, list[str]]:
    """(the patient's own words, the parts that are not).

    A line (or a sentence) starting with another speaker's or an approval marker (``chatdoc.llm.prompt.ROLE_MARKER``)
    opens that speaker's part; lines without a marker continue it (as in a transcript), until a ``Patient:`` marker.
    From the first instruction-like sentence on, the rest of the turn is not the patient's history. The patient's
    own ``Patient:`` label is dropped. Returns ``text`` unchanged when nothing was found."""
    from chatdoc.llm.prompt import role_marker, split_lines

    own: list[str] = []
    other: list[str] = []
    changed = False
    speaker_other = tainted = False
    for line in split_lines(text):
        if not line.strip():
            continue
        mine, theirs = [], []
        for unit in _UNIT_SPLIT.split(line.strip()):
            if not tainted and (rm := role_marker(unit)):
                speaker_other = rm[0] == "other"
                if not speaker_other:
                    unit, changed = unit[rm[1]:].strip(), True
            if not (tainted or speaker_other) and _is_instruction(unit):
                tainted = True
            if tainted or speaker_other:
                theirs.append(unit)
            elif unit:
                mine.append(unit)
        if mine:
            own.append(" ".join(mine))
        if theirs:
            other.append(" ".join(theirs))
    if not other and not changed:
        return text, []
    return "\n".join(own), other


# what a drug is mentioned FOR: asked about, requested, to be prescribed - not a medicine the patient takes
_DRUG_REQUEST = re.compile(
    r"\b(?:prescribe|prescribing|prescription|(?:can|could|may|might|should|shall|must) (?:i|we|they|he|she|you)|"
    r"is (?:it|that|this) (?:ok|okay|safe|alright|fine|bad|good|possible)|would (?:it|that) be|(?:do|does|did) (?:i|we|they|he|she) "
    r"need|am i (?:allowed|able)|(?:give|get|send|recommend|suggest) (?:me|us|him|her|them)|i(?:'d| would) like|i want|"
    r"i need (?:some|a|an|to (?:get|have|take))|what (?:dose|dosage|about)|how (?:much|many|often)|which is better)\b", re.I)
_DRUG_CURRENT = re.compile(
    r"\b(?:i(?:'m| am|m) (?:already |currently |still )?(?:on|taking|using)|i (?:already |currently |still |regularly )?"
    r"(?:take|use)|i(?:'ve| have) been (?:on|taking|using)|(?:currently|already|still) (?:on|taking|using)|"
    r"i was (?:started|put) on|i(?:'ve| have) (?:started|been put on))\b"
    r"|\bmy\s+(?:usual\s+|regular\s+|daily\s+|normal\s+|current\s+)?$", re.I)
_QUESTION_START = re.compile(r"^\W*(?:can|could|may|might|should|shall|would|will|is|are|am|do|does|did|what|which|how|why|"
                             r"when|where|must)\b", re.I)


def _mentioned_not_taken(low: str, start: int) -> bool:
    """The drug at ``low[start:]`` is asked about or requested in its sentence, not said to be taken."""
    a = max(low.rfind(c, 0, start) for c in ".!?;\n") + 1
    ends = [i for i in (low.find(c, start) for c in ".!?;\n") if i != -1]
    b = min(ends) + 1 if ends else len(low)
    sent, pre = low[a:b], low[a:start]
    req = list(_DRUG_REQUEST.finditer(pre))
    req_end = req[-1].end() if req else -1
    # "i take" inside "can i take" belongs to the request; a use stated after it ("... with my ramipril") does not
    cur = [c for c in _DRUG_CURRENT.finditer(pre) if c.start() >= req_end]
    if req and not cur:
        return True
    question = sent.rstrip().endswith("?") or bool(_QUESTION_START.match(sent))
    return question and not cur


@dataclass
class Hit:
    concept: str
    start: int
    end: int
    text: str
    negated: bool


def _lower(text: str) -> str:
    return text.replace("\u2019", "'").replace("\u2018", "'").lower()


def find_concepts(text: str, findings: Findings | None = None, *, any_assertion: bool = False) -> list[Hit]:
    """Symptom concepts of ``text`` from the turn analysis (:mod:`chatdoc.clinical`): present, possible and absent
    ones (``negated``), one concept per span. ``findings``: the turn's analysis when the caller has it (the graph
    analyses each patient turn once); ``any_assertion``: also what is asked about, hypothetical, historical or
    another person's (a doctor's question "any chest pain?" names concepts without asserting them)."""
    from chatdoc.clinical.analyse import analyse_turn

    lex = get_lexicon()
    f = findings if findings is not None and findings.text == text else analyse_turn(text, 0)
    hits = []
    for x in f.items:
        if x.concept not in lex.concepts or x.subject != "patient" or x.superseded_by is not None:
            continue
        if not any_assertion and x.assertion not in ("present", "possible", "absent"):
            continue
        if x.method == "semantic":
            continue  # paraphrase matches raise triage; the history keeps to what a pattern named (no inferred labels)
        hits.append(Hit(x.concept, x.start, x.end, x.evidence, x.assertion == "absent"))
    # one concept per span: a longer span covering a shorter one wins, then the concept the question sets ask about
    hits.sort(key=lambda h: (-(h.end - h.start), lex.rank.get(h.concept, 1), h.start))
    out: list[Hit] = []
    for h in hits:
        if any(o.start <= h.start and h.end <= o.end for o in out):
            continue
        out.append(h)
    out.sort(key=lambda h: h.start)
    return out


def _whole_words(text: str, start: int, end: int) -> str:
    """``text[start:end]`` widened to whole words (a pattern may stop inside one: "leg weak" in "leg weakness")."""
    while start > 0 and text[start - 1].isalnum() and text[start].isalnum():
        start -= 1
    while end < len(text) and text[end].isalnum() and text[end - 1].isalnum():
        end += 1
    return text[start:end]


def _sentences(text: str) -> list[tuple[int, str]]:
    out, start = [], 0
    for m in re.finditer(r"[.!?;\n]+", text):
        out.append((start, text[start:m.end()]))
        start = m.end()
    if start < len(text):
        out.append((start, text[start:]))
    return [(s, t) for s, t in out if t.strip()]


def _clip(s: str, n: int = 400) -> str:
    """Whitespace-normalised value; never cut with an ellipsis (a long value is kept whole up to ``n``, then cut
    at a word boundary)."""
    s = " ".join(s.strip().strip(".,;!? ").split())
    return s if len(s) <= n else s[:n].rsplit(" ", 1)[0]


def _add(lst: list[str], value: str) -> bool:
    v = _clip(value)
    if v and v.lower() not in {x.lower() for x in lst}:
        lst.append(v)
        return True
    return False


class Extractor:
    """Applies one patient turn to (history, profile). Pure: returns new dicts and the slots it filled."""

    def __init__(self, history: History, profile: Profile, free_text: bool = True):
        self.free_text = free_text  # take a free-text answer as the value of the slot just asked
        self.h: History = copy.deepcopy(history)
        self.p: Profile = copy.deepcopy(profile)
        self.filled: set[str] = set()
        self.correction = False
        self.findings: Findings | None = None

    # ------------------------------------------------------------------ helpers
    def _set(self, slot: str, value, evidence: str, overwrite: bool = False) -> None:
        overwrite = overwrite or self.correction
        kind, _, field = slot.partition(".")
        if kind == "hpi":
            if self.h["hpi"].get(field) in (None, "") or overwrite:
                self.h["hpi"][field] = value
        elif kind == "social":
            if self.h["social"].get(field) in (None, "") or overwrite:
                self.h["social"][field] = value
        self._mark(slot, evidence)

    def _mark(self, slot: str, evidence: str) -> None:
        self.filled.add(slot)
        self.h["evidence"].setdefault(slot, _clip(evidence, 120))

    def _deny(self, slot: str, evidence: str) -> None:
        if slot not in self.h["denied"]:
            self.h["denied"].append(slot)
        self._mark(slot, evidence)

    def _unknown(self, slot: str, evidence: str) -> None:
        if slot not in self.h["unknown"]:
            self.h["unknown"].append(slot)
        self._mark(slot, evidence)

    def _ros(self, concept: str, present: bool, evidence: str) -> None:
        ros = self.h["ros"]
        add, drop = (ros["positives"], ros["negatives"]) if present else (ros["negatives"], ros["positives"])
        if concept in drop:
            drop.remove(concept)  # the latest statement wins ("no fever" ... "now I have a fever")
        if concept not in add:
            add.append(concept)
        if concept == "pregnant":
            self.p["pregnant"] = present
            self._mark("profile.pregnant", evidence)
        self._mark(f"ros.{concept}", evidence)

    # ------------------------------------------------------------------ main
    def apply(self, text: str, last_slot: str | None = None, question: str | None = None,
              is_first: bool = False, covers: tuple[str, ...] = (), findings: Findings | None = None) -> None:
        from chatdoc.clinical.analyse import analyse_turn

        own, untrusted = split_untrusted(text)
        for part in untrusted:
            _add(self.h.setdefault("not_used", []), part)  # verbatim for staff, never a fact
        if not own.strip():
            return
        text = own
        low = _lower(text)
        if findings is None or findings.text != text:
            findings = analyse_turn(text, 0)
        self.findings = findings
        self.correction = findings.correction  # "sorry, I meant three weeks": the new value replaces the old
        hits = find_concepts(text, findings)
        self._past(text, findings)
        drug_spans = [(f.start, f.end) for f in self._named("medication")]  # the analysis already found them
        hits = [h for h in hits if not any(s <= h.start < e or h.start <= s < h.end for s, e in drug_spans)]  # drugs are meds
        before = set(self.filled)
        snap = repr((self.h, self.p))
        self._symptoms(text, hits, is_first)
        self._hpi(text, low, last_slot)
        self._background(text, low, hits)
        self._profile(text, low)
        self._concerns(text, low)
        new_this_turn = self.filled - before
        normal_q = bool(question and NORMAL_Q.search(question))
        short = len(low.split()) <= 12
        if normal_q and short and (NEG_ANSWER.search(low.strip()) or YES_ANSWER.search(low.strip())) \
                and not UNKNOWN_ANSWER.search(low):
            # "no" to "passing urine as normal?" is not a pertinent negative: keep the Q/A verbatim
            _add(self.h.setdefault("notes", []), f'asked "{question.strip()}": answered "{text.strip()}"')
            if last_slot:
                self._mark(last_slot, text)
                if last_slot not in self.h["unknown"]:
                    self.h["unknown"].append(last_slot)
        elif last_slot and last_slot.startswith("ros.") and NEG_ANSWER.search(low.strip()) and short \
                and not UNKNOWN_ANSWER.search(low):  # "I don't know" is not "no"
            self._ros(last_slot[4:], False, text)  # a leading "no" answers the symptom just asked about
        elif last_slot and last_slot not in new_this_turn:
            self._answer(text, low, last_slot, question)
            # a bare "no" to a multi-part question ("any medicines, and any allergies?") answers every part
            if covers and (NEG_ANSWER.search(low.strip()) or UNKNOWN_ANSWER.search(low)) and short:
                for c in covers:
                    if c not in self.filled and c not in new_this_turn and not c.startswith("ros."):
                        self._answer(text, low, c, question)
        if self.free_text:
            self._capture(text, last_slot, snap, is_first)

    def _capture(self, text: str, last_slot: str | None, snap: str, is_first: bool) -> None:
        """Keep what the patient said that no rule recorded: clauses of an answer to an open question go to that
        section, anything else to "other information" (the patient's own words, lightly put in the third person)."""
        now = _words(" ".join(_flat(self.h)))
        for _, sent in _sentences(text):
            st = sent.strip()
            if not st or is_intro(st) or UNKNOWN_ANSWER.search(_lower(st)) or wants_finish(st):
                continue
            body = _LEAD.sub("", st).strip(" .,;!?")
            if is_intro(body) or re.fullmatch(r"(?:thank you|thanks|okay|ok|sure|alright)", body, re.I):
                continue
            cw = _words(body)
            if len(cw) < 1 or re.fullmatch(r"(?:no+|nope|nah|none|never|nothing|not really|yes|yeah)", body, re.I):
                continue
            if len(cw & now) >= max(1, round(0.75 * len(cw))):
                continue  # already in the record
            neg = _NEG_CLAUSE.match(body)
            slot = last_slot or ""
            if neg:
                item = neg.group(1).strip(" .,;!?")
                if slot.startswith("social."):
                    _add(self.h.setdefault("social_notes", []), third_person(body))
                elif slot in ("pmh", "medications", "allergies", "family_history"):
                    _add(self.h.setdefault("notes_neg", []), item)
                else:
                    ros = self.h["ros"]
                    if item.lower() not in {x.lower() for x in ros["negatives"]}:
                        ros["negatives"].append(item)
                now |= _words(item)
                continue
            val = third_person(body)
            if not val:
                continue
            if slot in ("hpi.associated", "review") or slot.startswith("ros."):
                if _add(self.h["hpi"].setdefault("associated", []), val):
                    self._mark("hpi.associated", st)
            elif slot in ("pmh", "medications", "family_history", "allergies"):
                dest = "medications" if slot == "pmh" and _MED_WORDS.search(val) else slot
                if st.endswith("?") or (dest == "medications" and _DRUG_REQUEST.search(body)):
                    dest = "other"  # a question or a request ("can I take ...?", "prescribe me ...") is not history
                _add(self.h.setdefault(dest, []), val)  # type: ignore[literal-required]
            elif slot.startswith("social."):
                _add(self.h.setdefault("social_notes", []), val)
            else:
                _add(self.h.setdefault("other", []), val)
            now |= _words(val)

    def _symptoms(self, text: str, hits: list[Hit], is_first: bool) -> None:
        lex = get_lexicon()
        # "a history of gastric reflux" is past medical history, not a current symptom
        hits = [h for h in hits if not _is_past_condition(text[:h.start].rsplit(".", 1)[-1])]
        cc = self.h["chief_complaint"]
        present = [h for h in hits if not h.negated]
        sents = [(o, t) for o, t in _sentences(text) if not is_intro(t.strip())]  # skip "Hello." / "I'm a 45-year-old man."
        if cc is None and present and (is_first or sents):
            first = present[0]
            # a reviewed label, else the patient's own words for it, in whole words ("leg weakness", never the bare
            # pattern span "leg weak")
            self.h["chief_complaint"] = lex.label(first.concept) if first.concept in lex.labels else _clip(_whole_words(
                text, first.start, first.end), 60)
            self.h["evidence"].setdefault("chief_complaint", _clip(text, 120))
            self.h["cc_concept"] = first.concept
        elif cc is None and is_first and sents:
            self.h["chief_complaint"] = third_person(sents[0][1])
            self.h["evidence"].setdefault("chief_complaint", _clip(text, 120))
        cc_concept = self.h.get("cc_concept")
        for h in hits:
            if h.concept == "pregnant" or h.concept == cc_concept:
                if h.concept == "pregnant":
                    self._ros("pregnant", not h.negated, h.text)
                continue
            self._ros(h.concept, not h.negated, h.text)
            if h.concept not in lex.labels:  # no reviewed label: the summary shows the patient's own words
                self.h.setdefault("said", {}).setdefault(h.concept, _clause_around(text, h.start, h.end))
            if not h.negated:
                said = _clause_around(text, h.start, h.end)
                self.h.setdefault("said", {}).setdefault(h.concept, said)  # the patient's words for it
                new = _add(self.h["hpi"].setdefault("associated", []), lex.label_as_said(h.concept, said))
                if new and not is_first:  # symptoms named with the complaint (then or again) do not answer "any other symptoms?"
                    self._mark("hpi.associated", h.text)

    def _named(self, kind: str):
        """The turn's findings of a named condition or drug (``condition:asthma``, ``medication:metformin``)."""
        return [f for f in (self.findings.items if self.findings else []) if f.concept.startswith(kind + ":")]

    def _reaction(self, text: str, pos: int) -> str:
        """" (reaction: rash)" when the sentence of an allergy names what it does to the patient (a reaction is
        kept with the allergy and is never a current symptom)."""
        a = max(text.rfind(c, 0, pos) for c in ".!?;\n") + 1
        ends = [i for i in (text.find(c, pos) for c in ".!?;\n") if i != -1]
        b = min(ends) if ends else len(text)
        got = [f.label for f in (self.findings.items if self.findings else []) if f.kind == "symptom" and a <= f.start < b
               and (f.when == "allergy reaction" or f.assertion in ("hypothetical", "historical"))]
        return f" (reaction: {', '.join(dict.fromkeys(got))})" if got else ""

    def _past(self, text: str, findings: Findings) -> None:
        """Past episodes (historical findings with their time) go to the past history, never to today's symptoms;
        an allergy's reaction is kept with the allergy (see _background), not here. They are kept in the patient's
        words (the clause, with its time) under ``past_episodes``: an episode of the present story ("a sore throat
        8 weeks ago") is not an answer to "any medical conditions or operations?", so that question is still asked."""
        for f in findings.items:
            if f.assertion == "historical" and f.kind == "symptom" and f.subject == "patient" and f.when \
                    and f.when != "allergy reaction" and f.method != "semantic":
                said = _clause_around(text, f.start, f.end) if 0 <= f.start < f.end <= len(text) else f.evidence
                said = third_person(said) or f.evidence
                if f.when.lower() not in said.lower():
                    said = f"{said} ({f.when})"
                past = self.h.setdefault("past_episodes", [])  # type: ignore[typeddict-unknown-key]
                if not any(f.evidence.lower() in x.lower() for x in past):
                    _add(past, said)

    def _attributes(self) -> Attributes:
        """The symptom attributes this turn gives, as the analysis read them (:mod:`chatdoc.clinical.attributes`):
        those of the turn's current symptom findings (the chief complaint's first), then, for what no finding
        carries, the turn's own reading (an answer that names no symptom: "about two weeks", "worse at night")."""
        f = self.findings
        if f is None:
            return Attributes()
        cc = self.h.get("cc_concept")
        cur = [x for x in f.items if x.kind == "symptom" and x.current and x.method != "semantic"]
        cur.sort(key=lambda x: (x.concept != cc, x.start))
        out = Attributes()
        for x in cur:
            merge(out, x.attributes)
        return merge(out, f.attributes)

    def _hpi(self, text: str, low: str, last_slot: str | None) -> None:
        a = self._attributes()
        if a.severity_score is not None and a.severity_score <= 10:
            v = float(a.severity_score)
            self._set("hpi.severity", int(v) if v.is_integer() else v, a.severity or text, overwrite=True)
        elif last_slot == "hpi.severity" and (m2 := re.fullmatch(r"\D{0,30}?\b(\d{1,2})\b\D{0,30}", low)) and int(m2.group(1)) <= 10:
            self._set("hpi.severity", int(m2.group(1)), text)  # a bare number answers "0 to 10?"
        elif a.severity:
            self._set("hpi.severity", a.severity, a.severity)
        if a.onset:
            self._set("hpi.onset", a.onset, a.onset)
        if a.onset_speed:
            word = a.onset_speed
            cur = self.h["hpi"].get("onset")
            if cur and word.lower() not in cur.lower():
                self.h["hpi"]["onset"] = f"{cur}, {word}"
            elif not cur:
                self._set("hpi.onset", word, word)
            self.filled.add("hpi.onset")
        dur = a.duration
        if self.correction and not PATTERNS["duration"].search(low) and not PATTERNS["history_dur"].search(low):
            # "sorry, I meant three weeks not two": the first duration given (the numbers reader)
            from chatdoc.clinical.numbers import find_quantities

            q = next((q for q in find_quantities(text) if q.kind == "duration"), None)
            dur = text[q.start:q.end] if q else dur
        if dur:
            self._set("hpi.duration", dur, dur)
        for field, value in (("location", a.site), ("character", a.character)):
            if value:
                self._set(f"hpi.{field}", value, value)
        if a.radiation_denied:
            self._deny("hpi.radiation", text)
        elif a.radiation:
            self._set("hpi.radiation", a.radiation, a.radiation)
        for field in ("timing", "aggravating", "relieving"):
            value = getattr(a, field)
            if value:
                self._set(f"hpi.{field}", value, value)

    def _background(self, text: str, low: str, hits: list[Hit]) -> None:
        lex = get_lexicon()
        # allergies first so "allergic to penicillin" is not read as a medication
        allergy_spans: list[tuple[int, int]] = []
        if RX["no_allergy"].search(low):
            self._deny("allergies", text)
        else:
            for m in RX["allergy"].finditer(low):
                g = 1 if m.group(1) else 2
                if m.group(g) in ("no", "any", "known", "drug", "food"):
                    continue
                _add(self.h["allergies"], text[m.start(g):m.end(g)] + self._reaction(text, m.start()))
                allergy_spans.append((m.start(), m.end()))
                self._mark("allergies", text[m.start():m.end()])
        if RX["no_meds"].search(low):
            self._deny("medications", text)
        for f in self._named("medication"):
            if any(s <= f.start < e for s, e in allergy_spans) or f.assertion in ("absent", "family", "other_person",
                                                                                  "hypothetical", "asked_about"):
                continue
            pre = low[max(0, f.start - 40):f.start]
            if re.search(r"\b(?:allergic|allergy|reaction to|never taken|not taking|don'?t take|stopped)\b[^.,;]*$", pre):
                continue
            if _mentioned_not_taken(low, f.start):
                continue  # "can I take ibuprofen?", "please prescribe amoxicillin": not a current medication
            dose = re.match(r"\s*(\d+(?:\.\d+)?\s*(?:mg|mcg|micrograms?|g|ml|units?)\b(?:\s+(?:once|twice|three times)\s+a\s+day|"
                            r"\s+(?:daily|a day|at night|in the morning))?)", low[f.end:])
            end = f.end + (dose.end() if dose else 0)
            _add(self.h["medications"], text[f.start:end])
            self._mark("medications", text[f.start:end])
        if RX["no_pmh"].search(low):
            self._deny("pmh", text)
        if RX["no_fh"].search(low):
            self._deny("family_history", text)
        for f in self._named("condition"):
            cond = text[f.start:f.end]
            if f.assertion == "family":  # "my mum has diabetes": family history, with who
                a = max(text.rfind(c, 0, f.start) for c in ".!?;\n") + 1
                fam = RX["family"].search(_lower(text[a:f.end]))
                who = text[a + fam.start():a + fam.end()] if fam else "family"
                _add(self.h["family_history"], f"{who}: {cond}")
                self._mark("family_history", f.evidence)
            elif f.assertion in ("present", "possible", "historical") and f.subject == "patient":
                _add(self.h["pmh"], cond + (f" ({f.when})" if f.assertion == "historical" and f.when
                                            and f.when != "allergy reaction" else ""))
                self._mark("pmh", f.evidence)
            # absent, hypothetical, asked about ("could it be diabetes?"), another person's: never the patient's PMH
        # social history
        if (m := RX["smoking_amount"].search(low)):
            self._set("social.smoking", f"smokes {text[m.start(1):m.end(1)]} a day", text[m.start():m.end()], overwrite=True)
        elif RX["ex_smoker"].search(low):
            self._set("social.smoking", "ex-smoker", text, overwrite=True)
        elif RX["non_smoker"].search(low):
            self._set("social.smoking", "non-smoker", text, overwrite=True)
        elif RX["smoker"].search(low):
            self._set("social.smoking", "smoker", text)
        if RX["no_alcohol"].search(low):
            self._set("social.alcohol", "none", text, overwrite=True)
        elif (a := _first(RX["alcohol_amount"], low)):
            self._set("social.alcohol", text[a[1]:a[2]], text[a[1]:a[2]], overwrite=True)
        if RX["no_drugs"].search(low):
            self._set("social.drugs", "none", text, overwrite=True)
        elif (d := _first(RX["drugs_use"], low)):
            self._set("social.drugs", text[d[1]:d[2]], text)
        if (o := _first(RX["occupation"], low)):
            self._set("social.occupation", text[o[1]:o[2]], text[o[1]:o[2]])

    def _profile(self, text: str, low: str) -> None:
        if self.p.get("age_years") is None:
            ages = [f.attributes.value for f in (self.findings.items if self.findings else [])
                    if f.kind == "age" and f.subject == "patient" and f.attributes.value is not None]
            age = ages[0] if ages else None
            if age is not None and 0 <= age <= 120:
                self.p["age_years"] = age
                self._mark("profile.age", text)
        if self.p.get("sex") is None and (s := _first(RX["sex"], low)):
            self.p["sex"] = "male" if s[0] in ("male", "man", "guy", "son", "boy") else "female"
            self._mark("profile.sex", text)

    def _concerns(self, text: str, low: str) -> None:
        for _, sent in _sentences(text):
            sl = _lower(sent)
            if RX["concern"].search(sl) or (sent.strip().endswith("?") and len(sent.split()) >= 3):
                if RX["finish"].search(sl) and len(sent.split()) <= 6:
                    continue
                if _add(self.h["concerns"], sent):
                    self._mark("concerns", sent)

    # ------------------------------------------------------------------ short answers
    def _answer(self, text: str, low: str, slot: str, question: str | None) -> None:
        t = low.strip()
        if RX["finish"].search(t) and len(t.split()) <= 8:
            return  # "that's all" ends the history; it is not an answer
        short = len(t.split()) <= 12
        neg = bool(NEG_ANSWER.search(t)) and short
        unk = bool(UNKNOWN_ANSWER.search(t)) and short
        yes = bool(YES_ANSWER.search(t)) and short and not neg
        kind, _, field = slot.partition(".")
        context: list[str] = []
        if kind == "ros":
            context.append(field)
        if question:  # symptoms the question itself named ("any nausea or vomiting?")
            context += [h.concept for h in find_concepts(question, any_assertion=True) if h.concept not in context]
        if unk:
            self._unknown(slot, text)
            return
        if kind == "ros" or (kind == "hpi" and field == "associated" and context and (neg or yes)):
            named = {h.concept for h in find_concepts(text, self.findings) if not h.negated}
            rest = re.sub(r"^\W*(?:yes|yeah|yep|yup|aye)\b[\s,.!-]*", "", text.strip(), flags=re.I)
            if yes and not named & set(context) and (named or len(_words(rest)) >= 2):
                # "Yes, I have abdominal pain" / "Yes, I have pain started" to "any burning when you pass urine?":
                # the yes is about what the answer itself says (kept from the findings, or in the patient's words
                # by _capture), not the symptom the question asked about
                return
            if yes and len(context) > 1:
                # "yes" to "any chest pain, cough or nausea?" does not say which: only the symptoms the answer
                # itself names count (_symptoms), never every symptom the question listed
                self._mark(slot, text)
                return
            if neg or yes:
                for c in context or [field]:
                    if c == "pregnant" or f"ros.{c}" == slot or kind == "ros":
                        self._ros(c, yes, text)
                if kind == "hpi":
                    if neg:
                        self._deny(slot, text)
                    else:
                        self._mark(slot, text)
            return
        if neg:
            if kind == "profile" and field == "pregnant":
                self.p["pregnant"] = False
                self._ros("pregnant", False, text)
                return
            if kind == "social":
                self._set(slot, {"smoking": "non-smoker", "alcohol": "none", "drugs": "none"}.get(field, "none"), text)
                if field == "occupation":
                    self._deny(slot, text)
                return
            self._deny(slot, text)
            return
        if not self.free_text:
            return
        answer = re.sub(r"^\W*(?:yes|yeah|yep|well|um+|erm|so|ok|okay)\b[\s,.-]*", "", text.strip(), flags=re.I)
        if not answer or len(answer.split()) > 25:
            return
        if slot == "review":
            self._mark(slot, text)  # the clauses themselves go to the associated symptoms (_capture)
            return
        if kind == "hpi" and field in HPI_FIELDS:
            if field == "severity":
                return  # only numbers / severity words count (handled above)
            fit = _FIT.get(field)
            if fit is not None and not fit.search(_lower(answer)):
                return  # off-topic for this slot: _capture keeps it under "other information"
            self._set(slot, _clip(answer), text)
        elif slot in LIST_SLOTS:
            if slot in OPEN_SLOTS:
                return  # _capture splits the answer into clauses for this section
            _add(self.h[slot], answer)  # type: ignore[literal-required]
            self._mark(slot, text)
        elif kind == "social":
            if slot in OPEN_SLOTS:
                return  # free text about social history: _capture keeps it under SH
            self._set(slot, _clip(answer), text)
        elif slot == "profile.age":
            m = re.search(r"\b(\d{1,3})\b", answer)
            if m and int(m.group(1)) <= 120:
                self.p["age_years"] = float(m.group(1))
                self._mark(slot, text)


def _flat(x) -> list[str]:
    if isinstance(x, dict):
        return [v for k, val in x.items() if k not in ("evidence", "denied", "unknown", "not_used") for v in _flat(val)]
    if isinstance(x, (list, tuple)):
        return [v for val in x for v in _flat(val)]
    return [str(x).replace("_", " ")] if x not in (None, "") else []


def wants_finish(text: str) -> bool:
    return bool(RX["finish"].search(_lower(text)))


def extract_turn(history: History, profile: Profile, text: str, *, last_slot: str | None = None,
                 question: str | None = None, is_first: bool = False, covers: tuple[str, ...] = (),
                 free_text: bool = True, findings: Findings | None = None) -> tuple[History, Profile, set[str]]:
    """Apply one (redacted) patient turn. Returns (history, profile, slots filled by this turn).

    ``covers``: the other slots the question just asked also asked about (a bare "no" denies them too)."""
    ex = Extractor(history, profile, free_text)
    ex.apply(text, last_slot=last_slot, question=question, is_first=is_first, covers=covers, findings=findings)
    return ex.h, ex.p, ex.filled


def is_filled(slot: str, history: History, profile: Profile) -> bool:
    """Whether the history already answers ``slot`` (a value, a "no", or an "I don't know")."""
    if slot in history["denied"] or slot in history["unknown"]:
        return True
    kind, _, field = slot.partition(".")
    if slot == "hpi.associated":  # answered, not merely named with the complaint in the opening
        return slot in history["evidence"]
    if kind == "hpi":
        v = history["hpi"].get(field)
        if field in ("onset", "duration") and not (bool(v) or v == 0):  # "for 3 days" answers "when did it start"
            other = "duration" if field == "onset" else "onset"
            v = history["hpi"].get(other) or (f"hpi.{other}" in history["denied"] or None)
        return bool(v) or v == 0
    if kind == "social":
        return bool(history["social"].get(field))
    if kind == "ros":
        return field in history["ros"]["positives"] or field in history["ros"]["negatives"]
    if kind == "profile":
        key = {"age": "age_years"}.get(field, field)
        return profile.get(key) is not None
    if slot in LIST_SLOTS:
        return bool(history[slot])  # type: ignore[literal-required]
    if slot == "review":
        return slot in history["evidence"]
    return False
