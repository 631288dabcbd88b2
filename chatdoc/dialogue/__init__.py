"""chatdoc.dialogue: the consultation state machine (LangGraph) and the clinical logic around it.

    state.py       typed ConsultationState (domain types from chatdoc.domain)
    context.py     RunContext: per-run options (model wording, backend, locale)
    graph.py       LangGraph wiring: build_graph(checkpointer) -> compiled graph
    personas.py    personas/*.yaml loader          questions.py  configs/questions/*.yaml loader
    extract.py     rules + clinical NLP extraction  policy.py     next question / stop rule
    respond.py     question wording (model + acceptance + guard, else template)
    advice.py      end-of-history advice (wording: configs/texts.yaml via chatdoc.texts)
    summary.py     staff + lay summaries from the structured state only
    transcript.py  external transcripts (MTS-Dialog, ACI-BENCH) -> same extraction + summary
"""
