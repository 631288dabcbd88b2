"""The model's narrow jobs in a consultation: the one place their instructions are defined.

The small model is never asked to "reply freely": the graph decides what the turn needs and gives the model one
job at a time, each with its own system text (the persona's text + one line saying the job). Fine-tuning
(``chatdoc.train.tasks``) renders its examples with these same functions and
:func:`chatdoc.llm.prompt.training_pair`, so training and run-time prompts are byte-identical.

    ack       one short sentence that acknowledges what the patient just said (no question)
    question  one short question about a topic the question policy chose
    answer    one or two sentences answering the patient's question from a given passage only

Every output is checked by the caller (``chatdoc.dialogue.respond``) before it is shown; a rejected output falls
back to reviewed template text.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Job:
    name: str
    max_new_tokens: int
    stop: tuple[str, ...]


ACK = Job("ack", 28, (".", "!", "?", "\n"))
QUESTION = Job("question", 40, ("?", "\n"))
ANSWER = Job("answer", 72, ("\n",))


def ack_system(persona_system: str) -> str:
    return (f"{persona_system.strip()}\nYour next reply is one short sentence that acknowledges what the patient "
            "just said, kindly and only with what they said. Do not ask a question.")


def question_system(persona_system: str, who: str, topic: str) -> str:
    """``who``: "the patient about their" or "the parent about their child's"; ``topic``: the policy's item."""
    return f"{persona_system.strip()}\nYour next reply is one short question asking {who} {topic}."


def answer_system(persona_system: str, passage: str, source: str) -> str:
    passage = " ".join(passage.split())
    return (f"{persona_system.strip()}\nThe patient asked a question. Answer it in one or two short, plain sentences "
            f"using only this passage from {source}; never give a dose and never diagnose.\n"
            f"Passage: {passage}")
