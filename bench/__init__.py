"""Benchmarks of vc_plugin, side by side with the PeerJS server: ``bench/run`` (see docs/benchmarks.md)."""
