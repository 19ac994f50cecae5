"""The mail server over TLS (proxy/mail/smtp.py, docs/configuration.md): `smtp+starttls://` and
`smtps://` against a real SMTP server (aiosmtpd) on loopback with a certificate of a test
authority. The message goes over TLS, the login only after it; a certificate that is not
trusted, or a server that offers no STARTTLS, defers the message without sending the password."""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from support.rig import free_port

from proxy.mail import smtp

USER, PASSWORD = "fines", "mail-secret-7"
MESSAGE = (b"From: fines@library.example.edu\r\nTo: a@example.edu\r\nSubject: test\r\n"
           b"Message-ID: <1@library.example.edu>\r\n\r\nHello.\r\n")


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def authority(folder: Path, label: str) -> tuple[Path, Path, Path]:
    """A certificate authority and a server certificate for 127.0.0.1 signed by it: the paths
    of the authority's certificate, the server's certificate and the server's key."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def builder(subject: str, issuer: str, public_key) -> x509.CertificateBuilder:
        return (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
                .public_key(public_key).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), False))

    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (builder(f"{label} test CA", f"{label} test CA", ca_key.public_key())
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                       False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    server = (builder("127.0.0.1", f"{label} test CA", key.public_key())
              .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
              .add_extension(x509.SubjectAlternativeName(
                  [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
              .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
              .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                  ca_ski), critical=False)
              .sign(ca_key, hashes.SHA256()))
    paths = (folder / f"{label}-ca.pem", folder / f"{label}-server.pem",
             folder / f"{label}-server.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


class Keeper:
    """What the server saw: each message with whether it came over TLS, and each login."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, bool]] = []
        self.logins: list[tuple[str, str, bool]] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.received.append((envelope.content, over_tls(server)))
        return "250 kept"

    def authenticate(self, server, session, envelope, mechanism, data) -> AuthResult:
        assert isinstance(data, LoginPassword)
        login, password = data.login.decode(), data.password.decode()
        self.logins.append((login, password, over_tls(server)))
        # handled=False: aiosmtpd answers (235 or 535) itself.
        return AuthResult(success=(login, password) == (USER, PASSWORD), handled=False)


def over_tls(server) -> bool:
    return server.transport.get_extra_info("ssl_object") is not None


@pytest.fixture
def certificates(tmp_path, monkeypatch):
    """The test authority trusted the way the system's are (SSL_CERT_FILE, read by
    ssl.create_default_context); a second authority nobody trusts."""
    trusted, untrusted = authority(tmp_path, "trusted"), authority(tmp_path, "untrusted")
    monkeypatch.setenv("SSL_CERT_FILE", str(trusted[0]))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    return {"trusted": trusted, "untrusted": untrusted}


def server_context(paths: tuple[Path, Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(paths[1], paths[2])
    return context


@pytest.fixture
def mail_server():
    started = []

    def start(*, starttls: ssl.SSLContext | None = None,
              implicit: ssl.SSLContext | None = None) -> tuple[Keeper, int]:
        keeper, port = Keeper(), free_port()
        options = {"tls_context": starttls, "require_starttls": True} if starttls else {}
        if implicit:
            # aiosmtpd knows of TLS only by its own STARTTLS: told nothing, it would not offer
            # AUTH on a connection that is TLS from the first byte.
            options["auth_require_tls"] = False
        controller = Controller(keeper, hostname="127.0.0.1", port=port, ssl_context=implicit,
                                authenticator=keeper.authenticate, **options)
        controller.start()
        started.append(controller)
        return keeper, port

    yield start
    for controller in started:
        controller.stop()


def send(url: str, password: str = PASSWORD) -> None:
    smtp.send(smtp.parse_smtp_url(url), password, "fines@library.example.edu",
              ["a@example.edu"], MESSAGE)


def test_starttls_sends_over_tls_and_logs_in_only_after_it(certificates, mail_server):
    keeper, port = mail_server(starttls=server_context(certificates["trusted"]))
    send(f"smtp+starttls://{USER}@127.0.0.1:{port}")
    assert keeper.logins == [(USER, PASSWORD, True)]
    [(content, over_tls)] = keeper.received
    assert over_tls and b"Hello." in content


def test_smtps_is_tls_from_the_first_byte(certificates, mail_server):
    keeper, port = mail_server(implicit=server_context(certificates["trusted"]))
    send(f"smtps://{USER}@127.0.0.1:{port}")
    assert keeper.logins == [(USER, PASSWORD, True)]
    assert [over_tls for _, over_tls in keeper.received] == [True]


@pytest.mark.parametrize("scheme", ["smtp+starttls", "smtps"])
def test_a_certificate_nobody_trusts_defers_the_message_and_keeps_the_password(
        certificates, mail_server, scheme):
    context = server_context(certificates["untrusted"])
    keeper, port = mail_server(**{"starttls" if scheme == "smtp+starttls" else "implicit":
                                  context})
    with pytest.raises(smtp.MailDeferred, match="SSLCertVerificationError"):
        send(f"{scheme}://{USER}@127.0.0.1:{port}")
    assert keeper.logins == [] and keeper.received == []


def test_a_server_without_starttls_gets_neither_the_message_nor_the_password(mail_server):
    keeper, port = mail_server()  # plain SMTP only
    with pytest.raises(smtp.MailDeferred, match="SMTPNotSupportedError: STARTTLS"):
        send(f"smtp+starttls://{USER}@127.0.0.1:{port}")
    assert keeper.logins == [] and keeper.received == []


def test_a_wrong_password_over_tls_is_deferred_not_refused(certificates, mail_server):
    # Fixing the password makes the mail go (docs/staff.md#e-mail): it waits, it is not failed.
    keeper, port = mail_server(starttls=server_context(certificates["trusted"]))
    with pytest.raises(smtp.MailDeferred, match="535"):
        send(f"smtp+starttls://{USER}@127.0.0.1:{port}", password="wrong")
    assert keeper.received == []


# PATRONPAY_SMTP_CA_FILE: a campus relay whose certificate a campus CA signed. The "untrusted"
# authority plays the campus CA: not in the system's store (SSL_CERT_FILE), named by the file.

def server_for(scheme: str, mail_server, paths: tuple[Path, Path, Path]) -> tuple[Keeper, int]:
    context = server_context(paths)
    return mail_server(**{"starttls" if scheme == "smtp+starttls" else "implicit": context})


def send_with_ca(url: str, ca_file: Path) -> None:
    smtp.send(smtp.parse_smtp_url(url, str(ca_file)), PASSWORD, "fines@library.example.edu",
              ["a@example.edu"], MESSAGE)


@pytest.mark.parametrize("scheme", ["smtp+starttls", "smtps"])
def test_a_campus_ca_file_lets_the_message_go_over_tls(certificates, mail_server, scheme):
    campus = certificates["untrusted"]
    keeper, port = server_for(scheme, mail_server, campus)
    url = f"{scheme}://{USER}@127.0.0.1:{port}"
    # Without the file the system's store decides: deferred, no password sent.
    with pytest.raises(smtp.MailDeferred, match="SSLCertVerificationError"):
        send(url)
    assert keeper.logins == [] and keeper.received == []
    send_with_ca(url, campus[0])
    assert keeper.logins == [(USER, PASSWORD, True)]
    [(content, over_tls)] = keeper.received
    assert over_tls and b"Hello." in content


@pytest.mark.parametrize("scheme", ["smtp+starttls", "smtps"])
def test_the_ca_file_is_trusted_instead_of_the_system_store(certificates, mail_server, scheme):
    """A server whose certificate the system's store would accept is refused once a CA file
    names other authorities: the file says exactly who may vouch for the relay."""
    keeper, port = server_for(scheme, mail_server, certificates["trusted"])
    with pytest.raises(smtp.MailDeferred, match="SSLCertVerificationError"):
        send_with_ca(f"{scheme}://{USER}@127.0.0.1:{port}", certificates["untrusted"][0])
    assert keeper.logins == [] and keeper.received == []


def test_the_mail_worker_is_given_the_ca_file(certificates, tmp_path, monkeypatch):
    from proxy.config import load_settings
    from proxy.mail.worker import mail_policy

    env = start_up_environment(tmp_path) | {
        "PATRONPAY_SMTP_URL": f"smtps://{USER}@127.0.0.1:4650",
        "PATRONPAY_MAIL_FROM": "fines@library.example.edu",
        "PATRONPAY_SMTP_CA_FILE": str(certificates["untrusted"][0])}
    policy = mail_policy(load_settings(env))
    assert policy is not None and policy.target.ca_file == str(certificates["untrusted"][0])
    assert policy.target.url == f"smtps://{USER}@127.0.0.1:4650"  # as logged: no file in it


def start_up_environment(tmp_path: Path) -> dict[str, str]:
    return {
        "PATRONPAY_PUBLIC_URL": "https://pay.library.example.edu/",
        "PATRONPAY_SECRET_KEYS": "k" * 32,
        "PATRONPAY_ALMA_API_URL": "https://api-na.hosted.exlibrisgroup.com/almaws/v1",
        "PATRONPAY_ALMA_API_KEY": "l7xx-test-key",
        "PATRONPAY_CASHNET_CHECKOUT_URL": "https://commerce.cashnet.com/LIBFINES",
        "PATRONPAY_CASHNET_ITEM_CODE": "LIB-FINE",
        "PATRONPAY_CASHNET_POSTBACK_TOKEN": "t" * 40,
        "PATRONPAY_DATABASE": str(tmp_path / "ledger.sqlite3"),
    }


@pytest.mark.parametrize(("content", "reason"), [
    (None, "cannot be read: No such file or directory"),
    (b"", "holds no PEM certificate that can be loaded"),
    (b"-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n",
     "holds no PEM certificate that can be loaded"),
    ("directory", "cannot be read: Is a directory"),
])
def test_a_bad_ca_file_stops_start_up_with_one_line(tmp_path, monkeypatch, capsys, content,
                                                    reason):
    import uvicorn

    from patronpay.cli import main

    path = tmp_path / "campus-ca.pem"
    if content == "directory":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    env = start_up_environment(tmp_path) | {
        "PATRONPAY_SMTP_URL": f"smtp+starttls://{USER}@127.0.0.1:587",
        "PATRONPAY_MAIL_FROM": "fines@library.example.edu",
        "PATRONPAY_SMTP_CA_FILE": str(path)}
    for name in [n for n in os.environ if n.startswith("PATRONPAY_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    def never(*args, **kwargs):
        raise AssertionError("serve went on with a bad PATRONPAY_SMTP_CA_FILE")

    monkeypatch.setattr(uvicorn, "run", never)
    assert main(["serve"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.startswith("patronpay: configuration error: PATRONPAY_SMTP_CA_FILE is not "
                          f"valid: {reason}")
    assert str(path) in err
