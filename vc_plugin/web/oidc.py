"""Sign-in with the organisation's OpenID Connect provider (authlib), and what its claims mean.

Authorization code flow with PKCE (S256), state and nonce; the ID token is validated by
authlib (signature, issuer, audience, expiry, nonce); profile, email and role claims are
read from the userinfo endpoint too, because certified providers may release them only
there. Client authentication: ``client_secret_basic`` or ``private_key_jwt``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.flask_client import FlaskIntegration, OAuth
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from flask import Flask
from joserfc.errors import JoseError

from ..core.config import Settings
from ..core.models import Role
from .cookie import cookie

CLIENT_NAME = "vc_signin"
PROBE_TIMEOUT = 4.0
#: When a person carries several roles, the first that matches wins.
ROLE_PRECEDENCE = (Role.ADMIN, Role.PRACTITIONER, Role.STAFF)


class ProviderUnavailable(RuntimeError):
    """The identity provider does not answer: sign-in is paused, patients are not affected."""


class SignInRejected(ValueError):
    """The provider's answer is not acceptable (state, code, token or claims)."""


@dataclass(frozen=True)
class Identity:
    issuer: str
    subject: str
    display_name: str
    role: Role | None
    organisation: str


def claim(claims: dict[str, Any], path: str) -> Any:
    """A claim by dotted path, e.g. ``realm_access.roles`` for Keycloak."""
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def role_from_claims(claims: dict[str, Any], settings: Settings) -> Role | None:
    raw = claim(claims, settings.oidc_roles_claim)
    if isinstance(raw, str):
        values = set(raw.replace(",", " ").split())
    elif isinstance(raw, list | tuple):
        values = {str(item) for item in raw}
    else:
        values = set()
    for role in ROLE_PRECEDENCE:
        if values & set(settings.oidc_role_map.get(role.value, ())):
            return role
    return None


def organisation_slug(value: Any, default: str) -> str:
    if isinstance(value, list) and value:
        value = value[0]
    if not isinstance(value, str) or not value.strip():
        return default
    slug = re.sub(r"[^a-z0-9._-]+", "-", value.strip().lower()).strip("-")
    return slug[:64] or default


def identity_from_claims(claims: dict[str, Any], settings: Settings, issuer: str) -> Identity:
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise SignInRejected("the provider sent no subject")
    name = claims.get("name") or " ".join(
        part for part in (claims.get("given_name"), claims.get("family_name")) if isinstance(part, str)
    )
    name = name or claims.get("preferred_username") or subject
    organisation = (
        organisation_slug(claim(claims, settings.oidc_organisation_claim), settings.default_organisation)
        if settings.oidc_organisation_claim
        else settings.default_organisation
    )
    return Identity(
        issuer=issuer,
        subject=subject,
        display_name=str(name)[:200],
        role=role_from_claims(claims, settings),
        organisation=organisation,
    )


class _OwnCookieIntegration(FlaskIntegration):
    """authlib keeps the sign-in's state and nonce in Flask's ``session``, which is the host's:
    ours go into our own cookie instead."""

    def get_state_data(self, session: Any, state: str | None) -> Any:
        return super().get_state_data(cookie, state)

    def set_state_data(self, session: Any, state: str, data: Any) -> None:
        super().set_state_data(cookie, state, data)

    def clear_state_data(self, session: Any, state: str | None) -> None:
        super().clear_state_data(cookie, state)


class _PrivateOAuth(OAuth):
    """authlib's registry for our client only; the host's own authlib slot stays untouched."""

    framework_integration_cls = _OwnCookieIntegration

    def init_app(self, app: Flask, cache: Any = None, fetch_token: Any = None, update_token: Any = None) -> None:
        self.app = app


class SignInProvider:
    """The configured provider, as one object per app."""

    def __init__(self, app: Flask, settings: Settings) -> None:
        self.settings = settings
        self.metadata_url = settings.oidc_metadata_url or (
            f"{(settings.oidc_issuer or '').rstrip('/')}/.well-known/openid-configuration"
        )
        registry = _PrivateOAuth(app)
        options: dict[str, Any] = {
            "client_id": settings.oidc_client_id,
            "server_metadata_url": self.metadata_url,
            "client_kwargs": {"scope": settings.oidc_scopes, "code_challenge_method": "S256"},
        }
        if settings.oidc_private_key_file:
            options["client_secret"] = Path(settings.oidc_private_key_file).read_text()
            options["client_kwargs"]["token_endpoint_auth_method"] = PrivateKeyJWT.name
            options["client_auth_methods"] = [PrivateKeyJWT(alg="RS256")]
        else:
            options["client_secret"] = settings.oidc_client_secret
        self.client = registry.register(CLIENT_NAME, **options)

    def probe(self) -> dict[str, Any]:
        """Fetch the discovery document now; a provider that does not answer is unavailable."""
        try:
            response = requests.get(self.metadata_url, timeout=PROBE_TIMEOUT)
            response.raise_for_status()
            metadata = response.json()
        except (requests.RequestException, ValueError) as error:
            raise ProviderUnavailable(f"identity provider unavailable ({type(error).__name__})") from None
        self.client.server_metadata = {**metadata, "_loaded_at": True}
        return metadata

    def start(self, redirect_uri: str) -> Any:
        """Redirect to the provider (PKCE S256, state and nonce kept in the session)."""
        self.probe()
        return self.client.authorize_redirect(redirect_uri)

    def finish(self) -> Identity:
        """Handle the callback: check state, exchange the code, validate the ID token, read userinfo."""
        try:
            token = self.client.authorize_access_token(leeway=30)
            id_claims = dict(token.get("userinfo") or {})
            if not id_claims:
                raise SignInRejected("the provider sent no ID token")
            userinfo = dict(self.client.userinfo(token=token))
        except requests.RequestException as error:
            raise ProviderUnavailable(f"identity provider unavailable ({type(error).__name__})") from None
        except (OAuthError, JoseError, KeyError, ValueError) as error:
            raise SignInRejected(_reason(error)) from None
        if userinfo.get("sub") not in (None, id_claims.get("sub")):
            raise SignInRejected("userinfo belongs to another subject")
        issuer = str(id_claims.get("iss") or self.settings.oidc_issuer)
        return identity_from_claims({**id_claims, **userinfo}, self.settings, issuer)

    def end_session_url(self, post_logout_redirect_uri: str) -> str | None:
        """RP-initiated logout at the provider, when it offers an end-session endpoint."""
        try:
            metadata = self.client.load_server_metadata()
        except requests.RequestException:
            return None
        if not metadata.get("end_session_endpoint"):
            return None
        return self.client.create_logout_url(
            post_logout_redirect_uri=post_logout_redirect_uri, client_id=self.settings.oidc_client_id
        )["url"]


def _reason(error: Exception) -> str:
    if isinstance(error, OAuthError):
        return error.error or "oauth_error"
    if isinstance(error, JoseError):
        return f"invalid ID token: {error.error}"
    return type(error).__name__
