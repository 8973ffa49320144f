"""Texts the browser scripts show, translated on the server and handed over as JSON.

Placeholders are ``{name}`` (filled by the script), not ``%(name)s``.
"""

from __future__ import annotations

from ..core.catalogue import lazy_gettext as _l

CLIENT_STRINGS = {
    # device and network check
    "camera_ok": _l("Camera works."),
    "camera_missing": _l("No picture from a camera."),
    "camera_n": _l("Camera {n}"),
    "microphone_n": _l("Microphone {n}"),
    "speaker_n": _l("Speakers {n}"),
    "microphone_ok": _l("Microphone works: speak and watch the bar move."),
    "microphone_missing": _l("No sound from a microphone."),
    "server_ok": _l("Connection to the practice server: good ({ms} ms)."),
    "server_retry": _l("Connection to the practice server lost; trying again …"),
    "stun_ok": _l("Direct connections are likely to work on this network."),
    "stun_none": _l("Direct connections may be blocked on this network; a relay may be needed."),
    "stun_not_configured": _l("Direct connections will be tried when the consultation starts."),
    "help_permission": _l(
        "The browser is not allowed to use camera and microphone. Click the camera symbol in the address bar "
        "(or open the browser settings for this site), allow camera and microphone, then press “Try again”."
    ),
    "help_no-device": _l(
        "No camera or microphone was found. Connect one, then press “Try again”. You can also join with sound only."
    ),
    "help_in-use": _l(
        "Camera or microphone is used by another program (for example another video call). Close it, then "
        "press “Try again”."
    ),
    "help_unknown": _l(
        "Camera and microphone could not be started. Try another browser (Chrome, Edge, Firefox or Safari) or "
        "restart this one."
    ),
    # waiting room
    "joining": _l("Entering the waiting room …"),
    "waiting_position": _l("You are number {position} in the waiting room. Planned start: {time}."),
    "waiting_next": _l("You are next. Planned start: {time}."),
    "estimate_minutes": _l("It will probably be your turn in about {minutes} minutes."),
    "estimate_soon": _l("It should be your turn any moment now."),
    "estimate_overdue": _l("It is taking longer than planned. The practice knows that you are waiting."),
    "running_late": _l("The practice is running about {minutes} minutes late."),
    # a time of day on the page's clock: "10:05" in English, "10:05 Uhr" in German
    "clock_time": _l("{time}"),
    "admitted": _l("You have been let in. The consultation starts."),
    "handed_over": _l("{name} will see you."),
    # back to the waiting room from the call (issue 17)
    "sent_back": _l("{name} has asked you to wait a moment in the waiting room."),  # the lead says to stay
    "sent_back_next": _l("You are next."),
    "sent_back_position": _l("You are number {position} in the waiting room."),
    "reconnecting": _l("Connection lost; reconnecting … Your place in the waiting room is kept."),
    # end states
    "ended_title": _l("The consultation has ended"),
    "ended_text": _l("Thank you. You can close this window."),
    "declined_title": _l("The practice could not see you now"),
    "declined_text": _l("Please contact your practice about a new appointment."),
    "left_title": _l("You have left"),
    "left_text": _l("You can close this window. To join again, open the link from your invitation."),
    "replaced_title": _l("Opened in another window"),
    "replaced_text": _l("You joined from another window or device. Continue there."),
    "expired_title": _l("This invitation has expired"),
    "expired_text": _l("Please contact your practice if you need a new appointment."),
    "cancelled_title": _l("This appointment was cancelled"),
    "cancelled_text": _l("Your practice has cancelled this appointment. Please contact them if you need a new one."),
    "new_code_title": _l("You have a new access code"),
    "new_code_text": _l(
        "Your practice has sent you a new access code. Open the link in the newest invitation and enter the new code."
    ),
    "removed_title": _l("Your invitation was withdrawn"),
    "removed_text": _l("Please contact your practice if you think this is a mistake."),
    # call
    "you": _l("You"),
    "participant": _l("Participant"),
    "practitioner": _l("practitioner"),
    "mute": _l("Mute"),
    "unmute": _l("Unmute"),
    "camera_off": _l("Camera off"),
    "camera_on": _l("Camera on"),
    "share_screen": _l("Share screen"),
    "stop_sharing": _l("Stop sharing"),
    "share_failed": _l("Screen sharing did not start."),
    "tap_to_play": _l("Tap to start the picture"),
    "connected_with": _l("Connected with {name}."),
    "participant_left": _l("A participant has left."),
    "joined": _l("{name} has joined."),
    "path_direct": _l("Direct connection"),
    "path_relayed": _l("Connection via relay"),
    "quality_good": _l("picture and sound arrive well"),
    "quality_poor": _l("picture and sound arrive with gaps"),
    "state_new": _l("Connecting …"),
    "state_connecting": _l("Connecting …"),
    "state_connected": _l("Connected"),
    "state_disconnected": _l("Connection interrupted …"),
    "state_failed": _l("No connection"),
    "state_closed": _l("Ended"),
    "state_reconnecting": _l("Reconnecting …"),
    "nobody_to_send": _l("Nobody is connected yet."),
    "alone_in_call": _l("Nobody else is in the call yet."),
    "elsewhere_title": _l("Waiting for your other appointments:"),
    "elsewhere_one": _l("{time}, one person"),
    "elsewhere_many": _l("{time}, {count} people"),
    "microphone_is_off": _l("microphone off"),
    "camera_is_off": _l("camera off"),
    "sound_only_badge": _l("sound only"),
    # one remote picture large, the others small (an interpreter, a sign-language participant)
    "pin": _l("Show large"),
    "pin_name": _l("Show {name} large"),
    "pinned": _l("{name} is shown large."),
    "unpinned": _l("All pictures are the same size again."),
    # the chat behind a button on a phone
    "chat_unread_one": _l("1 new message in the chat"),
    "chat_unread_many": _l("{count} new messages in the chat"),
    "peer_chose_sound_only": _l("{name} switched to sound only to keep the connection steady."),
    "weak_connection": _l("The connection is weak; your picture is now sent smaller."),
    "sound_only_on": _l("Sound only: no picture is sent or received."),
    "picture_back": _l("The picture is switched back on."),
    "relay_connecting": _l("Connecting via the relay …"),
    "relay_declined_text": _l("Without the relay, no connection is possible on this network."),
    "introductions_confirmed_at": _l("Introductions confirmed at {time}."),
    "introductions_failed": _l("The confirmation could not be saved. Please try again."),
    # files
    "file_limit": _l("Files up to {size}; they go directly to the other side."),
    "file_too_large": _l("The file is too large: at most {size}."),
    "no_file_chosen": _l("No file chosen"),
    "file_sent": _l("sent"),
    "file_failed": _l("not sent"),
    "file_damaged": _l("arrived damaged; please send it again"),
    "file_refused": _l("A file ({name}) was refused: it is too large."),
    "file_arrived": _l("File received: {name}."),
    "download": _l("Download"),
    # dashboard
    "admit": _l("Admit"),
    "admit_and_call": _l("Admit and start call"),
    "decline": _l("Decline"),
    "send_back": _l("Back to the waiting room"),
    "send_back_label": _l("Send {name} back to the waiting room"),
    "sent_back_done": _l("{name} is waiting in the waiting room again."),
    "handed_over_to": _l("The appointment was handed over to {name}."),
    "open_call": _l("Open call"),
    "waiting_since": _l("waiting for {minutes} min"),
    "member_in_call": _l("in the call"),
    "member_offline": _l("connection lost"),
    "devices_ok": _l("Camera and microphone work"),
    "devices_no_camera": _l("No camera picture"),
    "devices_no_microphone": _l("Microphone not working"),
    "devices_none": _l("Camera and microphone not working"),
    "new_arrival": _l("{name} is waiting."),
    "new_arrival_title": _l("Someone is waiting"),
    "notice_label": _l("Message to the waiting room"),
    "notice_placeholder": _l("e.g. I am running 10 minutes late"),
    "send_notice": _l("Send message"),
    "notice_sent": _l("Message sent to the waiting room."),
    "room_tools": _l("Message to the waiting room or hand over"),
    "late_announced": _l("Your waiting rooms now show a delay of about {minutes} minutes."),
    "late_taken_back": _l("Your waiting rooms no longer show a delay."),
    "handover_to": _l("Hand over to"),
    "handover": _l("Hand over"),
    "kind_patient": _l("patient"),
    "kind_interpreter": _l("interpreter"),
    "kind_relative": _l("relative"),
    "kind_other": _l("other participant"),
    "kind_practitioner": _l("practitioner"),
    "kind_probe": _l("probe"),
    # protocol errors shown to people
    "error_not_allowed": _l("That is not allowed for your role."),
    "error_unknown_participant": _l("This person is no longer waiting."),
    "error_unknown_room": _l("This waiting room no longer exists."),
    "error_room_full": _l("The consultation is full."),
    "error_in_call": _l("Someone is still in the call. Send them back to the waiting room first, then hand over."),
    "error_not_in_call": _l("This person is not in the call."),
    "error_unknown_practitioner": _l("Choose a practitioner of your organisation."),
    "error_rate_limited": _l("Too many actions at once; please wait a moment."),
    "error_relay_unavailable": _l("No relay server is available."),
    "error_relay_consent_required": _l("A relay is used only with your consent."),
    "error_internal": _l("Something went wrong; please try again."),
    "error_already_joined": _l("This page is already connected."),
    "error_expired": _l("This invitation has expired."),
    "error_hello_first": _l("The connection is not ready yet; please try again."),
    "error_invalid": _l("The page sent something the server did not understand; please reload it."),
    "error_malformed": _l("The page sent something the server did not understand; please reload it."),
    "error_unknown_type": _l("The page sent something the server did not understand; please reload it."),
    "error_too_large": _l("That was too large to send."),
    "error_not_admitted": _l("Please wait until you are let in."),
    "error_unknown_peer": _l("This participant is no longer in the consultation."),
    "error_replaced": _l("You joined from another window or device. Continue there."),
    "error_revoked": _l("This access was withdrawn. Please reload the page."),
}

#: Families the scripts look up by a computed key; the test checks each exists.
DYNAMIC_FAMILIES = {
    "help_": ("permission", "no-device", "in-use", "unknown"),
    "state_": ("new", "connecting", "connected", "disconnected", "failed", "closed", "reconnecting"),
    "kind_": ("patient", "interpreter", "relative", "other", "practitioner", "probe"),
}


def client_strings() -> dict[str, str]:
    return {key: str(value) for key, value in CLIENT_STRINGS.items()}
