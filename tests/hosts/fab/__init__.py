"""A Flask-AppBuilder 5 host application with vc_plugin mounted (``app.py``), served by gunicorn in
``tests/test_host_fab.py``."""
