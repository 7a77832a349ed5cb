"""Speed and memory levers that change no math: fused accumulation, tiled MLP, chunked dequantization,
embeddings on the CPU, matmuls kept from the forward instead of recomputed."""
