"""A deliberately faulty OpenID provider for attack tests: it issues ID tokens with one defect.

The happy path is tested against the real npm ``oidc-provider``; this one exists only to
prove that our client refuses tokens a compromised or misconfigured provider might send.
"""

from __future__ import annotations

import threading
import time
from typing import Any
from urllib.parse import urlencode

from flask import Flask, jsonify, redirect, request
from joserfc import jwt
from joserfc.jwk import RSAKey
from werkzeug.serving import make_server

from tests.support.processes import free_port

DEFECTS = ("audience", "expired", "nonce", "signature", "issuer")


class RogueProvider:
    def __init__(self, client_id: str, defect: str) -> None:
        assert defect in DEFECTS
        self.client_id, self.defect = client_id, defect
        self.port = free_port()
        self.key = RSAKey.generate_key(2048, parameters={"kid": "good"})
        self.other_key = RSAKey.generate_key(2048, parameters={"kid": "good"})
        self.nonces: dict[str, str] = {}
        self.app = self._build()
        self._server = make_server("127.0.0.1", self.port, self.app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> RogueProvider:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()

    def _id_token(self, code: str) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": "doc",
            "aud": self.client_id,
            "iat": now,
            "exp": now + 300,
            "nonce": self.nonces.get(code, ""),
        }
        if self.defect == "audience":
            claims["aud"] = "some-other-client"
        elif self.defect == "expired":
            claims["iat"], claims["exp"] = now - 7200, now - 3600
        elif self.defect == "nonce":
            claims["nonce"] = "not-the-nonce-we-were-given"
        elif self.defect == "issuer":
            claims["iss"] = "https://evil.example"
        key = self.other_key if self.defect == "signature" else self.key
        return jwt.encode({"alg": "RS256", "kid": "good"}, claims, key)

    def _build(self) -> Flask:
        app = Flask("rogue_idp")

        @app.get("/.well-known/openid-configuration")
        def discovery():  # type: ignore[no-untyped-def]
            return jsonify(
                issuer=self.issuer,
                authorization_endpoint=f"{self.issuer}/authorize",
                token_endpoint=f"{self.issuer}/token",
                userinfo_endpoint=f"{self.issuer}/userinfo",
                jwks_uri=f"{self.issuer}/jwks",
                response_types_supported=["code"],
                id_token_signing_alg_values_supported=["RS256"],
                code_challenge_methods_supported=["S256"],
            )

        @app.get("/jwks")
        def jwks():  # type: ignore[no-untyped-def]
            return jsonify(keys=[self.key.as_dict(private=False)])

        @app.get("/authorize")
        def authorize():  # type: ignore[no-untyped-def]
            code = f"code-{len(self.nonces)}"
            self.nonces[code] = request.args.get("nonce", "")
            query = urlencode({"code": code, "state": request.args["state"]})
            return redirect(f"{request.args['redirect_uri']}?{query}")

        @app.post("/token")
        def token():  # type: ignore[no-untyped-def]
            code = request.form["code"]
            return jsonify(access_token="at", token_type="Bearer", expires_in=300, id_token=self._id_token(code))

        @app.get("/userinfo")
        def userinfo():  # type: ignore[no-untyped-def]
            return jsonify(sub="doc", name="Dr. Rogue", roles=["practitioner"])

        return app
