"""A simulated patient that answers ONLY from its case record.

It sees only the assistant's messages (plain text), never the consultation state. Each question
sentence of a message is answered by:

1. *intent* (regex on the question): age/sex, onset/duration, medications, allergies, family, past
   medical history, social history, "anything else"; an intent restricts the candidate records to
   that category (e.g. medications -> medication facts);
2. *retrieval*: BM25 (``rank_bm25.BM25Okapi``) over the candidate records (facts + history sentences),
   on stemmed, synonym-normalized content terms (``chatdoc.tools.eval.facts.content_terms``). A record is a
   hit when it shares at least one content term with the question and scores >= half the top score
   (at most ``MAX_HITS``);
3. *wording*: positive facts are affirmed in the first person ("Yes, I have ..."), denied facts are
   denied ("No, I haven't had any chest pain."), history sentences are told in the first person.
   Nothing matched: "Not that I know of." for yes/no questions, "I don't know." for open ones.

The patient opens with the primary complaint in lay words plus age and sex.
"""

from __future__ import annotations

import re

from rank_bm25 import BM25Okapi

from chatdoc.tools.eval.cases import Case
from chatdoc.tools.eval.facts import Fact, content_terms, needed, questions_in

MAX_HITS = 3

LAY = {
    r"\bhematuria\b": "blood in my urine",
    r"\bhaematuria\b": "blood in my urine",
    r"\bdiplopia\b": "double vision",
    r"\bdyspn(?:o)?ea\b": "shortness of breath",
    r"\bsyncope\b": "fainting",
    r"\bpyrexia\b": "fever",
    r"\bemesis\b": "vomiting",
    r"\bpruritus\b": "itching",
    r"\bepistaxis\b": "nosebleeds",
    r"\bdysuria\b": "pain when I pee",
    r"\bhemoptysis\b": "coughing up blood",
    r"\bhematochezia\b": "blood in my stool",
    r"\bmelena\b": "black stools",
    r"\bedema\b": "swelling",
    r"\berythema\b": "redness",
    r"\bmyalgias?\b": "muscle aches",
    r"\barthralgias?\b": "joint pain",
    r"\bcephalgia\b": "headache",
    r"\bataxia\b": "unsteadiness",
    r"\bdysphagia\b": "trouble swallowing",
    r"\bodynophagia\b": "pain when swallowing",
    r"\bpolyuria\b": "peeing a lot",
    r"\bpolydipsia\b": "being very thirsty",
    r"\bvertigo\b": "the room spinning",
    r"\bparesthesias?\b": "tingling",
    r"\bdyspepsia\b": "indigestion",
    r"\bmalaise\b": "feeling unwell",
    r"\bfatigue\b": "tiredness",
}

_INTENTS: list[tuple[str, re.Pattern]] = [
    ("age", re.compile(r"\bhow old\b|\byour age\b|\bage\b.*\?|\bdate of birth\b", re.I)),
    ("onset", re.compile(r"\bhow long\b|\bwhen did\b|\bwhen was\b|\bstart(ed)?\b|\bbeg[ia]n\b|\bonset\b|\bsince when\b|\bfirst notice", re.I)),
    ("allergy", re.compile(r"\ballerg", re.I)),
    ("medication", re.compile(r"\bmedication|\bmedicine|\bmeds\b|\bpills?\b|\btablets?\b|\bprescri|\bsupplements?\b|\btaking any", re.I)),
    ("family", re.compile(r"\bfamily\b|\brelatives?\b|\brun in\b|\bparents?\b|\bmother\b|\bfather\b|\bsiblings?\b", re.I)),
    ("pmh", re.compile(
        r"medical (history|problems?|conditions?)|health (problems?|conditions?|issues?)|\bconditions?\b|"
        r"\billness(es)?\b|\bdiagnosed\b|\bsurger(y|ies)\b|\boperations?\b|\bhospital|\bchronic\b|\bin the past\b|"
        r"\bpast history\b", re.I)),
    ("social", re.compile(
        r"\bsmok|\btobacco|\bcigarett|\balcohol|\bdrink|\bwork\b|\bjob\b|\boccupation|\bfor a living|\blive\b|\blives\b|"
        r"\bliving\b|\bdrugs?\b|\brecreational|\btravel|\bsexual|\bpartner|\bexercise|\bsocial|\blifestyle|\bdiet\b", re.I)),
    ("else", re.compile(r"\banything else\b|\bany other\b|\bother symptoms\b|\bsomething else\b", re.I)),
]
_OPEN = re.compile(r"^\s*(what|how|when|why|which|where|who|describe|tell|can you describe|could you describe|on a scale)\b", re.I)
_TIME = re.compile(
    r"\b(\d+|one|two|three|four|five|six|several|few|a)[- ](hour|day|week|month|year)s?\b|\bsince\b|\byesterday\b|"
    r"\bago\b|\blast (night|week|month)\b|\bthis morning\b|\bstarted\b|\bonset\b",
    re.I,
)
# question words that carry no content for retrieval
_QUESTION_GENERIC = {"notic", "experienc", "feel", "tell", "describ", "think", "know", "want", "ask", "like", "okay",
                     "thank", "thanks", "pleas", "plea", "sorri", "hear", "let", "understand", "go", "well", "ani",
                     "anyth", "els", "someth", "noth", "problem", "issu", "concern", "question", "bit", "more",
                     "right", "ok", "good", "now", "today", "ever", "yourself", "see", "bring", "come", "bother", "happen",
                     "get", "seem", "tend", "usual", "lot", "much", "often", "kind", "sort", "type", "way", "thing"}
_GENERAL_SOCIAL = {"social", "lifestyl", "habit", "situat", "home"}

_VERB_BASE = {"has": "have", "is": "am", "reports": "report", "notes": "notice", "denies": "deny", "mentions": "mention",
              "describes": "describe", "states": "state", "complains": "complain", "presents": "come",
              "experiences": "experience", "drinks": "drink", "works": "work", "smokes": "smoke", "lives": "live",
              "uses": "use", "plays": "play", "attends": "attend", "consumes": "consume", "enjoys": "enjoy",
              "cites": "think", "feels": "feel", "admits": "admit", "takes": "take", "does": "do"}
_STARTS_WITH_VERB = re.compile(
    r"^(currently|current|treated|underwent|delivered|managed|recently|diagnosed|started|stopped|born|premature|"
    r"uncomplicated|one|two|history|on|taking|sexually|enrolled|attends|occasional|regular|married|single)\b", re.I)


def _is_child(case: Case) -> bool:
    a = case.age
    if not a:
        return False
    if not a.isdigit():
        return True  # months / weeks / newborn
    return int(a) < 12


def lay_words(text: str) -> str:
    for pat, rep in LAY.items():
        text = re.sub(pat, rep, text, flags=re.I)
    return text


class SimulatedPatient:
    def __init__(self, case: Case):
        self.case = case
        self.child = _is_child(case)
        self.said: list[str] = []  # everything the patient said, in order
        self.disclosed: set[int] = set()  # indices of case.facts the patient has stated
        self.asked_questions: list[str] = []
        # retrieval records: ("fact", i) or ("history", j)
        self.records: list[tuple[str, int]] = [("fact", i) for i in range(len(case.facts))]
        self.records += [("history", j) for j in range(len(case.history))]
        self._terms = [content_terms(self._record_text(r)) for r in self.records]

    # ------------------------------------------------------------ helpers
    def _record_text(self, r: tuple[str, int]) -> str:
        return self.case.facts[r[1]].text if r[0] == "fact" else self.case.history[r[1]]

    def _first_person(self, text: str) -> str:
        t = text.strip().rstrip(".")
        if self.child:
            t = re.sub(r"\b(the patient|patient|the infant|the baby|the child|the newborn)\b", "my child", t, flags=re.I)
            t = re.sub(r"^my child", "My child", t)
            return t + "."
        t = re.sub(r"^(the patient|patient|she|he) (?:reports|notes|mentions|states|describes|says)(?: that)? (?=(a|an|\d)\b)", "I have ", t, flags=re.I)
        t = re.sub(r"^(the patient|patient|she|he) (?:reports|notes|mentions|states|describes|says)(?: that)? experiencing ", "I've been experiencing ", t, flags=re.I)
        t = re.sub(r"^(the patient|patient|she|he) (?:reports|notes|mentions|states|describes|says)(?: that)? ", "I've noticed ", t, flags=re.I)
        t = re.sub(r"\b(the patient|patient|she|he)\b", "I", t, flags=re.I)
        t = re.sub(r"\b(her|his)\b", "my", t, flags=re.I)
        t = re.sub(r"\bI (\w+)\b", lambda m: "I " + _VERB_BASE.get(m.group(1).lower(), m.group(1)), t)
        t = re.sub(r"\bI'?s\b", "I'm", t)
        return t[:1].upper() + t[1:] + "."

    def _say_fact(self, i: int) -> str:
        f: Fact = self.case.facts[i]
        self.disclosed.add(i)
        text = f.text.strip().rstrip(".")
        low = text[:1].lower() + text[1:]
        if f.negated:
            if re.match(r"^non-?\s*", low):
                return f"No, I'm a {low}." if not self.child else f"No, {low}."
            who = "my child hasn't" if self.child else "I haven't"
            if f.kind in ("ros_negative", "symptom"):
                return f"No, {who} had any {low}."
            if f.kind in ("pmh", "family", "medication", "allergy"):
                return f"No, no {low}."
            return f"No, no {low}."
        first = low.split(" ", 1)[0]
        if first in _VERB_BASE and not self.child:
            rest = low.split(" ", 1)[1] if " " in low else ""
            return f"{'Yes, ' if f.kind in ('symptom', 'ros_positive') else ''}I {_VERB_BASE[first]} {rest}".strip() + "."
        if f.kind in ("symptom", "ros_positive"):
            return f"Yes, {'my child has' if self.child else 'I have'} {low}." if not _STARTS_WITH_VERB.match(low) else "Yes. " + self._first_person(text)
        if f.kind == "pmh":
            if _STARTS_WITH_VERB.match(low):
                return self._first_person(text)
            return f"{'My child has' if self.child else 'I have'} a history of {low}."
        if f.kind == "medication":
            return f"{'My child takes' if self.child else 'I take'} {low}." if not _STARTS_WITH_VERB.match(low) else self._first_person(text)
        if f.kind == "allergy":
            if "allerg" in low:
                return f"{'My child has' if self.child else 'I have'} a {low}."
            return f"{'My child is' if self.child else 'I am'} allergic to {low}."
        if f.kind == "family":
            return f"In my family: {low}."
        return self._first_person(text)  # social

    def _say_history(self, j: int) -> str:
        return self._first_person(self.case.history[j])

    def _say(self, r: tuple[str, int]) -> str:
        return self._say_fact(r[1]) if r[0] == "fact" else self._say_history(r[1])

    def _retrieve(self, q_terms: list[str], candidates: list[int]) -> list[int]:
        if not q_terms or not candidates:
            return []
        corpus = [self._terms[c] or ["_"] for c in candidates]
        bm = BM25Okapi(corpus)
        scores = bm.get_scores(q_terms)
        qs = set(q_terms)
        need = needed(len(qs))
        scored = [(s, c) for s, c in zip(scores, candidates) if len(qs & set(self._terms[c])) >= need]
        if not scored:
            return []
        # shared-term count first (BM25 idf is unstable on tiny corpora), then BM25 score
        scored.sort(key=lambda x: (len(qs & set(self._terms[x[1]])), x[0]), reverse=True)
        top_shared = len(qs & set(self._terms[scored[0][1]]))
        if top_shared == len(qs):  # a record answers every term of the question: only those records
            scored = [x for x in scored if len(qs & set(self._terms[x[1]])) == len(qs)]
        top = scored[0][0]
        hits = [c for s, c in scored if len(qs & set(self._terms[c])) == top_shared and (s >= 0.5 * top or top <= 0)]
        return hits[:MAX_HITS]

    def _facts_of(self, *kinds: str) -> list[int]:
        return [k for k, r in enumerate(self.records) if r[0] == "fact" and self.case.facts[r[1]].kind in kinds]

    # ------------------------------------------------------------ public
    def opening(self) -> str:
        c = self.case
        if c.opening:
            text = c.opening.strip()
        else:
            prim = re.sub(r"^(the\s+)?(patient|mother|father|parents?)\s+(reports?|notes?|describes?)\s+", "", c.primary.strip(), flags=re.I)
            prim = lay_words(prim).rstrip(".")
            prim = prim[:1].lower() + prim[1:]
            text = f"{'My child has' if self.child else 'I have'} been having {prim}."
        sex_word = {"female": ("woman", "daughter"), "male": ("man", "son")}.get(c.sex, ("person", "child"))
        if self.child:
            age = c.age if c.age and not c.age.isdigit() else (f"{c.age}-year-old" if c.age else "")
            age = age.replace(" ", "-") + ("-old" if age and not age.endswith("old") and age != "newborn" else "")
            who = f"I'm here about my {age} {sex_word[1]}.".replace("  ", " ")
        elif c.age:
            who = f"I'm a {c.age}-year-old {sex_word[0]}."
        else:
            who = f"I'm a {sex_word[0]}." if c.sex != "unknown" else ""
        msg = f"Hello. {who} {text}".replace("  ", " ").strip()
        self.said.append(msg)
        return msg

    def answer(self, assistant_message: str) -> str:
        qs = questions_in(assistant_message)
        self.asked_questions.extend(qs)
        if not qs:
            msg = "Okay, thank you."
            self.said.append(msg)
            return msg
        parts: list[str] = []
        for q in qs[:3]:
            subs = [x for x in re.split(r",\s*(?:or\s+)?|\s+or\s+", q) if x.strip()]
            if len(subs) > 1 and all(content_terms(x) for x in subs[1:]):
                subs = [subs[0] + "?"] + [("Any " + x.strip(" ?") + "?") for x in subs[1:]]
            else:
                subs = [q]
            for sub in subs:
                for a in self._answer_one(sub):
                    if a not in parts:
                        parts.append(a)
        informative = [a for a in parts if a not in ("Not that I know of.", "I don't know.")]
        msg = " ".join(informative or parts[:1]) if parts else "I don't know."
        self.said.append(msg)
        return msg

    def _answer_one(self, q: str) -> list[str]:
        intents = [name for name, pat in _INTENTS if pat.search(q)]
        q_terms = [t for t in content_terms(q) if t not in _QUESTION_GENERIC]
        open_q = bool(_OPEN.match(q))
        c = self.case
        if "age" in intents and not q_terms[1:]:
            return [f"{'My child is' if self.child else 'I am'} {c.age}{'' if not c.age.isdigit() else ' years old'}."] if c.age else ["I don't know."]
        if "onset" in intents:
            hist = [k for k, r in enumerate(self.records) if r[0] == "history" and _TIME.search(c.history[r[1]])]
            if hist:
                prim = list(dict.fromkeys(q_terms + content_terms(c.primary)))
                hits = self._retrieve(prim[:1] if not q_terms else q_terms, hist) or sorted(
                    hist, key=lambda k: -len(set(self._terms[k]) & set(prim)))[:1]
                return [self._say(self.records[h]) for h in hits[:1]]
        if "allergy" in intents:
            intents = [i for i in intents if i != "medication"]
        for kind_intent, kinds in (("medication", ("medication",)), ("allergy", ("allergy",)), ("family", ("family",)),
                                   ("pmh", ("pmh",)), ("social", ("social",))):
            if kind_intent in intents:
                cands = self._facts_of(*kinds)
                if kind_intent == "medication":  # "managed with X" lives in PMH text
                    cands += [k for k in self._facts_of("pmh") if re.search(r"manag|treat|taking|on \w+", c.facts[self.records[k][1]].text, re.I)]
                hits = self._retrieve(q_terms, cands)
                if not hits and cands and (kind_intent != "social" or not set(q_terms) - _GENERAL_SOCIAL):
                    hits = cands[:4]  # a general question about the category: all of it
                if not hits and kind_intent == "social":
                    # records file "denies recent travel" / "sick contacts" under either social history or the
                    # review of systems: a real patient answers from what they know, whatever the section
                    hits = self._retrieve(q_terms, self._facts_of("ros_negative", "ros_positive"))
                if hits:
                    return [self._say(self.records[h]) for h in hits]
                if kind_intent != "social" or len(intents) == 1:
                    return ["I don't know." if open_q else "Not that I know of."]
        if "else" in intents and not self._retrieve(q_terms, list(range(len(self.records)))):
            rest = [k for k in self._facts_of("symptom", "ros_positive") if self.records[k][1] not in self.disclosed]
            return [self._say(self.records[k]) for k in rest[:2]] or ["No, I think that's everything."]
        hits = self._retrieve(q_terms, list(range(len(self.records))))
        if hits:
            return [self._say(self.records[h]) for h in hits]
        if open_q:
            # an open question about the complaint itself: tell the next part of the story
            untold = [j for j in range(len(c.history)) if self._say_history(j) not in self.said]
            if untold and (not q_terms or set(q_terms) & set(content_terms(c.primary))):
                return [self._say_history(untold[0])]
            return ["I don't know."]
        return ["Not that I know of."]
