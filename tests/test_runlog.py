"""Rule logs: messages and warnings go to the rule's log file, known harmless warnings do not."""

import logging
import warnings

import pytest

from hybridlens import runlog


@pytest.fixture
def restored_logging():
    """`runlog.start` reconfigures the root logger and the warning filters: put both back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    with warnings.catch_warnings():
        yield
        logging.captureWarnings(False)
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)


def test_start_logs_info_and_warnings_to_the_rules_file_and_silences_the_known_harmless(tmp_path, restored_logging):
    path = tmp_path / "rule.log"
    log = runlog.start(path)
    assert log.name == "hybridlens"
    log.debug("below the level")
    log.info("fitted %d lenses", 3)
    logging.getLogger("hybridlens.sub").warning("a child logger's warning")
    warnings.warn("a deprecated keyword", DeprecationWarning)  # hidden by Python's default filters, not here
    warnings.warn(f"{runlog.KNOWN_HARMLESS[0]}, so the image is convolved without it", UserWarning)
    warnings.warn("an unknown UserWarning", UserWarning)
    for handler in logging.getLogger().handlers:
        handler.flush()
    lines = path.read_text().splitlines()
    assert any(line.endswith("INFO hybridlens: fitted 3 lenses") for line in lines)
    assert any("WARNING hybridlens.sub: a child logger's warning" in line for line in lines)
    assert any("py.warnings" in line and "DeprecationWarning: a deprecated keyword" in line for line in lines)
    assert any("UserWarning: an unknown UserWarning" in line for line in lines)
    text = "\n".join(lines)
    assert "below the level" not in text
    assert runlog.KNOWN_HARMLESS[0] not in text


def test_a_second_start_writes_to_the_new_file_only(tmp_path, restored_logging):
    first, second = tmp_path / "a.log", tmp_path / "b.log"
    runlog.start(first).info("to a")
    runlog.start(second).info("to b")
    assert "to a" in first.read_text() and "to b" not in first.read_text()
    assert "to b" in second.read_text() and "to a" not in second.read_text()
