"""The people of two organisations, as tests need them."""

from __future__ import annotations

from dataclasses import dataclass

from vc_plugin.core.models import Practitioner, Role
from vc_plugin.web.state import VCState


@dataclass
class People:
    doc: Practitioner  # practitioner, organisation A
    colleague: Practitioner  # another practitioner, organisation A
    desk: Practitioner  # staff, organisation A
    boss: Practitioner  # admin, organisation A
    south: Practitioner  # practitioner, organisation B


def make_people(state: VCState) -> People:
    def person(subject: str, name: str, role: Role, organisation: str) -> Practitioner:
        return state.directory.provision(
            issuer="test", subject=subject, display_name=name, role=role, organisation_slug=organisation
        )

    people = People(
        doc=person("doc", "Dr. Maria Berg", Role.PRACTITIONER, "praxis-nord"),
        colleague=person("col", "Dr. Jonas Kurz", Role.PRACTITIONER, "praxis-nord"),
        desk=person("desk", "Tom Empfang", Role.STAFF, "praxis-nord"),
        boss=person("boss", "Anna Admin", Role.ADMIN, "praxis-nord"),
        south=person("south", "Dr. Sam Süd", Role.PRACTITIONER, "praxis-sued"),
    )
    state.db.session.commit()
    return people
