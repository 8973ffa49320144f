"""Real host applications that mount vc_plugin the documented way (docs/integration.md)."""
