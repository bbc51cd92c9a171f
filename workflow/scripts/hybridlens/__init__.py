"""hybridlens: neural networks + PyAutoLens semi-linear inversion for strong-lens modelling."""

import os

__version__ = "0.1.0"

# PyAutoLens warns at import when the working directory is not one of its
# workspaces; ours never is, and its config lives under config/autolens.
os.environ.setdefault("PYAUTO_SKIP_WORKSPACE_VERSION_CHECK", "1")
