"""Architecture search: Optuna orchestration, objectives, latency and reports."""
