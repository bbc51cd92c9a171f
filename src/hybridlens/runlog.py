"""Logging for rule scripts: everything, warnings included, goes to the rule's log."""

import logging
import warnings

# Warnings that say nothing about a run. autoarray's sparse operator convolves the
# pixelised source's image without a blurring region; that image is zero outside
# the mask, so nothing is lost, but it warns on every likelihood call.
KNOWN_HARMLESS = ("No blurring_image provided",)


def quiet_known_warnings():
    for message in KNOWN_HARMLESS:
        warnings.filterwarnings("ignore", message=message, category=UserWarning)


def start(path, name="hybridlens"):
    logging.basicConfig(
        filename=path, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )
    logging.captureWarnings(True)
    warnings.simplefilter("default")
    quiet_known_warnings()
    return logging.getLogger(name)
