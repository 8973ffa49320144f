"""vc_plugin: privacy-first video consultations for Flask applications.

    from vc_plugin import VideoConsultation
    vc = VideoConsultation(app, db=db)

See the README for configuration. Importing this package has no side effects.
"""

from .core.config import ConfigurationError, Settings
from .extension import VideoConsultation
from .version import __version__ as __version__
from .web.identity import NOT_ALLOWED, HostUser, NotAllowed

__all__ = ["NOT_ALLOWED", "ConfigurationError", "HostUser", "NotAllowed", "Settings", "VideoConsultation"]
