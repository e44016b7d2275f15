"""The documentation site as a reader gets it.

One ``mkdocs build --strict`` per session (broken links, missing anchors and bad API refs are build
errors), then checks on the built HTML: every page with maths loads a renderer that is in the site
(no CDN: the docs read offline), the API reference shows links where the docstrings have Sphinx
roles, and, where Debian's Chromium is installed, the formulas are typeset in a real browser.
"""

import html.parser
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROLE_RE = re.compile(r":(?:py:)?(?:func|class|mod|meth|data|attr|exc|obj|const):`")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site = tmp_path_factory.mktemp("docs") / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
                          cwd=ROOT, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return site


class _Assets(html.parser.HTMLParser):
    """The scripts and stylesheets a page loads."""

    def __init__(self):
        super().__init__()
        self.scripts, self.styles = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and attrs.get("src"):
            self.scripts.append(attrs["src"])
        elif tag == "link" and "stylesheet" in (attrs.get("rel") or "").split():
            self.styles.append(attrs["href"])


def _assets(page):
    parser = _Assets()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def _local_file(site, page, ref):
    """The file in the site that ``ref`` (as written in ``page``) loads."""
    parts = urlsplit(ref)
    assert not parts.scheme and not parts.netloc, f"{page.relative_to(site)} loads {ref} from the network"
    target = (page.parent / parts.path).resolve()
    assert target.is_relative_to(site.resolve()), f"{ref} points outside the site"
    return target


def _page(site, name):
    return site / name / "index.html" if name else site / "index.html"


def test_mkdocs_build_strict(site):
    assert _page(site, "api").read_text().count("q_map") > 2


def test_every_page_with_maths_loads_a_renderer_in_the_site(site):
    pages = [p for p in site.rglob("*.html") if 'class="arithmatex"' in p.read_text(encoding="utf-8")]
    names = {p.parent.name for p in pages}
    # The theory pages have maths (if this fails, the check below checks nothing).
    assert {"theory", "critical_sparsity"} <= names, names
    for page in pages:
        assets = _assets(page)
        scripts = [_local_file(site, page, s) for s in assets.scripts]
        styles = [_local_file(site, page, s) for s in assets.styles]
        for f in scripts + styles:
            assert f.is_file() and f.stat().st_size > 0, f"{page.relative_to(site)}: {f} missing or empty"
        texts = [f.read_text(encoding="utf-8") for f in scripts]
        # KaTeX itself, and a script that hands it arithmatex's spans, in that order.
        renderer = next(i for i, t in enumerate(texts) if "katex" in t and "renderToString" in t)
        init = next(i for i, t in enumerate(texts) if "arithmatex" in t and "katex.render" in t)
        assert renderer < init
        css = [f for f in styles if "KaTeX_Main" in f.read_text(encoding="utf-8")]
        assert css, f"{page.relative_to(site)} loads no KaTeX stylesheet"
        # The fonts the stylesheet asks for first (woff2, which every current browser takes).
        fonts = re.findall(r"url\(([^)]+\.woff2)\)", css[0].read_text(encoding="utf-8"))
        assert fonts
        for font in fonts:
            f = css[0].parent / font.strip("'\"")
            assert f.is_file() and f.stat().st_size > 0, f"missing KaTeX font {f}"


def test_no_list_left_as_text(site):
    """A Markdown list that Python-Markdown did not take (no blank line before it, or an item run
    into the previous one) shows its ``- **Title.**`` markers as text."""
    marker = re.compile(r"(?:\n|[.:)] )[-*] <strong>")
    for page in site.rglob("*.html"):
        text = re.sub(r"<pre.*?</pre>", "", page.read_text(encoding="utf-8"), flags=re.S)
        found = marker.search(text)
        assert not found, f"{page.relative_to(site)}: {text[found.start() - 60:found.end() + 20]!r}"


def test_api_reference_shows_links_not_sphinx_roles(site):
    text = _page(site, "api").read_text(encoding="utf-8")
    assert not ROLE_RE.search(text), ROLE_RE.search(text)
    assert "docs/theory.md" not in text
    # c_map's parameters say "As in :func:`q_map`": a link to q_map's entry on the same page.
    start = text.index('id="meanfield.c_map"')
    section = text[start:text.index('id="meanfield.cov_map"')]
    assert re.search(r'<a [^>]*href="#meanfield\.q_map"[^>]*><code>q_map\(\)</code></a>', section)
    # "docs/theory.md §2" becomes a link to the theory page's section.
    assert 'href="../theory/#2-infinite-width-variance-and-correlation-maps"' in text
    # A role whose target is not on the site stays code, not a broken link.
    assert re.search(r'<span title="meanfield\.pruning\.[a-z_]+"><code>', text)


def _roles_module():
    path = ROOT / "docs" / "hooks" / "griffe_sphinx_roles.py"
    spec = importlib.util.spec_from_file_location("griffe_sphinx_roles", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sphinx_roles_rewritten():
    griffe = pytest.importorskip("griffe")
    roles = _roles_module()

    class Scope:
        is_module = True
        path = "pkg.mod"
        module = None

        def resolve(self, name):
            if name == "f":
                return "pkg.mod.f"
            raise griffe.NameResolutionError(name)

    scope = Scope()
    assert roles.rewrite_roles("See :func:`f`.", scope) == (
        'See <autoref identifier="pkg.mod.f" optional><code>f()</code></autoref>.')
    assert roles.rewrite_roles(":class:`~pkg.other.Thing`", scope) == (
        '<autoref identifier="pkg.other.Thing" optional><code>Thing</code></autoref>')
    assert roles.rewrite_roles(":mod:`the maps <pkg.maps>`", scope) == (
        '<autoref identifier="pkg.maps" optional><code>the maps</code></autoref>')
    # Unknown bare names cannot be resolved: plain code.
    assert roles.rewrite_roles(":data:`nowhere`", scope) == "<code>nowhere</code>"
    sections = {"2": ("Theory §2", "two"), "3": ("Theory §3", "three")}
    out = roles.rewrite_pointers("docs/theory.md §2–3; the module docstring", scope, sections)
    assert out == ('<autoref identifier="two" optional>Theory §2</autoref>, '
                   '<autoref identifier="three" optional>Theory §3</autoref>; '
                   'the <autoref identifier="pkg.mod" optional>pkg.mod module docstring</autoref>')


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium")
@pytest.mark.parametrize("name", ["theory", "critical_sparsity"])
def test_formulas_are_typeset_in_a_browser(site, name, tmp_path):
    """Every arithmatex span becomes KaTeX output, with no error, from file:// (no network)."""
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", "--dump-dom",
         _page(site, name).as_uri()],
        capture_output=True, text=True, timeout=120)
    dom = proc.stdout
    spans = dom.count('class="arithmatex"')
    assert spans > 0, proc.stderr[-2000:]
    assert dom.count('data-katex="done"') == spans
    assert dom.count('class="katex"') + dom.count('class="katex-display"') >= spans
    assert "katex-error" not in dom
    # No maths left as source: a `$$` block that arithmatex did not take (say, under-indented in a
    # list item) shows a stray dollar next to the formula it became.
    assert "$$" not in dom
    assert not re.search(r'\$\s*<(?:span|div) class="arithmatex"', dom)
