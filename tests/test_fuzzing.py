"""Fuzzing with hypothesis: the signalling parser, the JSON API, and a live socket.

Whatever arrives, the answer is a clean protocol error or a 4xx with a JSON body: never a
500, never a traceback to the client, never a change in another organisation's data or in
a room the sender does not belong to. Every test uses a fixed number of examples and
``derandomize=True``, so a run in CI tries the same cases as a run here.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, unquote

import msgspec
import pytest
import schemathesis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from sqlalchemy import text
from websockets.exceptions import ConnectionClosed
from werkzeug.exceptions import HTTPException

from tests.support.hosts import HostApp, make_host_app
from tests.support.live import LiveServer
from tests.support.people import People, make_people
from tests.support.signal_client import SignalClient, check_in, practitioner_cookie
from vc_plugin.core.models import Base
from vc_plugin.domain.access import Principal
from vc_plugin.domain.inputs import AppointmentIn, ParticipantIn
from vc_plugin.domain.signaling import KNOWN_TYPES, MAX_NOTICE, MAX_SDP, Incoming, ProtocolError, encode, parse, relayed

MAX_BYTES = 65536
PARSER_CODES = {"malformed", "unknown_type", "invalid", "too_large"}
FUZZ = settings(derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck))


def fuzz(examples: int) -> settings:
    """A fixed number of examples, the same ones on every run."""
    return settings(FUZZ, max_examples=examples)


def strict_json(raw: str) -> Any:
    """Parse as browsers do: NaN and Infinity are not JSON."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(raw, parse_constant=refuse)


# --- values that have broken parsers before ---------------------------------------------------------

HOSTILE_TEXT = st.sampled_from(
    [
        "",
        "\x00",
        "a\x00b",
        "\ud800",
        "²",
        "٣",
        "-1",
        "1e309",
        "NaN",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "2026-02-30T10:00:00+01:00",
        "../../etc/passwd",
        "%00",
        "' OR '1'='1",
        "<img src=x onerror=alert(1)>",
        "\u202e\u200b",
        "x" * 70,
        "x" * 70_000,
    ]
)
ANY_TEXT = st.one_of(HOSTILE_TEXT, st.text(max_size=80))
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    ANY_TEXT,
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(ANY_TEXT, st.sampled_from(["type"])), children, max_size=4),
    ),
    max_leaves=12,
)

# --- the signalling parser ------------------------------------------------------------------------------

IDS = st.from_regex(r"\A[A-Za-z0-9_-]{1,40}\Z")
CANDIDATES = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {"candidate": st.text(max_size=200)},
        optional={
            "sdpMid": st.one_of(st.none(), st.text(max_size=64)),
            "sdpMLineIndex": st.one_of(st.none(), st.integers(0, 64)),
            "usernameFragment": st.one_of(st.none(), st.text(max_size=256)),
        },
    ),
)
#: One strategy of valid fields per message type.
VALID_FIELDS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "hello": st.fixed_dictionaries({}, optional={"resume": st.one_of(st.none(), st.text(max_size=64))}),
    "ping": st.fixed_dictionaries(
        {}, optional={"t": st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False))}
    ),
    "leave": st.just({}),
    "offer": st.fixed_dictionaries({"to": IDS, "sdp": st.text(max_size=2000)}),
    "answer": st.fixed_dictionaries({"to": IDS, "sdp": st.text(max_size=2000)}),
    "candidate": st.fixed_dictionaries({"to": IDS, "candidate": CANDIDATES}),
    "ice-restart": st.fixed_dictionaries({"to": IDS}),
    "relay-request": st.fixed_dictionaries({"consent": st.booleans()}),
    "admit": st.fixed_dictionaries({"appointment": IDS, "participant": IDS}),
    "decline": st.fixed_dictionaries({"appointment": IDS, "participant": IDS}),
    "notice": st.fixed_dictionaries({"appointment": IDS, "text": st.text(max_size=MAX_NOTICE)}),
    "end": st.fixed_dictionaries({"appointment": IDS}),
    "handover": st.fixed_dictionaries({"appointment": IDS, "practitioner": IDS}),
}
VALID_MESSAGES = st.sampled_from(sorted(VALID_FIELDS)).flatmap(
    lambda kind: VALID_FIELDS[kind].map(lambda fields: {"type": kind, **fields})
)


@st.composite
def spoiled_messages(draw: st.DrawFn) -> dict[str, Any]:
    """A valid message with one thing gone wrong: a field replaced, removed or added."""
    message = dict(draw(VALID_MESSAGES))
    how = draw(st.sampled_from(["replace", "remove", "add"]))
    fields = [key for key in message if key != "type"]
    if how == "replace" and fields:
        message[draw(st.sampled_from(fields))] = draw(JSON_VALUES)
    elif how == "remove" and fields:
        del message[draw(st.sampled_from(fields))]
    else:
        message[draw(ANY_TEXT)] = draw(JSON_VALUES)
    return message


def check_parse(raw: str | bytes) -> Incoming | None:
    """``parse`` either yields a known message whose relay is strict JSON, or a clean protocol error."""
    try:
        message = parse(raw, MAX_BYTES)
    except ProtocolError as error:
        assert error.code in PARSER_CODES, error.code
        answer = strict_json(error.as_message())
        assert answer["type"] == "error" and answer["code"] == error.code
        assert len(error.as_message()) < 1000 and "Traceback" not in error.message
        return None
    assert message.type in KNOWN_TYPES  # type: ignore[attr-defined]
    strict_json(encode(msgspec.to_builtins(message)))  # what the server echoes (pong) or relays is JSON
    strict_json(relayed(message.type, "sender", message))  # type: ignore[attr-defined]
    return message


@fuzz(1200)
@given(raw=st.one_of(JSON_VALUES.map(json.dumps), st.text(max_size=200), st.binary(max_size=50)))
def test_parser_answers_anything_with_a_message_or_a_protocol_error(raw: str | bytes) -> None:
    check_parse(raw)


@fuzz(1000)
@given(message=spoiled_messages())
def test_parser_refuses_spoiled_messages_cleanly(message: dict[str, Any]) -> None:
    check_parse(json.dumps(message))


@fuzz(400)
@given(message=VALID_MESSAGES)
def test_parser_accepts_every_valid_message_as_sent(message: dict[str, Any]) -> None:
    parsed = check_parse(json.dumps(message))
    assert parsed is not None, message
    dumped = msgspec.to_builtins(parsed)
    for key, value in message.items():
        if key == "candidate" and isinstance(value, dict):
            assert {k: dumped[key][k] for k in value} == value
        else:
            assert dumped[key] == value


def test_parser_limits() -> None:
    """The documented limits, exactly at and just beyond the edge."""
    offer = {"type": "offer", "to": "a", "sdp": "v" * MAX_SDP}
    assert check_parse(json.dumps(offer)) is not None
    assert check_parse(json.dumps({**offer, "sdp": "v" * (MAX_SDP + 1)})) is None
    with pytest.raises(ProtocolError) as large:
        parse(" " * (MAX_BYTES + 1), MAX_BYTES)
    assert large.value.code == "too_large" and large.value.close
    for unhashable in ([], {}, [1], {"a": 1}):
        with pytest.raises(ProtocolError) as unknown:
            parse(json.dumps({"type": unhashable}), MAX_BYTES)
        assert unknown.value.code == "unknown_type"
    for number in ("NaN", "Infinity", "-Infinity", "1e400"):
        with pytest.raises(ProtocolError) as invalid:
            parse('{"type": "ping", "t": ' + number + "}", MAX_BYTES)
        assert invalid.value.code == "invalid"
    assert not math.isnan(parse('{"type": "ping", "t": 1.5}', MAX_BYTES).t)  # type: ignore[attr-defined]


# --- the JSON API -------------------------------------------------------------------------------------


def _digest(host: HostApp, organisation_slug: str) -> str:
    """Everything stored for one organisation's appointments, as one hash."""
    with host.app.app_context():
        rows = host.db.session.execute(
            text(
                "SELECT a.public_id, a.starts_at, a.ends_at, a.state, a.label_encrypted, i.public_id, i.code_hash "
                "FROM vc_appointment a JOIN vc_organisation o ON o.id = a.organisation_id "
                "LEFT JOIN vc_invitation i ON i.appointment_id = a.id WHERE o.slug = :slug ORDER BY 1, 6"
            ),
            {"slug": organisation_slug},
        ).all()
        host.db.session.remove()
    return hashlib.sha256(repr(rows).encode()).hexdigest()


@pytest.fixture(scope="module")
def api_host(postgres_schema: str) -> Iterator[tuple[HostApp, People, dict[str, str], dict[str, str]]]:
    """PostgreSQL (it refuses what SQLite swallows, NUL bytes say), two organisations, real ids."""
    from tests.conftest import _empty_postgres

    _empty_postgres(postgres_schema)
    host = make_host_app(postgres_schema)
    with host.app.app_context():
        people = make_people(host.state)
        start = host.state.clock.now() + timedelta(days=1)
        ids = {}
        for name, person in (("own", people.doc), ("other", people.south)):
            planned = host.state.appointments.plan(
                Principal.of(person),
                AppointmentIn(
                    starts_at=start,
                    ends_at=start + timedelta(minutes=30),
                    participants=[ParticipantIn(email="p@example.org", store_contact=True)],
                ),
            )
            ids[f"{name}_appointment"] = planned.appointment.public_id
            ids[f"{name}_invitation"] = planned.invitations[0].invitation.public_id
        ids["own_practitioner"] = people.doc.public_id
        ids["other_practitioner"] = people.south.public_id
        _, own = host.state.api_tokens.create("praxis-nord", "fuzz")
        _, other = host.state.api_tokens.create("praxis-sued", "untouched")
    yield host, people, ids, {"own": own, "other": other}
    host.close()


def _api_routes(host: HostApp) -> list[tuple[str, str]]:
    routes = []
    for rule in host.app.url_map.iter_rules():
        if rule.rule.startswith("/vc/api/v1/") and rule.endpoint != "vc.api.probe":
            routes += [(method, rule.rule) for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})]
    return sorted(routes)


OFFSETS = st.integers(min_value=-1439, max_value=1439).map(lambda minutes: timezone(timedelta(minutes=minutes)))
MOMENTS = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=OFFSETS),
    st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2028, 1, 1), timezones=OFFSETS),
)


@st.composite
def periods(draw: st.DrawFn) -> dict[str, Any]:
    """Start and end, mostly in a valid order and length, at times from year 1 to 9999."""
    start = draw(MOMENTS)
    length = draw(st.sampled_from([timedelta(minutes=30), timedelta(hours=9), timedelta(minutes=-5)]))
    try:
        end = start + length
    except OverflowError:
        end = start
    return {"starts_at": start.isoformat(), "ends_at": draw(st.one_of(st.just(end.isoformat()), ANY_TEXT))}


@st.composite
def api_requests(draw: st.DrawFn, routes: list[tuple[str, str]], ids: dict[str, str]) -> dict[str, Any]:
    method, rule = draw(st.sampled_from(routes))
    known_ids = st.sampled_from(sorted(ids.values()))
    path = rule
    while "<" in path:
        start, end = path.index("<"), path.index(">")
        value = draw(st.one_of(known_ids, HOSTILE_TEXT, st.text(max_size=40)))
        path = path[:start] + quote(value.encode("utf-8", "surrogatepass"), safe="") + path[end + 1 :]
    query_values = {
        "upcoming": st.one_of(st.sampled_from(["true", "false", "0", "no"]), ANY_TEXT),
        "practitioner": st.one_of(known_ids, ANY_TEXT),
        "from": st.one_of(MOMENTS.map(datetime.isoformat), ANY_TEXT),
        "to": st.one_of(MOMENTS.map(datetime.isoformat), ANY_TEXT),
        "limit": st.one_of(st.integers(-5, 2000).map(str), ANY_TEXT),
    }
    query = draw(st.fixed_dictionaries({}, optional=query_values)) if method == "GET" else {}
    participant = st.fixed_dictionaries(
        {},
        optional={
            "kind": st.one_of(st.sampled_from(["patient", "interpreter", "relative", "other"]), JSON_VALUES),
            "language": st.one_of(st.sampled_from(["de", "en"]), JSON_VALUES),
            "email": st.one_of(st.sampled_from(["p@example.org", "x@y"]), ANY_TEXT),
            "phone": st.one_of(st.sampled_from(["+49 30 1234567", "0049301234567"]), ANY_TEXT),
            "store_contact": st.one_of(st.booleans(), JSON_VALUES),
            "code_by_sms": st.one_of(st.booleans(), JSON_VALUES),
        },
    )
    fields = st.fixed_dictionaries(
        {},
        optional={
            "practitioner": st.one_of(known_ids, ANY_TEXT),
            "kind": st.one_of(st.sampled_from(["single", "group"]), JSON_VALUES),
            "label": st.one_of(ANY_TEXT, JSON_VALUES),
            "relay_only": st.one_of(st.booleans(), JSON_VALUES),
            "participants": st.one_of(st.lists(participant, max_size=3), JSON_VALUES),
            "email": st.one_of(st.sampled_from(["p@example.org", "x@y"]), ANY_TEXT),
            "phone": ANY_TEXT,
            "language": ANY_TEXT,
            "code_by_sms": st.one_of(st.booleans(), JSON_VALUES),
        },
    )
    structured = st.builds(lambda times, rest: {**times, **rest}, st.one_of(periods(), st.just({})), fields)
    body = draw(st.one_of(structured, structured, st.none(), JSON_VALUES))
    raw = draw(st.one_of(st.none(), st.binary(max_size=40))) if body is None else None
    return {"method": method, "path": path, "query": query, "body": body, "raw": raw}


def test_json_api_under_hostile_requests(api_host) -> None:  # type: ignore[no-untyped-def]
    host, _people, ids, tokens = api_host
    routes = _api_routes(host)
    assert len(routes) >= 10
    before_other = _digest(host, "praxis-sued")
    client = host.app.test_client()
    seen: dict[int, int] = {}
    adapter = host.app.url_map.bind("localhost")

    def routed(path: str, method: str) -> bool:
        """Paths that match none of our routes get the host's 404 page, not ours."""
        try:
            adapter.match(unquote(path), method)
        except HTTPException:
            return False
        return True

    own = ids["own_practitioner"]
    late = {"starts_at": "9999-12-31T20:00:00-14:00", "ends_at": "9999-12-31T20:30:00-14:00"}
    listing = {"method": "GET", "path": "/vc/api/v1/appointments", "body": None, "raw": None}
    planning = {"method": "POST", "path": "/vc/api/v1/appointments", "query": {}, "raw": None}

    @fuzz(500)
    @given(request=api_requests(routes, ids))
    # What earlier runs found (500s before the fixes):
    @example(request={**listing, "query": {"limit": "²"}})
    @example(request={**listing, "query": {"from": "0001-01-01T00:00:00+14:00"}})
    @example(request={**listing, "query": {"practitioner": "\x00"}})
    @example(request={**planning, "body": {"practitioner": own, **late}})
    @example(request={**planning, "body": {"practitioner": own + "\x00", **late, "starts_at": "2030-01-01T10:00Z"}})
    def attempt(request: dict[str, Any]) -> None:
        query = "&".join(
            f"{k}={quote(v.encode('utf-8', 'surrogatepass'), safe='')}" for k, v in request["query"].items()
        )
        kwargs: dict[str, Any] = {"query_string": query}
        if request["body"] is not None:
            kwargs["data"] = json.dumps(request["body"])
            kwargs["content_type"] = "application/json"
        elif request["raw"] is not None:
            kwargs["data"] = request["raw"]
            kwargs["content_type"] = "application/json"
        response = client.open(
            request["path"],
            method=request["method"],
            headers={"Authorization": f"Bearer {tokens['own']}"},
            **kwargs,
        )
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        assert response.status_code < 500, (request, response.get_data(as_text=True)[:500])
        body = response.get_data(as_text=True)
        assert "Traceback" not in body
        if response.status_code >= 400 and routed(request["path"], request["method"]):
            assert response.is_json and "error" in response.json, (request, body[:300])

    attempt()
    host.state.jobs.wait_idle()  # type: ignore[attr-defined]
    assert _digest(host, "praxis-sued") == before_other  # the other organisation saw nothing change
    assert {200, 404, 422} <= set(seen), seen  # the fuzzer reached the views, not only the front door


def test_json_api_keeps_its_openapi_contract(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """schemathesis against the served document: valid and invalid requests per operation."""
    host = make_host_app(f"sqlite:///{tmp_path / 'vc.sqlite'}")
    try:
        with host.app.app_context():
            Base.metadata.create_all(host.db.engine)
            make_people(host.state)
            _, token = host.state.api_tokens.create("praxis-nord", "contract")
        schema = schemathesis.openapi.from_wsgi("/vc/api/openapi.json", host.app)
        adapter = host.app.url_map.bind("localhost")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 10
        strategy = st.one_of(
            [
                op.as_strategy(generation_mode=mode)
                for op in operations
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
            ]
        )
        checks = [
            schemathesis.checks.not_a_server_error,
            schemathesis.checks.status_code_conformance,
            schemathesis.checks.content_type_conformance,
            schemathesis.checks.response_schema_conformance,
        ]

        @fuzz(200)
        @given(case=strategy)
        def attempt(case: Any) -> None:
            response = case.call(headers={"Authorization": f"Bearer {token}"})
            if response.status_code == 404 and "json" not in response.headers.get("content-type", [""])[0]:
                # An id the URL map cannot route (over 32 characters, a slash): the host's 404 page.
                with pytest.raises(HTTPException):
                    adapter.match(unquote(response.request.path_url.split("?")[0]), case.method)
                return
            case.validate_response(response, checks=checks)

        attempt()
    finally:
        host.close()


# --- a live socket --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def socket_arena(postgres_schema: str, tmp_path_factory: pytest.TempPathFactory, transport: str):  # type: ignore[no-untyped-def]
    from redis import Redis

    from tests.conftest import REDIS_URL, _empty_postgres

    Redis.from_url(REDIS_URL).flushdb()
    _empty_postgres(postgres_schema)
    config = {"VC_REDIS_URL": REDIS_URL, "VC_WS_MESSAGES_PER_SECOND": 10_000, "VC_WS_BURST": 10_000}
    server = LiveServer(postgres_schema, config, tmp_path_factory.mktemp("socket-fuzz"), signalling=transport).start()
    host = make_host_app(postgres_schema, VC_REDIS_URL=REDIS_URL, VC_PUBLIC_URL=server.url + "/")
    with host.app.app_context():
        people = make_people(host.state)
        rooms = {}
        for name in ("A", "B"):
            start = host.state.clock.now() + timedelta(minutes=5)
            rooms[name] = host.state.appointments.plan(
                Principal.of(people.doc),
                AppointmentIn(starts_at=start, ends_at=start + timedelta(minutes=30)),
            )
        yield server, host, people, rooms
    host.close()
    server.stop()


def test_live_sockets_survive_fuzzing_and_other_rooms_notice_nothing(socket_arena) -> None:  # type: ignore[no-untyped-def]
    server, _host, people, rooms = socket_arena
    a, b = rooms["A"], rooms["B"]
    real_ids = [a.appointment.public_id, b.appointment.public_id, people.doc.public_id, people.south.public_id]
    other_org = practitioner_cookie(people.south)
    fuzz_messages = st.one_of(
        spoiled_messages(),
        VALID_MESSAGES.map(
            lambda m: {k: (v if k == "type" or not isinstance(v, str) else real_ids[len(v) % 4]) for k, v in m.items()}
        ),
        JSON_VALUES,
    ).filter(lambda m: not (isinstance(m, dict) and m.get("type") == "leave") and len(json.dumps(m)) < MAX_BYTES)
    examples: list[Any] = []

    @fuzz(300)
    @given(message=fuzz_messages)
    def collect(message: Any) -> None:
        examples.append(message)

    collect()

    async def scenario() -> None:
        cookie_b = check_in(server.url, b.invitations[0].invitation.public_id, b.invitations[0].code, name="Zaungast")
        bystander = await SignalClient.open(server.ws_url, f"/vc/ws/room/{b.appointment.public_id}", cookie_b)
        welcome = await bystander.hello()
        cookie_a = check_in(server.url, a.invitations[0].invitation.public_id, a.invitations[0].code, name="Fuzzer")
        attackers = {
            "patient": (f"/vc/ws/room/{a.appointment.public_id}", cookie_a),
            "other organisation": ("/vc/ws/practice", other_org),
        }
        for path, cookie in attackers.values():
            client = await SignalClient.open(server.ws_url, path, cookie)
            await client.hello()
            for number, message in enumerate(examples):
                raw = message if isinstance(message, str) else json.dumps(message)
                await client.send(raw)
                marker = number + 0.123456789
                await client.send({"type": "ping", "t": marker})
                while True:
                    reply = strict_json(await client.socket.recv())
                    assert "Traceback" not in json.dumps(reply)
                    if reply.get("type") == "error":
                        assert reply["code"] not in {"internal"}, (message, reply)
                    if reply == {"type": "pong", "t": marker}:
                        break
            await client.close()
        # Room B carries on: nothing arrived there, and its patient still waits in the same place.
        await bystander.send({"type": "ping", "t": 7})
        assert await bystander.receive(timeout=5) == {"type": "pong", "t": 7}
        again = await SignalClient.open(
            server.ws_url,
            "/vc/ws/practice",
            practitioner_cookie(people.doc),
        )
        queue = await again.hello()
        [room_b] = [r for r in queue["rooms"] if r["appointment"] == b.appointment.public_id]
        assert [(m["id"], m["state"]) for m in room_b["members"]] == [(welcome["you"]["id"], "waiting")]
        assert room_b["notice"] is None and room_b["practitioner"] == people.doc.public_id
        for client in (bystander, again):
            with contextlib.suppress(ConnectionClosed):
                await client.close()

    asyncio.run(scenario())
    log = server.output
    assert "Traceback" not in log, log[-3000:]
