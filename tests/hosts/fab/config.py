"""The host's configuration, as FAB's ``config.py`` (``app.config.from_object``)."""

from flask_appbuilder.const import AUTH_DB

from tests.support.hosts import TEST_KEYS, TEST_SECRET

SECRET_KEY = TEST_SECRET
TESTING = True  # plain http on loopback; links in mails take the request's address
APP_NAME = "Praxis Intranet"
AUTH_TYPE = AUTH_DB
AUTH_ROLE_ADMIN = "Admin"
AUTH_ROLE_PUBLIC = "Public"
BABEL_DEFAULT_LOCALE = "en"
LANGUAGES = {"en": {"flag": "gb", "name": "English"}, "de": {"flag": "de", "name": "German"}}
FAB_PASSWORD_COMPLEXITY_ENABLED = False

VC_ENCRYPTION_KEYS = [TEST_KEYS[0]]  # vc_plugin
VC_BASE_TEMPLATE = "appbuilder/baselayout.html"  # vc_plugin
