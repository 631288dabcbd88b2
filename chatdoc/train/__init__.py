"""chatdoc.train: fine-tuning LoRA adapters on the doctor side of consultations.

* :mod:`chatdoc.train.data`: builders for MTS-Dialog, ACI-BENCH, ChatDoctor and chatdoc JSONL
  conversations -> one sample per doctor turn in the runtime prompt format.
* :mod:`chatdoc.train.sft`: LoRA/QLoRA SFT loop (loss on doctor tokens only, target-only LM head,
  prefix packing, resumable checkpoints) writing ``adapters/<name>/`` with a ``card.yaml``.

Evaluating an adapter (base vs adapter on MTS-Dialog validation) is tooling: :mod:`chatdoc.tools.eval.adapter`.

Heavy libraries (torch, transformers, peft) are imported inside functions.
"""
