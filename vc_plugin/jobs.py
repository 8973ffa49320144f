"""Stored names: RQ jobs queued by earlier versions name ``vc_plugin.jobs.run_from_outbox``.

The code lives in :mod:`vc_plugin.worker`; this module only keeps those names importable
(``tests/test_stored_names.py``).
"""

from .worker import rq_failure_hook, run_from_outbox

__all__ = ["rq_failure_hook", "run_from_outbox"]
