"""An ordinary intranet that mounts vc_plugin (tests/test_host_intranet.py)."""
