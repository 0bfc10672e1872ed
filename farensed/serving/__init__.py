"""Using a trained job: serving it (mlx_lm.server) and exporting it (MLX, GGUF, Ollama). The pure
parts live here (command lines, templates, checks); what needs mlx runs in farensed.worker."""
