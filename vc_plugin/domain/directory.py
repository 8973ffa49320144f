"""Organisations and the people who sign in: created on first sign-in, with the minimum data."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..core.clock import Clock
from ..core.crypto import public_id
from ..core.models import Organisation, Practitioner, Role


class Directory:
    def __init__(self, session: Callable[[], Session], clock: Clock) -> None:
        self._session = session
        self._clock = clock

    def organisation(self, slug: str, name: str | None = None) -> Organisation:
        """The organisation with this slug, created on first use."""
        session = self._session()
        found = session.scalars(select(Organisation).where(Organisation.slug == slug)).first()
        if found:
            return found
        organisation = Organisation(slug=slug, name=name or slug, created_at=self._clock.now())
        session.add(organisation)
        session.flush()
        return organisation

    def by_public_id(self, practitioner_public_id: str) -> Practitioner | None:
        return (
            self._session()
            .scalars(select(Practitioner).where(Practitioner.public_id == practitioner_public_id))
            .first()
        )

    def by_subject(self, issuer: str, subject: str) -> Practitioner | None:
        return (
            self._session()
            .scalars(select(Practitioner).where(Practitioner.issuer == issuer, Practitioner.subject == subject))
            .first()
        )

    def get(self, practitioner_id: int) -> Practitioner | None:
        return self._session().get(Practitioner, practitioner_id)

    def colleagues(self, organisation_id: int, *, may_join_calls: bool = True) -> list[Practitioner]:
        """Active people of an organisation, by name; with ``may_join_calls`` only those who hold calls."""
        statement = select(Practitioner).where(
            Practitioner.organisation_id == organisation_id, Practitioner.active.is_(True)
        )
        if may_join_calls:
            statement = statement.where(Practitioner.role != Role.STAFF)
        return list(self._session().scalars(statement.order_by(Practitioner.display_name)))

    def provision(
        self,
        *,
        issuer: str,
        subject: str,
        display_name: str,
        role: Role,
        organisation_slug: str,
    ) -> Practitioner:
        """Create the person on first sign-in; keep name, role and organisation current after."""
        session = self._session()
        organisation = self.organisation(organisation_slug)
        person = session.scalars(
            select(Practitioner).where(Practitioner.issuer == issuer, Practitioner.subject == subject)
        ).first()
        now = self._clock.now()
        if person is None:
            person = Practitioner(
                public_id=public_id(),
                issuer=issuer,
                subject=subject,
                created_at=now,
                active=True,
                display_name=display_name,
                role=role,
                organisation_id=organisation.id,
            )
            session.add(person)
        person.display_name = display_name[:200]
        person.role = role
        person.organisation_id = organisation.id
        person.active = True
        person.last_sign_in_at = now
        session.flush()
        return person
