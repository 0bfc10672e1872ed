"""Memory policy (pure, no mlx): the plan that splits steps into micro-batches by the measured model,
the static estimate validate warns with, and the out-of-memory ladder."""
