"""Alembic environment for running vc_plugin's branch on its own (``flask vc migrate``)."""

from alembic import context

from vc_plugin.core.models import Base

VERSION_TABLE = "vc_alembic_version"


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Only our tables: the host's schema is none of our business."""
    if type_ == "table":
        return bool(name) and name.startswith("vc_")
    return True


def run_migrations_online() -> None:
    connection = context.config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        include_name=include_name,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("vc_plugin migrations run online only: use `flask vc migrate`.")
run_migrations_online()
