"""Primo VE's token keys (docs/alma.md#primo-tokens): one ES256 P-256 key per environment, served as
JWKS.

Keys are generated when the emulator starts; nothing is stored on disk. The JWKS also carries an
RS256 key standing in for Alma's own authentication-token key, so a client that does not select
by `kid` and `kty` fails in tests.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ALMA_RS256_KID = "almaAuthKey"
_rsa_lock = threading.Lock()
_rsa_public: dict[str, Any] | None = None


def _alma_token_jwk() -> dict[str, Any]:
    """The decoy RSA key, generated once per process (RSA generation is slow, it is never used)."""
    global _rsa_public
    with _rsa_lock:
        if _rsa_public is None:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
            _rsa_public = {"kty": "RSA", "kid": ALMA_RS256_KID, "n": jwk["n"], "e": jwk["e"]}
        return dict(_rsa_public)


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private: ec.EllipticCurvePrivateKey

    def jwk(self) -> dict[str, Any]:
        # Only kty, kid, crv and the point: `alg`/`use` are not guaranteed by Alma
        # (docs/alma.md#primo-tokens).
        public = ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {"kty": "EC", "crv": "P-256", "kid": self.kid, "x": public["x"], "y": public["y"]}


class PrimoKeys:
    """The production and sandbox signing keys of one institution."""

    def __init__(self, institution: str) -> None:
        self.default_kid = f"primaPrivateKey-{institution}"
        self._initial = {
            env: SigningKey(self.default_kid, ec.generate_private_key(ec.SECP256R1()))
            for env in (False, True)
        }
        self._keys = dict(self._initial)
        self._rotations = 0
        _alma_token_jwk()

    def restore(self) -> None:
        """Back to the keys made at start (used by reset)."""
        self._keys = dict(self._initial)

    def current_kid(self, *, sandbox: bool = False) -> str:
        return self._keys[sandbox].kid

    def jwks(self, *, sandbox: bool) -> dict[str, Any]:
        return {"keys": [self._keys[sandbox].jwk(), _alma_token_jwk()]}

    def sign(self, payload: dict[str, Any], *, sandbox: bool, kid: str | None = None) -> str:
        key = self._keys[sandbox]
        return jwt.encode(payload, key.private, algorithm="ES256",
                          headers={"kid": kid or key.kid})

    def rotate(self, *, same_kid: bool, sandbox: bool = False) -> str:
        """Replace one environment's key (the old one leaves the JWKS); returns its kid."""
        self._rotations += 1
        kid = self._keys[sandbox].kid if same_kid else f"{self.default_kid}-r{self._rotations}"
        self._keys[sandbox] = SigningKey(kid, ec.generate_private_key(ec.SECP256R1()))
        return kid
