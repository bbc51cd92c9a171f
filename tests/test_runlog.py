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


def test_an_account_keeps_its_lines_logs_them_and_rewrites_one_terminal_line(tmp_path, restored_logging):
    import io

    path = tmp_path / "lens.log"
    terminal = io.StringIO()
    account = runlog.Account(runlog.start(path), "J0001", terminal=terminal)
    account.say("mask", "%d pixels", 812)
    account.info("round %d: theta_E %.2f", 0, 1.23)  # as the loops log
    try:
        raise ValueError("singular")
    except ValueError:
        account.exception("round %d: fit failed", 1)
    account.close()
    for handler in logging.getLogger().handlers:
        handler.flush()
    assert account.lines == ["mask: 812 pixels", "loop: round 0: theta_E 1.23", "error: round 1: fit failed"]
    text = path.read_text()
    assert "J0001 mask: 812 pixels" in text and "J0001 round 1: fit failed" in text and "ValueError: singular" in text
    shown = terminal.getvalue()
    assert shown.count("\r") == 2 and "J0001" in shown and shown.endswith("\n")
