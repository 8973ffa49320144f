"""The OpenAPI 3.1 document of the JSON API, built from the same pydantic models it uses."""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import models_json_schema

from ..domain.inputs import AppointmentIn, ParticipantIn, RescheduleIn, SendIn
from ..version import __version__
from .api_models import (
    AppointmentListOut,
    AppointmentOut,
    ErrorOut,
    IssuedInvitationOut,
    PlannedAppointmentOut,
    PractitionerListOut,
)

MODELS = (
    AppointmentIn,
    ParticipantIn,
    RescheduleIn,
    SendIn,
    AppointmentOut,
    PlannedAppointmentOut,
    AppointmentListOut,
    IssuedInvitationOut,
    PractitionerListOut,
    ErrorOut,
)


def _ref(model: type) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _json(model: type, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


def _errors(*statuses: int) -> dict[str, Any]:
    text = {
        400: "Malformed request",
        401: "Not authenticated",
        403: "Not allowed",
        404: "No such appointment or invitation",
        409: "The appointment cannot be changed in its state",
        413: "Request body too large",
        415: "Body must be application/json",
        422: "Invalid fields",
        429: "Too many requests",
    }
    return {str(status): _json(ErrorOut, text[status]) for status in statuses}


def _body(model: type) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(model)}}}


ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 32}}
EXPORT = {
    "description": "Everything stored, personal fields decrypted (format `vc_plugin.export/1`, see docs/privacy.md)",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["format", "exported_at", "not_stored", "appointment"],
                "properties": {
                    "format": {"type": "string", "const": "vc_plugin.export/1"},
                    "exported_at": {"type": "string", "format": "date-time"},
                    "not_stored": {"type": "array", "items": {"type": "string"}},
                    "appointment": {"type": "object"},
                    "participants": {"type": "array", "items": {"type": "object"}},
                    "participant": {"type": "object"},
                    "audit_events": {"type": "array", "items": {"type": "object"}},
                },
            }
        }
    },
}
COMMON = (400, 401, 403, 429)


def document(prefix: str) -> dict[str, Any]:
    _, schemas = models_json_schema(
        [(model, "validation" if model.__name__.endswith("In") else "serialization") for model in MODELS],
        ref_template="#/components/schemas/{model}",
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "vc_plugin API",
            "version": __version__,
            "description": "Plan video consultations and send invitations from a host application. "
            "Authenticate with an organisation's API token (`Authorization: Bearer vcapi_…`) or, from "
            "our own pages, with the session cookie plus the `X-CSRFToken` header.",
        },
        "servers": [{"url": prefix}],
        "security": [{"bearer": []}, {"session": []}],
        "paths": {
            "/api/v1/appointments": {
                "get": {
                    "operationId": "listAppointments",
                    "parameters": [
                        {"name": "upcoming", "in": "query", "schema": {"type": "boolean", "default": True}},
                        {"name": "practitioner", "in": "query", "schema": {"type": "string", "maxLength": 32}},
                        {"name": "from", "in": "query", "schema": {"type": "string", "format": "date-time"}},
                        {"name": "to", "in": "query", "schema": {"type": "string", "format": "date-time"}},
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
                    ],
                    "responses": {"200": _json(AppointmentListOut, "Appointments"), **_errors(*COMMON, 422)},
                },
                "post": {
                    "operationId": "createAppointment",
                    "requestBody": _body(AppointmentIn),
                    "responses": {
                        "201": _json(PlannedAppointmentOut, "Planned; codes are shown only here"),
                        **_errors(*COMMON, 413, 415, 422),
                    },
                },
            },
            "/api/v1/appointments/{id}": {
                "parameters": [ID],
                "get": {
                    "operationId": "getAppointment",
                    "responses": {"200": _json(AppointmentOut, "The appointment"), **_errors(*COMMON, 404)},
                },
                "patch": {
                    "operationId": "rescheduleAppointment",
                    "requestBody": _body(RescheduleIn),
                    "responses": {
                        "200": _json(AppointmentOut, "Rescheduled"),
                        **_errors(*COMMON, 404, 409, 413, 415, 422),
                    },
                },
                "delete": {
                    "operationId": "deleteAppointment",
                    "responses": {"204": {"description": "Deleted with all its data"}, **_errors(*COMMON, 404)},
                },
            },
            "/api/v1/appointments/{id}/cancel": {
                "parameters": [ID],
                "post": {
                    "operationId": "cancelAppointment",
                    "responses": {"200": _json(AppointmentOut, "Cancelled"), **_errors(*COMMON, 404)},
                },
            },
            "/api/v1/appointments/{id}/participants": {
                "parameters": [ID],
                "post": {
                    "operationId": "addParticipant",
                    "requestBody": _body(ParticipantIn),
                    "responses": {
                        "201": _json(IssuedInvitationOut, "Invited; the code is shown only here"),
                        **_errors(*COMMON, 404, 409, 413, 415, 422),
                    },
                },
            },
            "/api/v1/appointments/{id}/export": {
                "parameters": [ID],
                "get": {
                    "operationId": "exportAppointment",
                    "description": "Data-subject access and portability (Art. 15 and 20 GDPR).",
                    "responses": {"200": EXPORT, **_errors(*COMMON, 404)},
                },
            },
            "/api/v1/invitations/{id}": {
                "parameters": [ID],
                "delete": {
                    "operationId": "deleteParticipant",
                    "description": "Delete one participant's invitation and consent records (Art. 17 GDPR).",
                    "responses": {"204": {"description": "Deleted"}, **_errors(*COMMON, 404)},
                },
            },
            "/api/v1/invitations/{id}/export": {
                "parameters": [ID],
                "get": {
                    "operationId": "exportParticipant",
                    "responses": {"200": EXPORT, **_errors(*COMMON, 404)},
                },
            },
            "/api/v1/invitations/{id}/send": {
                "parameters": [ID],
                "post": {
                    "operationId": "sendInvitation",
                    "description": "Issue a new code (the old one stops working) and send the invitation.",
                    "requestBody": _body(SendIn),
                    "responses": {
                        "200": _json(IssuedInvitationOut, "Queued for sending"),
                        **_errors(*COMMON, 404, 409, 413, 415, 422),
                    },
                },
            },
            "/api/v1/probe": {
                "post": {
                    "operationId": "openProbeRoom",
                    "description": "For `flask vc probe`: a two-minute room in presence only, authorised by the "
                    "operator token (not an organisation token).",
                    "requestBody": {
                        "content": {
                            "application/json": {
                                "schema": {"type": "object", "properties": {"relay": {"type": "boolean"}}}
                            }
                        }
                    },
                    "responses": {
                        "201": {
                            "description": "Probe room with two member tokens",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["room", "socket", "tokens", "iceServers"],
                                        "properties": {
                                            "room": {"type": "string"},
                                            "socket": {"type": "string"},
                                            "tokens": {"type": "array", "items": {"type": "string"}},
                                            "iceServers": {"type": "array", "items": {"type": "object"}},
                                        },
                                    }
                                }
                            },
                        },
                        **_errors(401, 409),
                    },
                },
            },
            "/api/v1/practitioners": {
                "get": {
                    "operationId": "listPractitioners",
                    "responses": {"200": _json(PractitionerListOut, "Practitioners who hold consultations")},
                },
            },
        },
        "components": {
            "schemas": schemas["$defs"],
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "Organisation API token"},
                "session": {"type": "apiKey", "in": "cookie", "name": "session"},
            },
        },
    }
