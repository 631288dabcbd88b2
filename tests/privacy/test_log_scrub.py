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


def test_scrubber_leaves_session_ids_readable(redactor):
    """Issue 13: log lines showed consultation ids as <PERSON_1> (spaCy reads some random ids as names; the
    fixed ids below were scrubbed in these very lines). Ids stay readable; names, phone numbers and e-mail
    addresses in the same message are still scrubbed."""
    from chatdoc.memory.ids import new_session_id

    seen_as_names = {
        "VIcxmUKsXJViUwWZFVj2ZuzLdt-kWK9A": ["erased session {} keys=61 shared_entries=0", "session {} deleted"],
        "dlu2jwJ9ofilBwTGpLbfOv3eZD4qUGSr": ["turn done consultation={} ms=12"],
        "grxz_TIrvBpLHlseCYFnYRkvaFH3hCUA": ["turn done consultation={} ms=12"],
    }
    for sid, lines in seen_as_names.items():
        for line in lines:
            assert scrub_log_message(line.format(sid)) == line.format(sid)
    for sid in [new_session_id() for _ in range(10)] + ["5bc2f90ce01b45abb1cfd7ff5ffa9cd2"]:  # uuid4().hex too
        for line in ["erased session {} keys=61 shared_entries=0 aof_rewritten=True", "turn done consultation={} ms=12",
                     "resume link ?session={}"]:
            assert scrub_log_message(line.format(sid)) == line.format(sid)
        out = scrub_log_message(f"session {sid}: patient John Smith rang 07700 900123")
        assert out == f"session {sid}: patient <PERSON_1> rang <PHONE_1>"
    # the exemption is for id-shaped tokens only: a long hyphenated name or an e-mail address is scrubbed
    assert "Mary-Jane" not in scrub_log_message("patient Mary-Jane-Smith-Jones-Brown called")
    assert scrub_log_message("write to bloggs1234567890123456789ab@example.com") == "write to <EMAIL_1>"
