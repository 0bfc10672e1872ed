"""farensed: unattended MLX LoRA/QLoRA fine-tuning on one machine."""

__version__ = "0.1.0"
