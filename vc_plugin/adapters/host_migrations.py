"""Taking part in a host's Flask-Migrate repository as the Alembic branch ``vc_plugin``.

With Flask-Migrate initialised before vc_plugin:

* ``flask db upgrade heads`` also creates and upgrades our tables;
* the host's ``flask db migrate`` ignores our ``vc_`` tables instead of proposing to drop them;
* a host revision can never land in our package: a revision that would build on our
  branch is refused with the command to use instead.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Flask

MIGRATIONS = Path(__file__).parent.parent / "migrations"
OUR_VERSIONS = (MIGRATIONS / "versions").resolve()
log = logging.getLogger("alembic.env")  # shown by the host's Alembic logging set-up

FIRST_HOST_REVISION_HINT = (
    "This revision would build on vc_plugin's migration branch and be written into the installed "
    "package. Give your application its own branch: for its first revision run\n"
    "  flask db migrate -m '...' --head base --branch-label app --version-path migrations/versions\n"
    "and afterwards\n"
    "  flask db migrate -m '...' --head app@head"
)


def join(app: Flask) -> None:
    migrate_config = app.extensions.get("migrate")
    if migrate_config is None:
        return
    migrate_config.migrate.configure(_add_our_versions)
    args = migrate_config.configure_args
    args["include_name"] = _without_our_tables(args.get("include_name"))
    args["process_revision_directives"] = _guarded_directives(args.get("process_revision_directives"))


def _add_our_versions(config: Any) -> Any:
    theirs = config.get_main_option("version_locations") or str(
        Path(config.get_main_option("script_location")) / "versions"
    )
    if str(OUR_VERSIONS) not in theirs.split():
        config.set_main_option("version_path_separator", "space")
        config.set_main_option("version_locations", f"{theirs} {OUR_VERSIONS}")
    return config


def _without_our_tables(host_filter: Any) -> Any:
    def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
        if type_ == "table" and name and name.startswith("vc_"):
            return False
        return host_filter(name, type_, parent_names) if host_filter else True

    return include_name


def _guarded_directives(host_hook: Any) -> Any:
    def process_revision_directives(context: Any, revision: Any, directives: list[Any]) -> None:
        if host_hook is not None:
            host_hook(context, revision, directives)
        elif getattr(context.config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
            directives[:] = []
            log.info("No changes in schema detected.")
            return
        for script in directives:
            if _builds_on_our_branch(context, script):
                from alembic.util import CommandError

                raise CommandError(FIRST_HOST_REVISION_HINT)

    return process_revision_directives


def _builds_on_our_branch(context: Any, script: Any) -> bool:
    if script.version_path:
        return Path(script.version_path).resolve() == OUR_VERSIONS
    scripts = context.script
    heads = scripts.get_revisions(script.head) if script.head not in (None, "base") else ()
    return any(head is not None and Path(head.path).resolve().parent == OUR_VERSIONS for head in heads)
