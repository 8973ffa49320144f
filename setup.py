"""Packaging for vc_plugin, a Flask extension for privacy-first video consultations."""

from pathlib import Path

from setuptools import find_namespace_packages, setup

README = Path(__file__).with_name("README.md").read_text(encoding="utf-8")

INSTALL_REQUIRES = [
    "flask>=3.0",
    "flask-sock>=0.7",
    "simple-websocket>=1.0",
    "flask-sqlalchemy>=3.1",
    "flask-migrate>=4.0",
    "sqlalchemy>=2.0.25",
    "alembic>=1.13",
    "authlib>=1.9",
    "joserfc>=1.6.8",
    "requests>=2.31",
    "cryptography>=42",
    "rq>=2.6",
    "redis>=5.0",
    "hiredis>=3.2",  # the signalling server's own Redis connections (pack_command, Reader); redis-py parses with it
    "limits[redis]>=3.7",
    "flask-babel>=4.0",
    "babel>=2.14",
    "pydantic>=2.6",
    "msgspec>=0.18.6",
    "websockets>=14.0",  # flask vc signalling-server (the asyncio implementation, since 13)
    "icalendar>=6.0",
    "email-validator>=2.1",
    "blinker>=1.7",
]

PROBE_REQUIRES = [
    "aiortc>=1.9",
    "websockets>=12",
]

TEST_REQUIRES = [
    *PROBE_REQUIRES,
    "pytest>=8.0",
    "pytest-timeout>=2.3",
    "hypothesis>=6.100",
    "aiosmtpd>=1.4.4",
    "playwright>=1.45",
    "psycopg[binary]>=3.1.18",
    "ruff>=0.5",
    "import-linter>=2.1",
    "gunicorn>=22",
    "schemathesis>=3.30",
    # Real host applications mount vc_plugin in tests/hosts/ (Flask-AppBuilder, an intranet stack).
    "flask-appbuilder>=5.3",
    "flask-login>=0.6.3",
    "flask-wtf>=1.2",
    "flask-talisman>=1.1",
    "flask-limiter>=3.5",
]

setup(
    name="vc_plugin",
    version="0.1.0",
    description="Privacy-first video consultations for any Flask application",
    long_description=README,
    long_description_content_type="text/markdown",
    license="AGPL-3.0-or-later",
    python_requires=">=3.11",
    # Namespace packages: the data folders (templates, static, migrations/versions) are found too.
    packages=find_namespace_packages(include=["vc_plugin", "vc_plugin.*"], exclude=["*.__pycache__"]),
    include_package_data=True,
    zip_safe=False,
    install_requires=INSTALL_REQUIRES,
    extras_require={
        "postgresql": ["psycopg[binary]>=3.1.18"],
        "production": ["gunicorn>=22", "gevent>=24.2", "psycopg[binary]>=3.1.18"],
        "probe": PROBE_REQUIRES,
        "test": TEST_REQUIRES,
    },
    classifiers=[
        "Framework :: Flask",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Topic :: Communications :: Conferencing",
    ],
)
