"""The sans-IO signalling core, driven by plain calls: events in, actions out, no sockets or Redis.

The same sessions run under the flask-sock transport (tests/test_signaling.py and the attack,
fault and authorization tests walk them over real sockets); here each rule is checked on its own,
including what must *not* happen: nothing relayed or forwarded after a revocation, no relay
credentials without consent, nothing about other waiting people told to someone waiting.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.hosts import base_config
from vc_plugin.adapters.presence import Member, MemberRole, MemberState, Room
from vc_plugin.core.config import Settings
from vc_plugin.core.models import Role
from vc_plugin.domain.check_in import ParticipantPass
from vc_plugin.domain.dashboard_session import DashboardSession
from vc_plugin.domain.entrance import Barred, Joined, SentAway
from vc_plugin.domain.revocation import CLOSE_CODE, Reason, Revocation
from vc_plugin.domain.room_session import PASS_CHECK_SECONDS, RoomIdentity, RoomPhase, RoomSession
from vc_plugin.domain.server_messages import (
    Admitted,
    Ended,
    HandedOver,
    Peer,
    PeerJoined,
    Replaced,
    SentBack,
    encode,
)
from vc_plugin.domain.socket_actions import (
    CheckPass,
    Close,
    Command,
    EnsureNotRevoked,
    Forget,
    Goodbye,
    GrantRelay,
    Join,
    Leave,
    LoadQueue,
    Relay,
    Send,
    Subscribe,
    Touch,
)
from vc_plugin.domain.socket_session import Ending
from vc_plugin.domain.topics import event_message
from vc_plugin.domain.waiting_room import Staffer

AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
ROOM = Room(
    appointment="appt1",
    organisation=1,
    practitioner="doc1",
    starts_at=AT.timestamp(),
    ends_at=(AT + timedelta(minutes=30)).timestamp(),
    expires_at=(AT + timedelta(hours=2)).timestamp(),
)
PASS = ParticipantPass("inv1", "appt1", "doc1", "pat1", "patient", "de", (AT + timedelta(hours=1)).timestamp())
DOCTOR = Staffer(public_id="doc1", id=1, role=Role.PRACTITIONER, organisation_id=1, name="Dr. A")


def settings(**overrides: object) -> Settings:
    values = {"encryption_keys": base_config("x")["VC_ENCRYPTION_KEYS"], "ws_burst": 5, **overrides}
    return Settings(**values)


def patient_session(config: Settings | None = None, room: Room = ROOM) -> RoomSession:
    identity = RoomIdentity("appt1", "pat1", MemberRole.PATIENT, "Frau Test", participant_pass=PASS)
    return RoomSession(config or settings(), identity, room, connection="c1", opened=AT.timestamp(), now=0.0)


def doctor_session() -> RoomSession:
    identity = RoomIdentity("appt1", "doc1", MemberRole.PRACTITIONER, "Dr. A", kind="practitioner", staffer=DOCTOR)
    return RoomSession(settings(), identity, ROOM, connection="c2", opened=AT.timestamp(), now=0.0)


def member(id_: str, state: MemberState, role: MemberRole = MemberRole.PATIENT) -> Member:
    return Member(id=id_, role=role, name=id_, state=state, since=1.0)


def sent(actions: list) -> list[dict]:
    return [json.loads(a.text) for a in actions if isinstance(a, Send)]


def send(session: RoomSession | DashboardSession, body: dict, now: float = 1.0) -> list:
    return session.receive(json.dumps(body), now, AT)


def welcomed(session: RoomSession, state: MemberState = MemberState.WAITING, peers: tuple[Member, ...] = ()) -> dict:
    actions = send(session, {"type": "hello"})
    join = next(a for a in actions if isinstance(a, Join))
    you = replace(join.member, state=state, connection="c1")
    outcome = Joined(you, "resume-token", ROOM, list(peers), 1 if state is MemberState.WAITING else 0, "Dr. A")
    (welcome,) = sent(session.joined(outcome, AT))
    return welcome


def offer(to: str) -> dict:
    return {"type": "offer", "to": to, "sdp": "v=0"}


def test_nothing_but_hello_or_ping_before_hello():
    session = patient_session()
    assert sent(send(session, offer("doc1"))) == [
        {"type": "error", "code": "hello_first", "message": "send hello first"}
    ]
    assert not session.closed


def test_hello_listens_before_it_arrives_then_welcomes_a_waiting_patient():
    session = patient_session()
    actions = send(session, {"type": "hello"})
    assert isinstance(actions[0], Subscribe) and isinstance(actions[1], Join)
    assert actions[0].topics == ("m:appt1:pat1", "r:appt1")  # "replaced" comes on the member's channel
    assert actions[1].member.state is MemberState.WAITING and actions[1].member.invitation == "inv1"
    session2 = patient_session()
    welcome = welcomed(session2)
    assert welcome["type"] == "welcome" and welcome["state"] == "waiting" and welcome["position"] == 1
    assert welcome["iceTransportPolicy"] == "all"
    assert all("credential" not in server for server in welcome["iceServers"])  # no relay before consent
    assert session2.phase is RoomPhase.WAITING
    assert sent(send(session2, {"type": "hello"}))[0]["code"] == "already_joined"


def test_the_device_check_travels_with_a_patients_hello_only():
    """Issue 17, item 6: the practitioner sees whether camera and microphone passed; staff say nothing of theirs."""
    actions = send(patient_session(), {"type": "hello", "devices": {"camera": False, "microphone": True}})
    join = next(a for a in actions if isinstance(a, Join))
    assert (join.member.camera, join.member.microphone) == (False, True)
    silent = next(a for a in send(patient_session(), {"type": "hello"}) if isinstance(a, Join))
    assert (silent.member.camera, silent.member.microphone) == (None, None), "not told is not 'works'"
    staff_join = next(
        a
        for a in send(doctor_session(), {"type": "hello", "devices": {"camera": True, "microphone": True}})
        if isinstance(a, Join)
    )
    assert staff_join.member.camera is None


@pytest.mark.parametrize(
    "devices",
    [
        {"camera": "yes", "microphone": True},
        {"camera": True},
        {"camera": 1, "microphone": 0},
        "ok",
        {"camera": True, "microphone": True, "x": 1},
    ],
)
def test_a_malformed_device_report_is_refused_and_nothing_arrives(devices):
    session = patient_session()
    actions = send(session, {"type": "hello", "devices": devices})
    assert not any(isinstance(a, Join) for a in actions)
    (error,) = sent(actions)
    assert error["code"] == "invalid" and error["ref"] == "hello", error
    assert not session.closed and not session.hello_sent  # a corrected hello still works


def test_a_waiting_patient_relays_nothing_and_hears_nothing_of_others():
    session = patient_session()
    welcomed(session)
    refused = send(session, offer("doc1"))
    assert not any(isinstance(a, Relay) for a in refused)
    assert sent(refused)[0]["code"] == "not_admitted"
    someone = event_message(PeerJoined(peer=Peer.of(member("pat2", MemberState.ADMITTED))))
    assert session.event(someone) == []  # people in the waiting room do not learn who else is there


def test_admitted_patients_relay_to_known_peers_and_verify_unknown_ones():
    session = patient_session()
    welcomed(session)
    doctor = member("doc1", MemberState.ADMITTED, MemberRole.PRACTITIONER)
    forwarded = session.event(event_message(Admitted(peers=[Peer.of(doctor)])))
    assert sent(forwarded)[0]["type"] == "admitted" and session.phase is RoomPhase.ADMITTED
    (known,) = send(session, offer("doc1"))
    assert isinstance(known, Relay) and known.to == "doc1" and not known.verify
    assert json.loads(known.text) == {"type": "offer", "from": "pat1", "sdp": "v=0", "pc": None, "to_pc": None}
    (unknown,) = send(session, offer("pat9"), now=2.0)
    assert unknown.verify
    assert sent(session.relay_result(unknown, False, 2.0))[0]["code"] == "unknown_peer"
    assert "pat9" not in session.peers
    assert sent(send(session, offer("pat1"), now=3.0))[0]["code"] == "unknown_peer"  # not to oneself


def test_nothing_is_relayed_or_forwarded_after_a_revocation():
    session = patient_session()
    welcomed(session, MemberState.ADMITTED, (member("doc1", MemberState.ADMITTED, MemberRole.PRACTITIONER),))
    final = session.revoke(Revocation(("a:appt1",), AT.timestamp(), Reason.CANCELLED))
    assert sent(final) == [{"type": "revoked", "reason": "cancelled"}]
    assert final[-1] == Close(CLOSE_CODE, "revoked")
    assert session.phase is RoomPhase.CLOSED and session.ending is Ending.REVOKED
    assert send(session, offer("doc1")) == []
    assert session.event('R{"type":"offer","from":"doc1","sdp":"v=0"}') == []
    assert session.event(event_message(Ended())) == []
    assert session.revoke(Revocation(("a:appt1",), AT.timestamp(), Reason.CANCELLED)) == []
    assert session.socket_closed() == [Forget(Goodbye.REMOVE)]


def test_a_signed_out_practitioner_keeps_the_place():
    session = doctor_session()
    welcomed(session, MemberState.ADMITTED)
    session.revoke(Revocation(("s:doc1",), AT.timestamp(), Reason.SIGNED_OUT))
    assert session.socket_closed() == [Forget(Goodbye.OFFLINE)]


def test_revoked_while_arriving_leaves_nothing_behind():
    barred = patient_session()
    send(barred, {"type": "hello"})
    actions = barred.joined(Barred(Reason.NEW_CODE), AT)
    assert sent(actions) == [{"type": "revoked", "reason": "new_code"}]
    assert barred.socket_closed() == []  # the entrance took the arrival back
    raced = patient_session()
    send(raced, {"type": "hello"})
    raced.revoke(Revocation(("i:inv1",), AT.timestamp(), Reason.NEW_CODE))
    assert raced.joined(Joined(member("pat1", MemberState.WAITING), "t", ROOM, [], 1, ""), AT) == []
    assert raced.socket_closed() == [Forget(Goodbye.REMOVE)]


def test_sent_away_earlier_is_told_again_and_leaves_quietly():
    session = patient_session()
    send(session, {"type": "hello"})
    actions = session.joined(SentAway(), AT)
    assert sent(actions) == [{"type": "declined"}] and actions[-1] == Close(1000, "declined")
    assert session.socket_closed() == []


def test_no_relay_credentials_without_consent():
    config = settings(turn_urls=["turn:turn.example.org:3478"], turn_secret="s" * 32)
    session = patient_session(config)
    welcomed(session)
    assert sent(send(session, {"type": "relay-request", "consent": True}))[0]["code"] == "not_admitted"
    session.event(event_message(Admitted(peers=[])))
    refused = send(session, {"type": "relay-request", "consent": False}, now=2.0)
    assert sent(refused)[0]["code"] == "relay_consent_required" and not any(isinstance(a, GrantRelay) for a in refused)
    assert send(session, {"type": "relay-request", "consent": True}, now=3.0) == [GrantRelay(record_consent=True)]
    (relay,) = sent(session.relay_granted(AT))
    turn = next(s for s in relay["iceServers"] if "credential" in s)
    grace = timedelta(minutes=config.join_grace_minutes)
    assert int(turn["username"].split(":")[0]) <= (datetime.fromtimestamp(ROOM.ends_at, UTC) + grace).timestamp()
    assert send(session, {"type": "relay-request", "consent": True}, now=4.0) == [GrantRelay(record_consent=False)]


def test_no_relay_server_configured_is_said_plainly():
    session = patient_session()
    welcomed(session)
    session.event(event_message(Admitted(peers=[])))
    assert sent(send(session, {"type": "relay-request", "consent": True}))[0]["code"] == "relay_unavailable"


def test_leaving_says_goodbye_and_leaves_quietly():
    session = patient_session()
    welcomed(session)
    actions = send(session, {"type": "leave"})
    assert isinstance(actions[0], Leave) and sent(actions) == [{"type": "left"}]
    assert actions[-1] == Close(1000, "left") and session.ending is Ending.LEFT
    assert session.socket_closed() == []


def test_a_dropped_socket_keeps_the_place_offline():
    session = patient_session()
    welcomed(session)
    assert session.socket_closed() == [Forget(Goodbye.OFFLINE)]
    assert session.ending is Ending.GONE


def test_replaced_and_ended_close_without_a_word_about_the_member():
    replaced = patient_session()
    welcomed(replaced)
    actions = replaced.event(event_message(Replaced(connection="c1")))
    assert sent(actions)[0]["code"] == "replaced" and actions[-1] == Close(1000, "replaced")
    assert replaced.socket_closed() == []
    ended = patient_session()
    welcomed(ended)
    actions = ended.event(event_message(Ended()))
    assert sent(actions) == [{"type": "ended"}] and actions[-1] == Close(1000, "ended")
    assert ended.socket_closed() == []


def test_news_of_another_socket_being_replaced_leaves_this_one_open():
    newer = patient_session()  # connection "c1", which replaced an older one of the same member
    welcomed(newer)
    assert newer.event(event_message(Replaced(connection="c0"))) == []
    assert newer.event(event_message(Replaced())) == []  # naming no socket, it closes none
    assert not newer.closed and newer.phase is RoomPhase.WAITING
    assert sent(send(newer, {"type": "ping", "t": 7})) == [{"type": "pong", "t": 7}]


def test_admission_heard_before_the_welcome_is_not_taken_back():
    session = patient_session()
    send(session, {"type": "hello"})
    session.event(event_message(Admitted(peers=[])))
    outcome = Joined(member("pat1", MemberState.WAITING), "t", ROOM, [], 1, "Dr. A")
    (welcome,) = sent(session.joined(outcome, AT))
    assert welcome["state"] == "admitted" and session.phase is RoomPhase.ADMITTED


def test_the_phase_moves_forward_and_back_to_waiting_only():
    session = patient_session()
    welcomed(session, MemberState.ADMITTED)
    with pytest.raises(AssertionError):
        session._enter(RoomPhase.OPENED)
    session._enter(RoomPhase.WAITING)  # the one deliberate step back: sent back to the waiting room
    session._enter(RoomPhase.CLOSED)
    with pytest.raises(AssertionError):
        session._enter(RoomPhase.WAITING)


def test_sent_back_the_patient_waits_again_and_relays_nothing_either_way():
    session = patient_session()
    doctor = member("doc1", MemberState.ADMITTED, MemberRole.PRACTITIONER)
    welcomed(session, MemberState.ADMITTED, (doctor,))
    assert isinstance(send(session, offer("doc1"))[0], Relay)  # in the call: relayed
    back = session.event(event_message(SentBack(practitioner_name="Dr. A", position=1)))
    assert sent(back) == [{"type": "sent-back", "practitioner_name": "Dr. A", "position": 1}]
    assert session.phase is RoomPhase.WAITING and session.peers == set() and not session.closed
    refused = send(session, offer("doc1"), now=2.0)
    assert not any(isinstance(a, Relay) for a in refused) and sent(refused)[0]["code"] == "not_admitted"
    assert sent(send(session, {"type": "ice-restart", "to": "doc1"}, now=3.0))[0]["code"] == "not_admitted"
    # A peer that has not heard "peer-left" yet reaches nobody: nothing is forwarded while waiting.
    assert session.event('R{"type":"offer","from":"doc1","sdp":"v=0"}') == []
    assert session.event(event_message(PeerJoined(peer=Peer.of(doctor)))) == []
    assert session.restorable()[1].state is MemberState.WAITING  # written back as waiting after an outage
    # Admitted again: the call resumes as the first time.
    session.event(event_message(Admitted(peers=[Peer.of(doctor)])))
    assert session.phase is RoomPhase.ADMITTED and isinstance(send(session, offer("doc1"), now=4.0)[0], Relay)
    assert session.event('R{"type":"offer","from":"doc1","sdp":"v=0"}') != []


def test_sent_back_means_nothing_to_someone_not_in_the_call():
    waiting = patient_session()
    welcomed(waiting)
    assert waiting.event(event_message(SentBack(practitioner_name="Dr. A", position=1))) == []
    assert waiting.phase is RoomPhase.WAITING


def test_a_handover_closes_the_practitioners_call_quietly_and_nobody_elses():
    doctor = doctor_session()
    welcomed(doctor, MemberState.ADMITTED)
    actions = doctor.event(event_message(HandedOver(practitioner_name="Dr. B")))
    assert sent(actions) == [{"type": "handed-over", "practitioner_name": "Dr. B"}]
    assert actions[-1] == Close(1000, "handed-over") and doctor.ending is Ending.HANDED_OVER
    assert doctor.socket_closed() == []  # the waiting room took the practitioner out already
    waiting = patient_session()
    welcomed(waiting)
    assert sent(waiting.event(event_message(HandedOver(practitioner_name="Dr. B")))) == [
        {"type": "handed-over", "practitioner_name": "Dr. B"}
    ]
    assert not waiting.closed and waiting.phase is RoomPhase.WAITING


def test_flooding_closes_the_socket():
    session = patient_session(settings(ws_burst=2))
    ping = {"type": "ping"}
    answers = [send(session, ping, now=5.0) for _ in range(2)]
    assert all(sent(a)[0]["type"] == "pong" for a in answers)
    codes = []
    for _ in range(6):
        actions = send(session, ping, now=5.0)  # no time passes: the bucket does not refill
        codes += [m.get("code") for m in sent(actions)]
    assert codes == ["rate_limited"] * 6 and session.ending is Ending.FLOODING
    assert send(session, ping, now=100.0) == []  # closed: nothing more is read


def test_oversized_and_malformed_frames():
    session = patient_session(settings(ws_max_message_bytes=4096))
    big = session.receive(json.dumps(offer("x" * 5) | {"sdp": "v" * 5000}), 1.0, AT)
    assert sent(big)[0]["code"] == "too_large" and big[-1] == Close(1008, "too_large")
    other = patient_session()
    assert sent(other.receive("{not json", 1.0, AT))[0]["code"] == "malformed"
    assert sent(other.receive(b"\x00\x01", 2.0, AT))[0]["code"] == "malformed"
    lone = '{"type":"offer","to":"doc1","sdp":"\\ud800"}'  # an escaped half of a surrogate pair
    assert sent(other.receive(lone, 3.0, AT))[0]["code"] == "malformed"
    assert not other.closed


def test_a_malformed_room_event_is_ignored():
    session = patient_session()
    welcomed(session)
    assert session.event('E{"type":"admitted","peers":"everyone"}') == []
    assert session.event("E[1,2") == []
    assert session.phase is RoomPhase.WAITING


def test_idle_touches_presence_rarely_and_asks_the_database_once_a_minute():
    session = patient_session()
    welcomed(session)
    assert session.idle(11.0, AT) == [Touch()]
    assert session.idle(15.0, AT) == []  # touched four seconds ago
    assert session.idle(PASS_CHECK_SECONDS + 1, AT) == [Touch(), CheckPass()]
    assert session.pass_checked(True) == []
    expired = session.pass_checked(False)
    assert sent(expired)[0]["code"] == "expired" and expired[-1] == Close(1008, "expired")


def test_a_swept_session_leaves_presence_and_passes_to_its_transport():
    """The signalling server touches every member in one sweep and hears revocations as events:
    its sessions never ask for a touch or a pass check of their own (a thread and a Redis round
    trip per socket every ten seconds otherwise), but they still say whom the sweep should touch."""
    identity = RoomIdentity("appt1", "pat1", MemberRole.PATIENT, "Frau Test", participant_pass=PASS)
    session = RoomSession(settings(), identity, ROOM, connection="c1", opened=AT.timestamp(), now=0.0, swept=True)
    assert session.present() is None, "not in the room before hello"
    welcomed(session, MemberState.ADMITTED, peers=(member("pat2", MemberState.ADMITTED),))
    assert session.present() == ("appt1", "pat1")
    later = PASS_CHECK_SECONDS * 3
    pong = send(session, {"type": "ping", "t": 1}, now=later)
    assert [type(a) for a in pong] == [Send] and sent(pong) == [{"type": "pong", "t": 1}]
    assert session.idle(later + 1, AT) == []
    (relay,) = send(session, {"type": "offer", "to": "pat2", "sdp": "v=0"}, now=later + 2)
    assert session.relay_result(relay, True, later + 2) == []
    assert session.idle(12.0, AT + timedelta(hours=2))[-1] == Close(1008, "expired"), "its own expiry still counts"
    assert session.present() is None, "closed: nothing to touch"


def test_a_pass_past_its_time_closes_without_asking_the_database():
    session = patient_session()
    welcomed(session)
    actions = session.idle(12.0, AT + timedelta(hours=2))
    assert not any(isinstance(a, CheckPass) for a in actions)
    assert sent(actions)[0]["code"] == "expired" and session.ending is Ending.EXPIRED


def test_only_the_practitioner_commands_and_only_here():
    patient = patient_session()
    welcomed(patient)
    admit = {"type": "admit", "appointment": "appt1", "participant": "pat2"}
    assert sent(send(patient, admit))[0]["code"] == "not_allowed"
    doctor = doctor_session()
    welcomed(doctor, MemberState.ADMITTED)
    elsewhere = send(doctor, {**admit, "appointment": "appt2"})
    assert sent(elsewhere)[0]["code"] == "unknown_room" and not any(isinstance(a, Command) for a in elsewhere)
    (command,) = send(doctor, admit, now=2.0)
    assert command.staffer == DOCTOR and command.message.participant == "pat2"
    send_back = {"type": "send-back", "appointment": "appt1", "participant": "pat2"}
    assert sent(send(patient, send_back, now=3.0))[0]["code"] == "not_allowed"
    (command,) = send(doctor, send_back, now=3.0)
    assert isinstance(command, Command) and command.message.type == "send-back"


def test_dashboards_hear_queues_and_never_relay():
    doctor = DashboardSession(settings(), DOCTOR, opened=AT.timestamp(), now=0.0)
    assert send(doctor, {"type": "hello"}) == [EnsureNotRevoked(), Subscribe(("q:p:doc1",)), LoadQueue()]
    assert sent(doctor.queue_loaded([])) == [{"type": "queue", "rooms": []}]
    assert sent(send(doctor, offer("pat1"), now=2.0))[0]["code"] == "not_allowed"
    assert doctor.event('R{"type":"offer"}') == []  # relayed signalling never reaches a dashboard
    update = '{"type":"queue-update","op":"left","appointment":"appt1","member_id":"pat1"}'
    assert doctor.event("E" + update) == [Send(update)]
    staff = DashboardSession(settings(), Staffer("st1", 2, Role.STAFF, 1, "S"), opened=AT.timestamp(), now=0.0)
    assert send(staff, {"type": "hello"})[1] == Subscribe(("q:o:1",))


def test_outgoing_messages_keep_their_wire_names():
    body = json.loads(encode(Admitted(peers=[Peer.of(member("pat2", MemberState.ADMITTED))])))
    assert body == {
        "type": "admitted",
        "peers": [{"id": "pat2", "role": "patient", "name": "pat2", "kind": "patient", "since": 1.0}],
    }
