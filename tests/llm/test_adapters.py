"""LoRA adapters on the real nf4 base: hot swap, exact restore, and refusals."""

import json
import shutil
import time

import pytest
import yaml

from chatdoc.llm import AdapterError, GenerationRequest, Turn, render
from chatdoc.tools.lora import create_random_adapter

pytestmark = pytest.mark.slow

PROMPT = render("You are a careful clinical assistant.", [Turn("patient", "My knee has been swollen for a week.")])


@pytest.fixture(scope="module")
def adapter_root(backend, tmp_path_factory):
    root = tmp_path_factory.mktemp("adapters")
    create_random_adapter(backend.resolved, root / "rand-a", seed=1)
    create_random_adapter(backend.resolved, root / "rand-b", seed=2)
    old = backend.adapters_root
    backend.adapters_root = root
    yield root
    for name in ("rand-a", "rand-b"):
        backend.unload_adapter(name)
    backend.activate_adapter(None)
    backend.adapters_root = old


def _greedy(backend, adapter):
    return backend.generate(GenerationRequest(prompt=PROMPT, greedy=True, max_new_tokens=16, stop=(), adapter=adapter)).text


def test_adapter_changes_output_and_switching_back_restores_base(backend, adapter_root):
    base_model_obj = backend.base_model
    base = _greedy(backend, None)
    with_a = _greedy(backend, "rand-a")
    assert with_a != base
    assert _greedy(backend, None) == base  # exact restore
    assert backend.base_model is base_model_obj  # the base was never reloaded


def test_activate_and_switch_without_reloading_base(backend, adapter_root):
    backend.activate_adapter("rand-a")
    backend.activate_adapter("rand-b")  # first load of b
    t0 = time.perf_counter()
    backend.activate_adapter("rand-a")
    switch = time.perf_counter() - t0
    assert backend.active_adapter == "rand-a"
    assert switch < 0.5  # a switch is a pointer change, not a load
    a_out = backend.generate(GenerationRequest(prompt=PROMPT, greedy=True, max_new_tokens=16, stop=())).text
    assert a_out == _greedy(backend, "rand-a")
    assert _greedy(backend, "rand-b") != a_out
    backend.activate_adapter(None)
    assert backend.active_adapter is None
    listed = {a["name"]: a for a in backend.list_adapters()}
    assert listed["rand-a"]["loaded"] and listed["rand-a"]["compatible"]


@pytest.mark.parametrize("name", ["../x", "a/b", "..", "/etc", "", "x" * 80])
def test_non_plain_names_are_refused(backend, adapter_root, name):
    with pytest.raises(AdapterError) as e:
        backend.activate_adapter(name)
    assert e.value.code == "invalid_name"


def test_missing_adapter_is_refused(backend, adapter_root):
    with pytest.raises(AdapterError) as e:
        backend.activate_adapter("does-not-exist")
    assert e.value.code == "not_found"


def test_adapter_for_another_base_is_refused(backend, adapter_root):
    d = adapter_root / "other-base"
    shutil.copytree(adapter_root / "rand-a", d)
    card = yaml.safe_load((d / "card.yaml").read_text())
    card["base_model"], card["base_model_checksum"] = "some-other-model", "0" * 64
    (d / "card.yaml").write_text(yaml.safe_dump(card))
    with pytest.raises(AdapterError) as e:
        backend.activate_adapter("other-base")
    assert e.value.code == "wrong_base"
    assert "other-base" in str(e.value) and "some-other-model" in str(e.value)


def test_malformed_adapters_are_refused_and_leave_no_trace(backend, adapter_root):
    bad_json = adapter_root / "bad-json"
    shutil.copytree(adapter_root / "rand-a", bad_json)
    (bad_json / "adapter_config.json").write_text("{not json")
    with pytest.raises(AdapterError) as e:
        backend.activate_adapter("bad-json")
    assert e.value.code == "malformed"

    bad_shape = adapter_root / "bad-shape"
    shutil.copytree(adapter_root / "rand-a", bad_shape)
    cfg = json.loads((bad_shape / "adapter_config.json").read_text())
    cfg["r"] = 4  # weights were saved with r=8
    (bad_shape / "adapter_config.json").write_text(json.dumps(cfg))
    before = _greedy(backend, None)
    with pytest.raises(AdapterError) as e:
        backend.activate_adapter("bad-shape")
    assert e.value.code == "malformed"
    assert "bad-shape" not in backend.info()["loaded_adapters"]
    assert _greedy(backend, None) == before
    assert backend.active_adapter is None
