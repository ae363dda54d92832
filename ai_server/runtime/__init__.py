"""Model runtime: device choice, the model registry and the dynamic batcher."""
