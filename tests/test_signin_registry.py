"""The sign-in methods come from one registry: the settings check names and required settings
against it, its routes answer only while their method is offered, and `/api/session` tells the
sign-in page what to show (the `signin` contract the page is written against)."""

import dataclasses

import pytest

from proxy.config import ConfigError, Settings, load_settings
from proxy.signin import registry

BASE = {
    "PATRONPAY_PUBLIC_URL": "https://pay.library.example.edu/",
    "PATRONPAY_SECRET_KEYS": "k" * 32,
    "PATRONPAY_ALMA_API_URL": "https://api-na.hosted.exlibrisgroup.com/almaws/v1",
    "PATRONPAY_ALMA_API_KEY": "l7xx-real-key",
    "PATRONPAY_CASHNET_CHECKOUT_URL": "https://commerce.cashnet.com/LIBFINES",
    "PATRONPAY_CASHNET_ITEM_CODE": "LIB-FINE",
    "PATRONPAY_CASHNET_POSTBACK_TOKEN": "t" * 40,
}


def not_signed_in(d) -> dict:
    answer = d.browser().get("/api/session")
    assert answer.status_code == 401
    body = answer.json()
    assert body["error"]["code"] == "not_signed_in"
    return body


def test_signin_lists_the_offered_methods_in_configured_order(deploy):
    d = deploy(auth_methods="sso,alma,cas,primo", sso_login_url="/auth/sso")
    body = not_signed_in(d)
    assert body["signin"] == [
        {"method": "sso", "kind": "link", "href": "/auth/sso?next=/"},
        {"method": "alma", "kind": "form", "action": "/auth/alma"},
        {"method": "cas", "kind": "link", "href": "/auth/cas?next=/"},
        {"method": "primo", "kind": "notice"},
    ]
    # The older fields stay as they were for pages not yet reading `signin`.
    assert body["methods"] == ["sso", "alma", "cas", "primo"]
    assert body["links"] == {"sso": "/auth/sso", "alma": "/auth/alma", "cas": "/auth/cas"}


def test_an_external_sso_login_page_is_offered_as_configured(deploy):
    d = deploy(auth_methods="primo,sso", sso_login_url="https://login.example.edu/idp?x=1")
    body = not_signed_in(d)
    assert body["signin"] == [
        {"method": "primo", "kind": "notice"},
        {"method": "sso", "kind": "link", "href": "https://login.example.edu/idp?x=1"},
    ]
    assert body["links"] == {"sso": "https://login.example.edu/idp?x=1"}


def test_every_method_route_answers_only_while_its_method_is_offered(deploy):
    d = deploy(auth_methods="cas")
    client = d.browser()
    for method in registry.METHODS:
        for route in method.routes:
            verb = sorted(route.methods - {"HEAD"})[0]
            answer = client.request(verb, route.path, json={})
            if method.name == "cas":
                # GET starts the round trip; POST is CAS's single logout, and {} is not one.
                assert answer.status_code == (303 if verb == "GET" else 400), route.path
            else:
                assert answer.status_code == 404, route.path
                assert answer.json()["error"]["code"] == "method_disabled"


def test_unknown_method_is_refused_naming_the_registered_ones():
    with pytest.raises(ConfigError) as caught:
        load_settings(BASE | {"PATRONPAY_AUTH_METHODS": "sso,ldap"})
    assert str(caught.value) == ("PATRONPAY_AUTH_METHODS is not valid: choose from "
                                 f"{', '.join(registry.names())} (got 'sso,ldap')")
    assert registry.names() == ("sso", "cas", "primo", "alma")


@pytest.mark.parametrize("methods, missing", [
    ("cas", "PATRONPAY_CAS_URL is required when PATRONPAY_AUTH_METHODS includes cas"),
    ("primo", "PATRONPAY_PRIMO_INSTITUTION is required when PATRONPAY_AUTH_METHODS includes "
              "primo"),
    ("primo,cas", "PATRONPAY_CAS_URL is required when PATRONPAY_AUTH_METHODS includes cas"),
])
def test_a_method_without_the_settings_it_requires_stops_start_up(methods, missing):
    with pytest.raises(ConfigError) as caught:
        load_settings(BASE | {"PATRONPAY_AUTH_METHODS": methods})
    assert str(caught.value) == missing
    complete = BASE | {"PATRONPAY_AUTH_METHODS": methods,
                       "PATRONPAY_CAS_URL": "https://cas.example.edu/cas",
                       "PATRONPAY_PRIMO_INSTITUTION": "01EXU_INST"}
    assert load_settings(complete).auth_methods == tuple(methods.split(","))


def test_registrations_are_consistent():
    fields = {f.name for f in dataclasses.fields(Settings)}
    paths = [(route.path, verb) for method in registry.METHODS for route in method.routes
             for verb in route.methods]
    assert len(paths) == len(set(paths))
    for method in registry.METHODS:
        assert set(method.requires) <= fields, method.name
        assert method.routes, method.name
    help_text = next(f for f in dataclasses.fields(Settings) if f.name == "auth_methods")
    assert f"comma list of {', '.join(registry.names())}." in help_text.metadata["help"]
