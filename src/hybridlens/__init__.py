"""hybridlens: neural networks + PyAutoLens semi-linear inversion for strong-lens modelling.

The sub-packages follow the pipeline's DAG:

- ``simulation``      simulated lenses (M21 §3.1, P21 §2.1-2.2)
- ``reconstruction``  annular masks, inversions, U/C/O calibration, θ_E-shifted training set (M21 §3.1-3.3)
- ``networks``        M21's classifier and P21's MC-dropout BNN
- ``fitting``         PyAutoLens searches, informed priors, M21's rerun loop, the guarded loop
- ``analysis``        scoring against the truth (P21's tables, classifier metrics)
- ``own_lenses``      FITS cutouts of the user's own lenses

and beside them ``config`` (schema, defaults), ``io`` (HDF5 conventions), ``flags`` (every flag bit),
``vocabulary`` (M21's classes, P21's methods and test sets), ``runlog``, ``plotting`` (the figures' shared
writer: PNG + the JSON of the numbers plotted) and ``docs`` (the generated pages).
"""

import os

__version__ = "0.1.0"

# PyAutoLens warns at import when the working directory is not one of its
# workspaces; ours never is, and its config lives under config/autolens.
os.environ.setdefault("PYAUTO_SKIP_WORKSPACE_VERSION_CHECK", "1")
