"""The learning-rate schedule the worker trains with: the shared, pure one in farensed/core/schedule.py."""

from farensed.core.schedule import curve, learning_rate, steps_per_epoch, total_steps

__all__ = ["curve", "learning_rate", "steps_per_epoch", "total_steps"]
