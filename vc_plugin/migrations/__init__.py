"""Alembic migrations shipped with vc_plugin (branch label ``vc_plugin``)."""
