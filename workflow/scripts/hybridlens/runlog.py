"""Logging for rule scripts: everything, warnings included, goes to the rule's log."""

import logging
import warnings


def start(path, name="hybridlens"):
    logging.basicConfig(
        filename=path, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )
    logging.captureWarnings(True)
    warnings.simplefilter("default")
    return logging.getLogger(name)
