"""axe-core (the npm package in tests/node) run inside a page, for WCAG 2.0/2.1 A and AA.

The pages send a strict Content-Security-Policy without inline scripts; axe is therefore not
added as a ``<script>`` but evaluated through Playwright (the DevTools protocol is not subject to
the page's CSP), so that the page is checked with exactly the headers patients get.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from tests.support.oidc import NODE_DIR

AXE_SOURCE = NODE_DIR / "node_modules" / "axe-core" / "axe.min.js"
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
FAILING_IMPACTS = {"serious", "critical"}
RUN = """async (tags) => {
  const result = await window.axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']});
  return {
    passes: result.passes.length,
    violations: result.violations.map((v) => ({
      id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.map((n) => ({target: n.target.join(' '), summary: n.failureSummary})),
    })),
  };
}"""


@cache
def axe_source() -> str:
    if not AXE_SOURCE.is_file():
        raise RuntimeError(f"axe-core is not installed ({AXE_SOURCE} is missing): run scripts/test-services (npm ci)")
    return AXE_SOURCE.read_text(encoding="utf-8")


def run_axe(page: Any) -> dict[str, Any]:
    """axe's findings on the page as it is now: ``passes`` (a count, > 0 once axe really ran) and ``violations``."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(axe_source())
    return page.evaluate(RUN, WCAG_AA)


def serious_findings(page: Any, name: str) -> list[str]:
    """One readable line per serious or critical violation (rule, element, what to fix), none when clean."""
    result = run_axe(page)
    if result["passes"] == 0:
        return [f"{name}: axe checked nothing (no passes): it did not run"]
    return [
        f"{name}: {v['impact']} {v['id']} ({v['help']}) at {node['target']}: {' '.join(node['summary'].split())}"
        for v in result["violations"]
        if v["impact"] in FAILING_IMPACTS
        for node in v["nodes"]
    ]
