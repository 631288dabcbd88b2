"""The log scrubber removes identifiers from loguru messages before any sink sees them."""

from chatdoc.log import logger, setup_logging
from chatdoc.privacy import install_log_scrubber, scrub_log_message


def test_scrubber_redacts_loguru_messages(redactor):
    install_log_scrubber()
    setup_logging(level="DEBUG")
    seen = []
    sink = logger.add(lambda m: seen.append(m.record["message"]), level="DEBUG")
    try:
        logger.info("patient wrote: email jo.bloggs@example.com or ring 07700 900123")
        logger.info("turn done consultation=ab12cd tokens=57 ms=123.4")
    finally:
        logger.remove(sink)
    assert seen[0] == "patient wrote: email <EMAIL_1> or ring <PHONE_1>"
    assert seen[1] == "turn done consultation=ab12cd tokens=57 ms=123.4"


def test_scrubber_fast_path_and_cache():
    assert scrub_log_message("12.5") == "12.5"
    assert scrub_log_message("") == ""
