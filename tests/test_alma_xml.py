"""Alma's XML error body read by a bounded parser (proxy/alma_xml.py): the first error's fields,
whatever the namespace; a DTD or a huge body is refused, never expanded."""

import pytest

from proxy.alma_xml import MAX_BYTES, XmlRefused, first_error, looks_like_xml

BODY = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<web_service_result xmlns="http://com/exlibris/urm/general/xmlbeans">
  <errorsExist>true</errorsExist>
  <errorList>
    <error><errorCode>401861</errorCode><errorMessage>User with identifier x was not found.</errorMessage>
      <trackingId>E01-2101120211-ABCDE-AWAE123456789</trackingId></error>
    <error><errorCode>402119</errorCode></error>
  </errorList>
</web_service_result>"""


def test_the_first_error_is_read():
    assert looks_like_xml("\n  " + BODY) and not looks_like_xml('{"errorsExist": true}')
    assert first_error("\n  " + BODY.split("\n", 1)[1]) == (
        "401861", "User with identifier x was not found.", "E01-2101120211-ABCDE-AWAE123456789")


def test_a_prefixed_namespace_and_no_tracking_id():
    body = ('<ns:web_service_result xmlns:ns="urn:x"><ns:errorList><ns:error>'
            "<ns:errorCode>PER_SECOND_THRESHOLD</ns:errorCode></ns:error></ns:errorList>"
            "</ns:web_service_result>")
    assert first_error(body) == ("PER_SECOND_THRESHOLD", "", "")


def test_other_documents_say_nothing():
    assert first_error("<html><body><error><errorCode>1</errorCode></error></body></html>") == (
        "", "", "")


@pytest.mark.parametrize("body", [
    '<!DOCTYPE r [<!ENTITY a "x">]><web_service_result>&a;</web_service_result>',
    '<!DOCTYPE r SYSTEM "http://example.org/evil.dtd"><web_service_result/>',
    "<web_service_result>" + " " * MAX_BYTES + "</web_service_result>",
    "<web_service_result><errorList>",
])
def test_dangerous_or_broken_bodies_are_refused(body):
    with pytest.raises(XmlRefused):
        first_error(body)
