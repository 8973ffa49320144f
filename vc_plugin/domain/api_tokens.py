"""Per-organisation API tokens for host applications; stored as SHA-256 digests only."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..core.clock import Clock
from ..core.crypto import new_token, token_digest
from ..core.models import ApiToken
from .directory import Directory

PREFIX = "vcapi"
LAST_USED_RESOLUTION = timedelta(minutes=5)


class ApiTokens:
    def __init__(self, session: Callable[[], Session], clock: Clock, directory: Directory) -> None:
        self._session = session
        self._clock = clock
        self._directory = directory

    def create(self, organisation_slug: str, name: str) -> tuple[ApiToken, str]:
        """A new token; the clear text is returned once and never stored."""
        organisation = self._directory.organisation(organisation_slug)
        token = new_token(PREFIX)
        row = ApiToken(
            organisation_id=organisation.id, name=name[:100], digest=token_digest(token), created_at=self._clock.now()
        )
        self._session().add(row)
        self._session().commit()
        return row, token

    def authenticate(self, token: str) -> ApiToken | None:
        if not token.startswith(PREFIX + "_") or len(token) > 200:
            return None
        row = self._session().scalars(select(ApiToken).where(ApiToken.digest == token_digest(token))).first()
        if row is None or row.revoked_at is not None:
            return None
        now = self._clock.now()
        if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
            row.last_used_at = now
            self._session().commit()
        return row

    def list(self, organisation_id: int) -> list[ApiToken]:
        return list(
            self._session().scalars(
                select(ApiToken).where(ApiToken.organisation_id == organisation_id).order_by(ApiToken.created_at)
            )
        )

    def revoke(self, organisation_id: int, token_id: int) -> bool:
        row = self._session().get(ApiToken, token_id)
        if row is None or row.organisation_id != organisation_id or row.revoked_at is not None:
            return False
        row.revoked_at = self._clock.now()
        self._session().commit()
        return True
