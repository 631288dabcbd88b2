"""chatdoc: private, multi-turn doctor-patient consultations around a 4-bit LoRA-tuned LM."""

__version__ = "0.1.0"
