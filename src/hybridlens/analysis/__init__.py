"""Stage 5 — scoring against the truth: P21's comparison tables, error statistics, classifier metrics."""
