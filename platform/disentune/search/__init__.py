"""Search: Pareto analytics (pure numpy) and the Ray Tune + Optuna adapter (search.tune)."""
