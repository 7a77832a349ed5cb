"""The GPU path: base in 4-bit NF4 (bitsandbytes) + a LoRA adapter, behind the HELM API."""

from __future__ import annotations

import pytest
import torch
from fastapi.testclient import TestClient

from axolotl_nextai.serve import HelmModel, create_app

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


@pytest.fixture(scope="module")
def random_adapter(tiny_model, tmp_path_factory):
    """A PEFT LoRA adapter with random (non-zero) B, so it visibly changes the model."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    config = LoraConfig(r=4, lora_alpha=16, target_modules=["o_proj", "down_proj"], init_lora_weights=False)
    out = tmp_path_factory.mktemp("adapter")
    get_peft_model(base, config).save_pretrained(out)
    return out


def test_4bit_base_plus_adapter_answers_helm(tiny_model, random_adapter):
    import bitsandbytes as bnb

    model = HelmModel.load(str(tiny_model), str(random_adapter))
    assert any(isinstance(m, bnb.nn.Linear4bit) for m in model.model.modules())
    assert model.model.device.type == "cuda"
    client = TestClient(create_app(model))
    request = {
        "prompt": "Name a colour.",
        "temperature": 1e-7,
        "max_new_tokens": 12,
        "top_k_per_token": 3,
        "echo_prompt": False,
        "stop_sequences": [],
    }
    full = client.post("/process", json=request).json()
    assert len(full["tokens"]) == 12 and "".join(t["text"] for t in full["tokens"]) == full["text"]
    assert all(
        t["logprob"] == pytest.approx(max(t["top_logprob"].values()), abs=1e-3) for t in full["tokens"]
    )
    stop = full["text"][3:6]
    cut = client.post("/process", json={**request, "stop_sequences": [stop]}).json()
    assert cut["text"] == full["text"][: full["text"].index(stop)]
    echo = client.post("/process", json={**request, "echo_prompt": True, "max_new_tokens": 0}).json()
    assert echo["text"] == "Name a colour." and echo["tokens"]

    base = TestClient(create_app(HelmModel.load(str(tiny_model)))).post("/process", json=request).json()
    assert base["logprob"] != pytest.approx(full["logprob"], abs=1e-4)
