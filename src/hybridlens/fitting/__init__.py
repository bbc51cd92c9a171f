"""Stage 4 — PyAutoLens searches: blind, network-informed priors, M21's rerun loop and the guarded loop."""
