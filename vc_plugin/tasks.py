"""Job functions run by the queue (a worker process, or the embedded thread).

They run inside the app context and take only public ids and sealed payloads. Their names are
stored with queued jobs (``vc_plugin.tasks.send_invitation``): rename one only with an entry in
``adapters.jobs.MOVED_TASKS``.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import render_template

from .adapters.jobs import JobSpec
from .adapters.sms import SmsUnavailable
from .adapters.webhooks import deliver
from .core import signals
from .core.catalogue import language
from .core.models import Delivery, Invitation
from .domain.invitation_message import compose_invitation, mail_context, sms_text
from .domain.invitations import InvitationPayload
from .web.state import vc_state

log = logging.getLogger(__name__)


def _invitation(invitation_public_id: str) -> Invitation | None:
    return vc_state().appointments.invitation_by_public_id(invitation_public_id)


def send_invitation(invitation_public_id: str, sealed: str) -> None:
    """Send one invitation mail (and the code by SMS if chosen). Raises to be retried."""
    state = vc_state()
    invitation = _invitation(invitation_public_id)
    if invitation is None:
        return  # deleted meanwhile: nothing to send, and the payload ends with this job
    payload = InvitationPayload.open(state.keyring, sealed)
    if invitation.delivery_key != payload.key or invitation.delivery is Delivery.SENT:
        return  # superseded by a newer code, or already sent by an earlier attempt
    practitioner = invitation.appointment.practitioner
    domain = urlsplit(state.settings.public_url or "http://localhost").hostname or "localhost"
    message = compose_invitation(
        state.settings, invitation, practitioner, payload, sender_domain=domain, render=render_template
    )
    state.mailer.send(message)
    if invitation.code_by_sms:
        # The code goes as a job of its own, so a failing SMS never sends the mail twice.
        state.jobs.enqueue(
            JobSpec(
                send_code_by_sms,
                (invitation_public_id, sealed),
                retries=state.settings.invitation_retries,
                backoff=tuple(state.settings.invitation_backoff_seconds),
                on_final_failure=invitation_failed,
                job_id=f"vc-sms-{invitation_public_id}-{payload.key}",
            )
        )
        return
    _mark_sent(invitation)


def send_code_by_sms(invitation_public_id: str, sealed: str) -> None:
    """Second channel: the access code by SMS, after the link went by mail."""
    state = vc_state()
    invitation = _invitation(invitation_public_id)
    if invitation is None:
        return
    payload = InvitationPayload.open(state.keyring, sealed)
    if invitation.delivery_key != payload.key or invitation.delivery is Delivery.SENT:
        return
    if state.sms is None:
        raise SmsUnavailable("the code should go by SMS, but VC_SMS_SENDER is not set")
    practitioner = invitation.appointment.practitioner
    context = mail_context(state.settings, invitation.appointment, practitioner, payload, invitation.language)
    with language(invitation.language):
        text = sms_text(context)
    state.sms.send(payload.phone or "", text)
    _mark_sent(invitation)


def _mark_sent(invitation: Invitation) -> None:
    state = vc_state()
    invitation.delivery = Delivery.SENT
    invitation.delivery_changed_at = state.clock.now()
    state.db.session.commit()
    log.info("invitation delivered")
    state.announce(
        signals.invitation_sent, appointment_id=invitation.appointment.public_id, invitation_id=invitation.public_id
    )


def invitation_failed(invitation_public_id: str, sealed: str) -> None:
    """No retry left: show the failure to the practitioner. The payload expires with the job."""
    state = vc_state()
    invitation = _invitation(invitation_public_id)
    if invitation is None:
        return
    try:
        key = InvitationPayload.open(state.keyring, sealed).key
    except ValueError:
        key = None
    if invitation.delivery_key == key and invitation.delivery is not Delivery.SENT:
        invitation.delivery = Delivery.FAILED
        invitation.delivery_changed_at = state.clock.now()
        state.db.session.commit()
        log.warning("invitation could not be delivered")
        appointment_id = invitation.appointment.public_id
        state.announce(signals.invitation_failed, appointment_id=appointment_id, invitation_id=invitation.public_id)


def deliver_webhook(body: str) -> None:
    """POST one webhook body to the host's case tool; raises to be retried."""
    deliver(vc_state().settings, body)


def purge() -> dict[str, int]:
    """The scheduled retention purge (``rq cron vc_plugin.cron``, the embedded timer); logs counts only."""
    report = vc_state().purger.run()
    log.info("retention purge: %s", report.line())
    return report.as_dict()
