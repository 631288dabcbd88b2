"""chatdoc.dialogue: the consultation state machine (LangGraph) and the clinical logic around it.

    state.py       typed ConsultationState
    personas.py    personas/*.yaml loader          questions.py  configs/questions/*.yaml loader
    extract.py     rules + clinical NLP extraction  policy.py     next question / stop rule
    respond.py     wording (model + guard + template) advice.py  end-of-history advice
    summary.py     staff + lay summaries from the structured state only
    transcript.py  external transcripts (MTS-Dialog, ACI-BENCH) -> same extraction + summary
    graph.py       LangGraph wiring only
"""
