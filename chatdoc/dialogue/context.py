"""Per-run options of the consultation graph (LangGraph ``context_schema``).

The caller passes one with every run::

    graph.invoke(value, config, context=RunContext(model_wording=True, backend=backend), durability="exit")

Nodes read it from ``runtime.context``; nothing here is checkpointed and nothing is read from the
process-wide settings, so a researcher's comparison with model wording never changes a patient's run.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RunContext:
    #: word questions with the model (through the guard); False = the question set's templates
    model_wording: bool = False
    #: the model backend that words questions (``chatdoc.llm`` Backend); None = templates only
    backend: object | None = None
    #: crisis / emergency numbers shown (``configs/crisis_lines.yaml``); None = ``safety.locale``
    locale: str | None = None
    #: the model's time in one turn (seconds); jobs after it use the templates (``dialogue.model_budget_s``)
    model_budget_s: float | None = None
    #: answer the patient's questions, and from MedQuAD passages (``dialogue.answer_questions`` / ``knowledge_answers``)
    answer_questions: bool = True
    knowledge_answers: bool = True
    #: open replies with an acknowledgement (``dialogue.acknowledge``)
    acknowledge: bool = True

    @property
    def wording_by_model(self) -> bool:
        """Model wording is asked for AND a backend is there to do it."""
        return self.model_wording and self.backend is not None
