"""Names the package and the workflow share: M21's classes, P21's methods and P21's test sets.

Plain Python without PyAutoLens, so that the Snakefile reads them (wildcards, inputs)
as cheaply as the config.
"""

from dataclasses import dataclass

# M21's classes of a source reconstruction, in label order (0, 1, 2): the model's Einstein
# radius is under-estimated (an under-magnified reconstruction, UM), correct (C), or
# over-estimated (over-magnified, OM). The calibration's fits, the training pairs, the
# classifier's outputs and the rerun loop's verdicts all use them.
CLASSES = ("under", "correct", "over")

# Image-plane maps an inversion hands over beside its residual (`inversion.Products`), each a
# channel the classifier's residual path may take (`classifier.image_channels`): the data's
# signal-to-noise (where the arcs are) and the model's critical curve (where its ring is).
IMAGE_PLANE_MAPS = ("signal_to_noise", "critical_curve")

# Classifier settings of the verdicts alone (`classifier.mc_passes`): a trained network is judged
# with them, never trained with them, so changing one re-judges fits without retraining.
CLASSIFIER_INFERENCE_SETTINGS = frozenset({"mc_passes"})

# P21's PyAutoLens methods, in the paper's order: blind priors (a ring fitted to the arcs
# sets theta_E), PyAL + BNN (uniform windows about the BNN's means) and PyAL + BNN (1 sigma)
# (Gaussians with the BNN's means and sigmas). Same search and inversion; only the priors differ.
P21_METHODS = ("blind", "bnn_uniform", "bnn_gaussian")
# What P21's tables compare: the BNN's own predictions, then the three methods.
P21_ESTIMATORS = ("bnn", *P21_METHODS)


@dataclass(frozen=True)
class TestSet:
    """What makes a P21 test set: the lens family, the source kind, and whether a line of sight is added."""

    __test__ = False  # not a test class

    lens: str  # sie | power_law | composite
    source: str  # parametric | real
    los: bool

    @property
    def fitted_model(self):
        """The mass model whose parameters are the truth, which the BNN predicts and PyAutoLens fits (P21).

        The composite lenses are fitted as SIEs; their truth is the SIE fitted to the convergence.
        """
        return "power_law" if self.lens == "power_law" else "sie"


TESTSETS = {
    "sie_parametric": TestSet("sie", "parametric", False),
    "sie_real": TestSet("sie", "real", False),
    "sie_real_los": TestSet("sie", "real", True),
    "power_law_real": TestSet("power_law", "real", False),
    "power_law_real_los": TestSet("power_law", "real", True),
    "complex_real": TestSet("composite", "real", False),
    "complex_real_los": TestSet("composite", "real", True),
}  # P21 sets (a)-(g), in order
