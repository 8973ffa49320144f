"""Our pages in the host's layout, with one setting.

``VC_BASE_TEMPLATE`` names the host's base template; its blocks for our title, head (our
stylesheet), content (with our language switch) and scripts are found by their usual names
(``title``/``page_title``, ``head``/``head_css``, ``content``, ``scripts``/``tail_js``: plain
layouts and Flask-AppBuilder's alike) or named in ``VC_BASE_TEMPLATE_BLOCKS``. Jinja ignores a
block that the parent template does not define, so a wrong name would make our page or its
scripts vanish without a word: the names are checked against the host's template (and the
templates it extends) when the frame is first built, and a mismatch is an error that says which
blocks exist. Patients see our own calm page unless ``VC_HOST_LAYOUT_FOR_PATIENTS`` is on:
an intranet's menus mean nothing to them.
"""

from __future__ import annotations

import threading
from typing import Any

from flask import current_app, request
from jinja2 import Environment, Template, nodes

from ..core.config import ConfigurationError, Settings
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


#: Our slots and the names layouts usually give those blocks, in order of preference.
USUAL_NAMES = {
    "title": ("title", "page_title"),
    "head": ("head", "head_css", "extra_head", "styles"),
    "content": ("content", "main"),
    "scripts": ("scripts", "tail_js", "extra_js", "javascript"),
}


def hosted_frame(env: Environment, settings: Settings) -> Template:
    """Our frame inside the host's base template, its blocks checked first."""
    base = settings.base_template or ""
    available = blocks_of(env, base)
    blocks = settings.base_template_blocks or usual_blocks(available, base)
    missing = sorted(name for name in blocks.values() if name not in available)
    if missing:
        raise ConfigurationError(
            f"VC_BASE_TEMPLATE_BLOCKS names {', '.join(missing)}, which {base} does not define "
            f"(it has: {', '.join(sorted(available)) or 'no blocks'}); our pages would lose that part"
        )
    names = {"base": base, **blocks}
    title = _TITLE % names if "title" in blocks else ""
    return env.from_string(_HOSTED % {**names, "title": title})


def usual_blocks(available: set[str], base: str) -> dict[str, str]:
    """Our slots in a layout whose blocks go by their usual names (the title is optional)."""
    found = {}
    for slot, names in USUAL_NAMES.items():
        name = next((name for name in names if name in available), None)
        if name is not None:
            found[slot] = name
        elif slot != "title":
            raise ConfigurationError(
                f"{base} has no block for our {slot} (looked for {', '.join(names)}; it has: "
                f"{', '.join(sorted(available)) or 'no blocks'}): name it in VC_BASE_TEMPLATE_BLOCKS"
            )
    return found


def host_template_context() -> dict[str, Any]:
    """What a host's layout expects from the host's own views: Flask-AppBuilder's passes ``appbuilder``."""
    appbuilder = current_app.extensions.get("appbuilder")
    return {"appbuilder": appbuilder} if appbuilder is not None else {}


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
