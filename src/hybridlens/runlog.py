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


class Account:
    """One lens's account of its run, line by line: to the rule's log, to a list kept for its HDF5 and
    page, and (on a terminal) as one progress line rewritten in place.

    It answers `info`, `warning` and `exception` as a logger does, so the loops that log their
    rounds write into the account without knowing it.
    """

    def __init__(self, log, name, terminal=None):
        import sys
        import time

        self.log, self.name, self.lines = log, name, []
        self.terminal = terminal if terminal is not None else (sys.stderr if sys.stderr.isatty() else None)
        self._clock, self._start = time.perf_counter, time.perf_counter()

    def say(self, stage, message, *args):
        """Add `stage: message % args` to the account."""
        line = f"{stage}: {message % args if args else message}"
        self.lines.append(line)
        self.log.info("%s %s", self.name, line)
        if self.terminal is not None:
            elapsed = self._clock() - self._start
            self.terminal.write(f"\r\033[K{self.name} [{elapsed:4.0f} s] {line[:100]}")
            self.terminal.flush()

    def info(self, message, *args):
        self.say("loop", message, *args)

    def warning(self, message, *args):
        self.say("warning", message, *args)

    def error(self, message, *args):
        self.say("error", message, *args)

    def exception(self, message, *args):
        self.log.exception("%s " + message, self.name, *args)
        self.lines.append(f"error: {message % args if args else message}")

    def close(self):
        """End the terminal's progress line."""
        if self.terminal is not None:
            self.terminal.write("\n")
            self.terminal.flush()
