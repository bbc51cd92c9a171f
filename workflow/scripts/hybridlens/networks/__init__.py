"""Neural networks: the M21 reconstruction classifier (and, later, the P21 BNN)."""
