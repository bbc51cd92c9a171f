"""Stage 3 — the networks: M21's two-input classifier and P21's MC-dropout BNN, trained in PyTorch."""
