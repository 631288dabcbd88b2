"""Evaluations behind ``chatdoc eval ...``: ``triage``, ``pii`` (+ ``pii_devset``), ``adapter``,
``consult`` (simulated patients: ``cases``, ``facts``, ``simpatient``), ``summary`` (``summary_eval``);
``report`` writes results to ``docs/RESULTS.md``."""
