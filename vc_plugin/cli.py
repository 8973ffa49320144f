"""``flask vc …`` commands for operators."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from .adapters import database_schema
from .compliance.checks import Status, run_checks
from .compliance.document import count_open_items
from .compliance.pack import build_pack, write_pack
from .core import log_privacy
from .core.audit import Actor, ActorKind
from .core.catalogue import language
from .core.crypto import generate_master_key, new_token, token_digest
from .core.models import Appointment, AppointmentState, Organisation
from .domain.appointments import NotFound
from .domain.revocation import Reason
from .domain.subject_rights import as_json
from .probe import run_probe
from .public_api import host_principal
from .signalling_server import run_signalling_server
from .web.privacy_notice import build_notice
from .web.state import vc_state
from .worker import run_worker

vc_cli = AppGroup("vc", help="vc_plugin: video consultations.")


@vc_cli.command("generate-key")
def generate_key() -> None:
    """Print a new master key for VC_ENCRYPTION_KEYS (put the newest first)."""
    click.echo(generate_master_key())


@vc_cli.command("migrate")
@click.option("--revision", default="vc_plugin@head", show_default=True)
def migrate(revision: str) -> None:
    """Create or upgrade vc_plugin's tables (for hosts without Flask-Migrate)."""
    database_schema.upgrade(vc_state().db.engine, revision)
    click.echo("vc_plugin tables are up to date.")


@vc_cli.command("revision", hidden=True)
@click.option("-m", "--message", required=True)
def revision(message: str) -> None:
    """Maintainers: autogenerate a migration from the models."""
    database_schema.new_revision(vc_state().db.engine, message)


@vc_cli.command("rotate-keys")
@click.option(
    "--data-keys/--no-data-keys",
    default=False,
    help="Also give every organisation a new data key and re-encrypt all fields.",
)
def rotate_keys(data_keys: bool) -> None:
    """Re-wrap data keys with the newest master key (after adding one to VC_ENCRYPTION_KEYS)."""
    state = vc_state()
    rewrapped = state.cipher.rewrap_data_keys()
    reencrypted = state.cipher.rotate_data_keys() if data_keys else 0
    state.db.session.commit()
    click.echo(f"Re-wrapped {rewrapped} data key(s); re-encrypted {reencrypted} field(s).")
    click.echo("Older master keys can be removed from VC_ENCRYPTION_KEYS once every process runs this configuration.")


@vc_cli.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    default="INFO",
    show_default=True,
)
def worker(burst: bool, log_level: str) -> None:
    """Run an RQ worker for vc_plugin's queue inside this app (needs VC_REDIS_URL)."""
    state = vc_state()
    if state.redis is None:
        raise click.ClickException("VC_REDIS_URL is not set: without Redis, jobs run inside the app process.")
    log_privacy.install(state.settings.log_ip_mode)  # our own process: every record
    run_worker(current_app._get_current_object(), burst=burst, log_level=log_level.upper())  # type: ignore[attr-defined]


@vc_cli.command("signalling-server")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8765, show_default=True, type=int, help="Port to listen on (0: any free one).")
@click.option(
    "--proxy-hops",
    default=0,
    show_default=True,
    type=click.IntRange(0, 5),
    help="Reverse proxies in front that set X-Forwarded-For/-Proto/-Host (as ProxyFix's x_for).",
)
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 64), help="Threads for database work.")
def signalling_server(host: str, port: int, proxy_hops: int, threads: int) -> None:
    """Serve the signalling sockets from an asyncio process of their own (production; needs VC_REDIS_URL)."""
    state = vc_state()
    if state.redis is None:
        raise click.ClickException("VC_REDIS_URL is not set: without Redis, the app serves its sockets itself.")
    log_privacy.install(state.settings.log_ip_mode)  # our own process: every record
    run_signalling_server(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        host,
        port,
        proxy_hops=proxy_hops,
        threads=threads,
        ready=lambda bound: click.echo(f"Signalling server listening on port {bound}", err=True),  # no address
    )


api_token_cli = AppGroup("api-token", help="API tokens of an organisation for host applications.")
vc_cli.add_command(api_token_cli)


@api_token_cli.command("create")
@click.option("--organisation", "organisation_slug", required=True, help="Organisation slug, e.g. praxis-nord.")
@click.option("--name", required=True, help="What the token is for, e.g. 'case tool'.")
def api_token_create(organisation_slug: str, name: str) -> None:
    """Create a token; it is printed once and stored only as a digest."""
    row, token = vc_state().api_tokens.create(organisation_slug, name)
    click.echo(f"token #{row.id} for {organisation_slug}: {token}")


@api_token_cli.command("list")
@click.option("--organisation", "organisation_slug", required=True)
def api_token_list(organisation_slug: str) -> None:
    state = vc_state()
    organisation = state.directory.organisation(organisation_slug)
    for row in state.api_tokens.list(organisation.id):
        status = "revoked" if row.revoked_at else "active"
        click.echo(f"#{row.id}\t{status}\t{row.name}\tcreated {row.created_at:%Y-%m-%d}")


@api_token_cli.command("revoke")
@click.option("--organisation", "organisation_slug", required=True)
@click.argument("token_id", type=int)
def api_token_revoke(organisation_slug: str, token_id: int) -> None:
    state = vc_state()
    organisation = state.directory.organisation(organisation_slug)
    if not state.api_tokens.revoke(organisation.id, token_id):
        raise click.ClickException("no such active token in this organisation")
    click.echo(f"token #{token_id} revoked")


@vc_cli.command("operator-token")
def operator_token() -> None:
    """Create a token for `flask vc probe`; put its hash into VC_OPERATOR_TOKEN_HASH."""
    token = new_token("vcop")
    click.echo(f"token (give it to the monitoring, keep it secret): {token}")
    click.echo(f"VC_OPERATOR_TOKEN_HASH = {token_digest(token)!r}")


@vc_cli.command("probe")
@click.option("--url", help="Public URL of the deployment (default: VC_PUBLIC_URL).")
@click.option("--token", envvar="VC_OPERATOR_TOKEN", required=True, help="Operator token (or VC_OPERATOR_TOKEN).")
@click.option("--relay", is_flag=True, help="Force the call through TURN.")
@click.option("--timeout", default=30.0, show_default=True, help="Seconds until the call must be up.")
def probe(url: str | None, token: str, relay: bool, timeout: float) -> None:
    """Set up a real call between two aiortc peers through the deployment; exit 1 if it fails."""
    target = url or vc_state().settings.public_url
    if not target:
        raise click.ClickException("give --url or set VC_PUBLIC_URL")
    result = asyncio.run(run_probe(target, token, relay=relay, timeout=timeout))
    click.echo(result.line())
    if not result.ok:
        raise SystemExit(1)


# --- privacy: retention, notice, compliance, data-subject rights ------------------------------


@vc_cli.command("purge")
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
def purge(dry_run: bool) -> None:
    """Delete what the retention policy no longer allows to keep (database and Redis)."""
    report = vc_state().purger.run(dry_run=dry_run)
    click.echo(("Would delete: " if dry_run else "Deleted: ") + report.line())


@vc_cli.command("privacy-notice")
@click.option("--lang", type=click.Choice(["de", "en"]), default="de", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, writable=True), help="Write to this file (Markdown).")
def privacy_notice(lang: str, output: str | None) -> None:
    """Write the technical part of the privacy notice from the running configuration."""
    text = build_notice(vc_state().settings, lang).markdown()
    if output:
        Path(output).write_text(text, encoding="utf-8")
        click.echo(f"written to {output}")
    else:
        click.echo(text, nl=False)


@vc_cli.command("check")
@click.option("--lang", type=click.Choice(["de", "en"]), default="en", show_default=True)
def check(lang: str) -> None:
    """Check the privacy and security requirements against this configuration; exit 1 on any failure."""
    with language(lang):
        findings = run_checks(current_app._get_current_object(), vc_state())  # type: ignore[attr-defined]
    for finding in findings:
        click.echo(finding.line())
    failed = [f for f in findings if f.status is Status.FAIL]
    click.echo(f"{len(findings) - len(failed)} of {len(findings)} requirements met.")
    if failed:
        raise SystemExit(1)


@vc_cli.command("compliance-pack")
@click.option("--lang", type=click.Choice(["de", "en"]), default="de", show_default=True)
@click.option(
    "--output",
    required=True,
    type=click.Path(file_okay=False, writable=True, path_type=Path),
    help="Directory for the documents (Markdown and HTML).",
)
def compliance_pack(lang: str, output: Path) -> None:
    """Write the compliance pack (records of processing, measures, DPIA draft, deletion concept and proof,
    processors, Anlage 31b checklist, cryptography, checks) from this installation."""
    documents = build_pack(current_app._get_current_object(), vc_state(), lang)  # type: ignore[attr-defined]
    write_pack(documents, lang, output)
    open_items = count_open_items(documents[1:])
    click.echo(f"{len(documents)} documents written to {output}; {open_items} open items (see index.md).")


@vc_cli.command("export")
@click.argument("appointment_id")
def export(appointment_id: str) -> None:
    """Print everything stored about one appointment as JSON (Art. 15 and 20 GDPR)."""
    try:
        document = vc_state().subject_rights.export_appointment(host_principal(appointment_id), appointment_id)
    except NotFound:
        raise click.ClickException("no such appointment") from None
    click.echo(as_json(document))


@vc_cli.command("remove-practitioner")
@click.argument("practitioner_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def remove_practitioner(practitioner_id: str, yes: bool) -> None:
    """A practitioner leaves: delete their appointments with all their data, then the person."""
    if not yes:
        click.confirm(f"Delete {practitioner_id} and all of their appointments now?", abort=True)
    try:
        counts = vc_state().subject_rights.erase_practitioner(Actor(ActorKind.OPERATOR), practitioner_id)
    except LookupError:
        raise click.ClickException("no such practitioner") from None
    click.echo(
        f"Deleted the practitioner, {counts['appointments']} appointment(s), {counts['invitations']} invitation(s)."
    )


@vc_cli.command("shred-organisation")
@click.argument("slug")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def shred_organisation(slug: str, yes: bool) -> None:
    """Destroy an organisation's data keys: its encrypted fields become unreadable for good.

    The organisation leaves: its planned appointments are cancelled and every socket of it closes.
    """
    from sqlalchemy import select

    state = vc_state()
    organisation = state.db.session.scalars(select(Organisation).where(Organisation.slug == slug)).first()
    if organisation is None:
        raise click.ClickException("no such organisation")
    if not yes:
        click.confirm(f"Make every encrypted field of {slug} unreadable for good?", abort=True)
    destroyed = state.cipher.shred(organisation.id)
    planned = state.db.session.scalars(
        select(Appointment).where(
            Appointment.organisation_id == organisation.id, Appointment.state == AppointmentState.PLANNED
        )
    ).all()
    cancelled = {a.public_id: [i.public_id for i in a.invitations] for a in planned}
    for appointment in planned:
        appointment.state = AppointmentState.CANCELLED
    state.audit.record(
        "organisation.shredded",
        Actor(ActorKind.OPERATOR),
        organisation_id=organisation.id,
        keys=destroyed,
        cancelled=len(cancelled),
    )
    state.db.session.commit()
    state.revoker.organisation(organisation.id, cancelled, Reason.ORGANISATION_REMOVED)
    click.echo(f"Destroyed {destroyed} data key(s) of {slug}; cancelled {len(cancelled)} planned appointment(s).")
