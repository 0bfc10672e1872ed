"""Answer scores (pure, no mlx): normalization, exact match and F1, and which questions are asked.
The answering itself runs in the worker (farensed.worker.scoring, .answering, .score)."""
