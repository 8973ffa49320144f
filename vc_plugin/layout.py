"""Our pages in the host's layout, with one setting.

``VC_BASE_TEMPLATE`` names the host's base template and ``VC_BASE_TEMPLATE_BLOCKS`` which of its
blocks take our title, head (our stylesheet), content (with our language switch) and scripts.
Jinja ignores a block that the parent template does not define, so a wrong block name would make
our page or its scripts vanish without a word: the names are checked against the host's template
(and the templates it extends) when the frame is first built, and a mismatch is an error that says
which blocks exist. Patients see our own calm page unless ``VC_HOST_LAYOUT_FOR_PATIENTS`` is on:
an intranet's menus mean nothing to them.
"""

from __future__ import annotations

import threading

from flask import current_app, request
from jinja2 import Environment, Template, nodes

from .config import ConfigurationError, Settings
from .state import vc_state

STANDALONE = "vc_plugin/frame/standalone.html"
#: The blueprints whose pages patients see.
PATIENT_BLUEPRINTS = frozenset({"vc.join", "vc.public"})

_HOSTED = """{%% extends %(base)r %%}
%(title)s
{%% block %(head)s %%}{{ super() }}
<link rel="stylesheet" href="{{ url_for('vc.static', filename='vc.css') }}">
{%% block vc_head %%}{%% endblock %%}{%% endblock %%}
{%% block %(content)s %%}
<div class="vc-hosted {%% block vc_body_class %%}{%% endblock %%}" lang="{{ vc_language() }}">
  <nav class="vc-header-nav" aria-label="{{ _('Settings') }}">
    {%% block vc_header_nav %%}{%% endblock %%}
    {%% include "vc_plugin/frame/_language.html" %%}
  </nav>
  <main id="main" class="vc-main" tabindex="-1">{%% block vc_content %%}{%% endblock %%}</main>
  <footer class="vc-footer">
    {%% block vc_footer %%}{%% include "vc_plugin/frame/_footer.html" %%}{%% endblock %%}
  </footer>
</div>
{%% endblock %%}
{%% block %(scripts)s %%}{{ super() }}{%% block vc_scripts %%}{%% endblock %%}{%% endblock %%}
"""
_TITLE = "{%% block %(title)s %%}{%% block vc_title %%}{{ _('Video consultation') }}{%% endblock %%}{%% endblock %%}"

_lock = threading.Lock()


def frame() -> str | Template:
    """The template that ``vc_plugin/base.html`` extends for this request."""
    settings = vc_state().settings
    if not settings.base_template:
        return STANDALONE
    if request.blueprint in PATIENT_BLUEPRINTS and not settings.host_layout_for_patients:
        return STANDALONE
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    cached: Template | None = app.extensions.get("vc_plugin.frame")
    if cached is None:
        with _lock:
            cached = hosted_frame(app.jinja_env, settings)
            app.extensions["vc_plugin.frame"] = cached
    return cached


def hosted_frame(env: Environment, settings: Settings) -> Template:
    """Our frame inside the host's base template, its blocks checked first."""
    base = settings.base_template or ""
    blocks = settings.base_template_blocks
    available = blocks_of(env, base)
    missing = sorted(name for name in blocks.values() if name not in available)
    if missing:
        raise ConfigurationError(
            f"VC_BASE_TEMPLATE_BLOCKS names {', '.join(missing)}, which {base} does not define "
            f"(it has: {', '.join(sorted(available)) or 'no blocks'}); our pages would lose that part"
        )
    names = {"base": base, **blocks}
    title = _TITLE % names if "title" in blocks else ""
    return env.from_string(_HOSTED % {**names, "title": title})


def blocks_of(env: Environment, name: str, seen: frozenset[str] = frozenset()) -> set[str]:
    """Every block ``name`` defines, including those of the templates it extends."""
    if name in seen:
        return set()
    source, _, _ = env.loader.get_source(env, name)  # type: ignore[union-attr]
    tree = env.parse(source)
    found = {block.name for block in tree.find_all(nodes.Block)}
    parent = tree.find(nodes.Extends)
    if parent is not None and isinstance(parent.template, nodes.Const):
        found |= blocks_of(env, str(parent.template.value), seen | {name})
    return found
