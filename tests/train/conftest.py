"""Shared fixtures for the training tests: the real shared data, built once per run."""

import json

import pytest

from chatdoc.config import get_settings


@pytest.fixture(scope="session")
def train_settings():
    return get_settings()


@pytest.fixture(scope="session")
def data_dir(train_settings):
    d = train_settings.path(train_settings.train.data_dir)
    if not (d / "mts-dialog").is_dir():
        pytest.skip(f"shared data not found at {d}")
    return d


@pytest.fixture(scope="session")
def tokenizer(train_settings):
    from transformers import AutoTokenizer

    from chatdoc.llm.source import resolve

    r = resolve(train_settings.model.base, train_settings.path(train_settings.model.cache_dir))
    return AutoTokenizer.from_pretrained(str(r.path), local_files_only=True)


@pytest.fixture(scope="session")
def count_tokens(tokenizer):
    return lambda text: len(tokenizer(text, add_special_tokens=True)["input_ids"])


@pytest.fixture(scope="session")
def dataset(data_dir, count_tokens):
    from chatdoc.train.data import build_dataset

    return build_dataset(data_dir, ["mts", "aci", "chatdoctor"], count_tokens, max_seq_len=384, chatdoctor_limit=300)


TINY_CONVS = [
    {"id": "a", "turns": [
        {"role": "patient", "text": "I have had a sore throat for three days."},
        {"role": "doctor", "text": "Do you have a fever?"},
        {"role": "patient", "text": "Yes, about 38 degrees."},
        {"role": "doctor", "text": "Any trouble swallowing or breathing?"}]},
    {"id": "b", "turns": [
        {"role": "patient", "text": "My lower back hurts after lifting boxes."},
        {"role": "doctor", "text": "When did it start, and does the pain go down your leg?"},
        {"role": "patient", "text": "Yesterday. No, it stays in the back."},
        {"role": "doctor", "text": "Any numbness, weakness or problems passing urine?"}]},
    {"id": "c", "system": "You are a paediatric nurse.", "turns": [
        {"role": "patient", "text": "My son has a rash on his arms."},
        {"role": "doctor", "text": "How old is he, and is the rash itchy?"}]},
    {"id": "d", "turns": [
        {"role": "doctor", "text": "Good morning, I am Dr Tiny from the test clinic. What brings you in?"},
        {"role": "patient", "text": "A headache that won't go away."},
        {"role": "doctor", "text": "How long have you had it, and how bad is it out of ten?"}]},
]


def write_tiny_jsonl(path):
    """A handful of short consultations in chatdoc's JSONL format."""
    path.write_text("\n".join(json.dumps(c) for c in TINY_CONVS) + "\n")
    return path


@pytest.fixture
def tiny_jsonl(tmp_path):
    return write_tiny_jsonl(tmp_path / "convs.jsonl")


@pytest.fixture(scope="session")
def tiny_jsonl_session(tmp_path_factory):
    return write_tiny_jsonl(tmp_path_factory.mktemp("jsonl") / "convs.jsonl")
