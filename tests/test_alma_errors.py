"""Alma's error codes come from one table: each code's exception and meaning, with throttling
and server trouble decided by the HTTP status first. Over the wire for guest sign-in, where two
meanings both become "wrong user name or password"."""

import asyncio

import pytest
from support.alma import canned_alma, error_body

from proxy.alma import AlmaClient
from proxy.alma_errors import (
    CODES,
    AlmaConfigError,
    AlmaError,
    AlmaFeeNotFound,
    AlmaInvalidCredentials,
    AlmaInvalidRequest,
    AlmaNotPayable,
    AlmaUnavailable,
    AlmaUserNotFound,
    error_for,
)


@pytest.mark.parametrize("code, expected, meaning", [
    ("401861", AlmaUserNotFound, "user not found"),
    ("401651", AlmaUserNotFound, "user not found"),
    ("401890", AlmaUserNotFound, "user not found"),
    ("401665", AlmaFeeNotFound, "fee not found"),
    ("401666", AlmaInvalidRequest, "parameter not valid"),
    ("401866", AlmaInvalidCredentials, "user authentication failed"),
    ("402119", AlmaUnavailable, "Alma general error"),
    ("60340", AlmaNotPayable, "fee restricted from online payment"),
    ("60258", AlmaConfigError, "Alma refused the API key for this call"),
    ("UNAUTHORIZED", AlmaConfigError, "Alma refused the API key for this call"),
])
def test_each_code_has_its_exception_and_meaning(code, expected, meaning):
    error = error_for(400, code, "", "E01-TRACK")
    assert type(error) is expected
    assert (str(error), error.code, error.tracking_id, error.status) == (
        meaning, code, "E01-TRACK", 400)
    assert str(error_for(400, code, "Alma's own words", "")) == "Alma's own words"


def test_the_table_is_all_the_codes_the_tests_know():
    assert set(CODES) == {"401861", "401651", "401890", "401665", "401666", "401866",
                          "402119", "60340", "60258", "UNAUTHORIZED"}


def test_unknown_codes_and_missing_codes():
    unknown = error_for(400, "999999", "", "")
    assert type(unknown) is AlmaError and str(unknown) == "Alma error 999999"
    bare = error_for(400, "", "", "")
    assert type(bare) is AlmaUnavailable and str(bare) == "unexpected answer from Alma (400)"


@pytest.mark.parametrize("status, code, daily", [
    (429, "", False), (429, "401861", False), (400, "PER_SECOND_THRESHOLD", False),
    (400, "DAILY_THRESHOLD", True),
])
def test_throttling_wins_over_the_table(status, code, daily):
    error = error_for(status, code, "", "")
    assert type(error) is AlmaUnavailable and error.daily_limit is daily
    assert str(error) == f"Alma is throttling requests ({code or status})"


def test_server_trouble_wins_over_the_table():
    error = error_for(503, "401861", "", "")
    assert type(error) is AlmaUnavailable and str(error) == "Alma answered 503"


@pytest.mark.parametrize("code", ["401866", "401890", "401861"])
def test_guest_sign_in_refusals_all_read_invalid_credentials(code):
    async def authenticate(url):
        client = AlmaClient(url + "/almaws/v1", "key")
        try:
            await client.authenticate("jsmith", "wrong")
        finally:
            await client.aclose()

    with canned_alma(400, error_body(code)) as s, pytest.raises(AlmaInvalidCredentials) as caught:
        asyncio.run(authenticate(s.url))
    assert (str(caught.value), caught.value.code) == ("invalid credentials", code)
