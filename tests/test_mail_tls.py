"""The mail server over TLS (proxy/mail/smtp.py, docs/configuration.md): `smtp+starttls://` and
`smtps://` against a real SMTP server (aiosmtpd) on loopback with a certificate of a test
authority. The message goes over TLS, the login only after it; a certificate that is not
trusted, or a server that offers no STARTTLS, defers the message without sending the password."""

from __future__ import annotations

import datetime
import ipaddress
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
