"""The documentation site as a reader gets it.

One ``mkdocs build --strict`` per session (broken links, missing anchors and bad API refs are build
errors), then checks on the built HTML: every page with maths loads a renderer that is in the site
(no CDN: the docs read offline), the API reference shows links where the docstrings have Sphinx
roles, and, in headless Chromium (Debian's package; CI installs it, a developer machine without it
skips), every formula on every page is typeset and drawn (ink in a screenshot of the page) and no
equation number overlaps its formula.
"""

import concurrent.futures
import html.parser
import importlib.util
import json
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
# CI must run the browser checks (.ci/run installs Debian's chromium); a developer machine without
# Chromium skips them.
IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
WIDTH = 1280  # the viewport the layout is checked at (a laptop; Material's sidebars both shown)
SHOT_SCALE = 0.5  # the whole-page screenshot at half scale: a 20 000 px page in 6 s, not 15 s
INK = 192  # a formula drawn has pixels darker than this (its faintest: 128 at half scale)

# Injected at the end of a copy of each page: once KaTeX has typeset every arithmatex element and
# the fonts are in, it measures every formula and writes the results into the DOM as JSON, which
# `--dump-dom` hands back (nothing beyond Debian's chromium: no driver, no debugging protocol).
PROBE_JS = r"""
(function () {
  "use strict";
  function box(e) {
    var r = e.getBoundingClientRect();
    return [r.left, r.top, r.right, r.bottom];
  }
  function measure() {
    var formulas = [];
    var els = document.querySelectorAll(".arithmatex");
    for (var i = 0; i < els.length; i++) {
      var el = els[i];
      var k = el.querySelector(".katex"), html = el.querySelector(".katex-html");
      var ann = el.querySelector(".katex-mathml annotation"), err = el.querySelector(".katex-error");
      var st = k ? getComputedStyle(k) : null;
      // Every glyph KaTeX drew: shown, with a colour and a size.
      var glyphs = 0, hidden = [];
      var leaves = html ? html.querySelectorAll("*") : [];
      for (var j = 0; j < leaves.length; j++) {
        var own = "";
        for (var c = leaves[j].firstChild; c; c = c.nextSibling) {
          if (c.nodeType === 3) own += c.data;
        }
        own = own.replace(/[\s\u200b]+/g, "");
        if (!own) continue;
        glyphs++;
        var ls = getComputedStyle(leaves[j]), lr = leaves[j].getBoundingClientRect();
        if (ls.visibility !== "visible" || parseFloat(ls.opacity) === 0 ||
            /rgba\(.*,\s*0\)$/.test(ls.color) || lr.width <= 0 || lr.height <= 0) hidden.push(own);
      }
      var f = {
        display: el.tagName === "DIV",
        done: el.getAttribute("data-katex") === "done",
        katex: !!k && !!html,
        error: err ? err.getAttribute("title") || err.textContent : null,
        tex: ann ? ann.textContent : null,
        text: html ? html.innerText.replace(/\s+/g, "") : "",
        box: html ? box(html) : null,
        visible: !!st && st.visibility === "visible" && st.display !== "none" &&
                 parseFloat(st.opacity) > 0 && !/rgba\(.*,\s*0\)$/.test(st.color),
        glyphs: glyphs,
        hidden: hidden
      };
      var tag = el.querySelector(".katex-html > .katex-tag");
      if (tag) {
        f.tag = box(tag);
        f.tag_text = tag.innerText.replace(/\s+/g, "");
        f.bases = Array.prototype.map.call(el.querySelectorAll(".katex-html > .katex-base"), box);
        f.container = box(el);
      }
      formulas.push(f);
    }
    var fonts = [];
    document.fonts.forEach(function (ff) {
      if (/KaTeX/.test(ff.family) && ff.status === "error") {
        fonts.push(ff.family + " " + ff.style + " " + ff.weight);
      }
    });
    var pre = document.createElement("pre");
    pre.id = "formula-probe";
    pre.textContent = JSON.stringify({width: window.innerWidth, height: document.documentElement.scrollHeight,
                                      formulas: formulas, failed_fonts: fonts});
    document.body.appendChild(pre);
  }
  function wait(n) {
    if (document.querySelector('.arithmatex:not([data-katex="done"])') && n < 40) {
      setTimeout(function () { wait(n + 1); }, 50);
      return;
    }
    document.fonts.ready.then(function () {
      setTimeout(measure, 50);
    });
  }
  window.addEventListener("load", function () { wait(0); });
})();
"""
PROBE_RE = re.compile(r'<pre id="formula-probe">(.*?)</pre>', re.S)
PROBE_JS_RE = re.compile(r'<script id="formula-probe-js">.*?</script>', re.S)


class _Maths(html.parser.HTMLParser):
    """The TeX of each arithmatex element, as the built page gives it to the browser."""

    def __init__(self):
        super().__init__()
        self.tex, self._depth = [], 0

    def handle_starttag(self, tag, attrs):
        if self._depth:
            self._depth += 1
        elif "arithmatex" in (dict(attrs).get("class") or "").split():
            self._depth = 1
            self.tex.append("")

    def handle_endtag(self, tag):
        if self._depth:
            self._depth -= 1

    def handle_data(self, data):
        if self._depth:
            self.tex[-1] += data


def _source_tex(page):
    parser = _Maths()
    parser.feed(page.read_text(encoding="utf-8"))
    parser.close()
    out = []
    for tex in parser.tex:
        tex = tex.strip()
        m = re.fullmatch(r"\\\((.*)\\\)|\\\[(.*)\\\]", tex, re.S)
        out.append((m.group(1) if m.group(1) is not None else m.group(2)) if m else tex)
    return out


def _run_probe(site, page, tmp, height=900, screenshot=None):
    """Open a copy of ``page`` (same folder, so its relative links hold) with the probe in it, in a
    window WIDTH x ``height``; with ``screenshot``, also save the window there at half scale."""
    probe = page.with_name("_formula_probe.htm")
    probe.write_text(page.read_text(encoding="utf-8").replace(
        "</body>", f'<script id="formula-probe-js">{PROBE_JS}</script></body>'), encoding="utf-8")
    shot = [f"--screenshot={screenshot}", f"--force-device-scale-factor={SHOT_SCALE}"] if screenshot else []
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", f"--window-size={WIDTH},{height}", f"--user-data-dir={tmp / 'profile'}",
         "--virtual-time-budget=10000", *shot, "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=90)
    dom = proc.stdout
    found = PROBE_RE.search(dom)
    assert found, f"{page.relative_to(site)}: the probe did not report\n{proc.stderr[-2000:]}"
    # The page as the reader gets it: without the probe and its report.
    return PROBE_JS_RE.sub("", PROBE_RE.sub("", dom)), json.loads(html.unescape(found.group(1)))


def _ink(site, page, tmp, height):
    """For each formula, whether the page as drawn has ink in its box: a screenshot of the whole
    page (a window as tall as the page), darkest pixel in the box below INK (the page is white)."""
    from PIL import Image  # matplotlib's dependency

    png = tmp / "page.png"
    _, probe = _run_probe(site, page, tmp, height=height + 100, screenshot=png)
    image = Image.open(png).convert("L")
    inked = []
    for f in probe["formulas"]:
        left, top, right, bottom = (round(v * SHOT_SCALE) for v in f["box"])
        if right <= left or bottom <= top or bottom > image.height or right > image.width:
            inked.append(False)
            continue
        inked.append(image.crop((left, top, right, bottom)).getextrema()[0] < INK)
    return inked


@pytest.fixture(scope="module")
def browser(site, tmp_path_factory):
    """Every page with maths as headless Chromium lays it out at WIDTH px: {name: (the DOM after
    the scripts ran, the probe's measures, the page's TeX in order, whether each formula has ink)}."""
    if CHROMIUM is None:
        if IN_CI:
            pytest.fail("CI: no chromium on PATH (.ci/run installs Debian's chromium); the formulas "
                        "must be checked in a browser")
        pytest.skip("needs Debian's chromium")
    pages = sorted(p for p in site.rglob("*.html") if 'class="arithmatex"' in p.read_text(encoding="utf-8"))

    def one(page):
        tmp = tmp_path_factory.mktemp("chromium")
        dom, probe = _run_probe(site, page, tmp)
        return dom, probe, _source_tex(page), _ink(site, page, tmp, probe["height"])

    with concurrent.futures.ThreadPoolExecutor(2) as pool:  # two pages at a time
        out = dict(zip((str(p.parent.relative_to(site)) for p in pages), pool.map(one, pages)))
    assert {"theory", "critical_sparsity"} <= set(out), out.keys()
    return out


def test_formulas_are_typeset_in_a_browser(browser):
    """Every arithmatex element, on every page, becomes KaTeX output from file:// (no network):
    no KaTeX error, the TeX KaTeX got is the page's TeX (a `<` or `>` read as markup would cut or
    change it), and the output is visible, non-empty, has a size and has ink on the page as drawn."""
    problems = []
    for name, (dom, probe, source, inked) in browser.items():
        assert probe["width"] == WIDTH, (name, probe["width"])
        assert not probe["failed_fonts"], (name, probe["failed_fonts"])
        formulas = probe["formulas"]
        assert len(formulas) == len(source) == len(inked) > 0, (name, len(formulas), len(source), len(inked))
        for i, (f, tex, ink) in enumerate(zip(formulas, source, inked)):
            what = f"{name} formula {i} ({'display' if f['display'] else 'inline'}) {tex!r}"
            if f["error"]:
                problems.append(f"{what}: KaTeX error {f['error']!r}")
            elif not (f["done"] and f["katex"]):
                problems.append(f"{what}: not typeset")
            elif (f["tex"] or "").strip() != tex.strip():
                problems.append(f"{what}: KaTeX got {f['tex']!r}, the page has {tex!r}")
            else:
                left, top, right, bottom = f["box"]
                if (not f["text"] or not f["glyphs"] or f["hidden"] or not f["visible"] or not ink
                        or right - left < 1 or bottom - top < 1):
                    problems.append(f"{what}: blank (text {f['text']!r}, box {f['box']}, "
                                    f"visible {f['visible']}, hidden glyphs {f['hidden'][:5]}, "
                                    f"ink in the screenshot {ink})")
        # The DOM as a whole: no maths left as source. A `$$` block that arithmatex did not take
        # (say, under-indented in a list item) shows a stray dollar next to the formula it became.
        done, errors = dom.count('data-katex="done"'), dom.count('class="katex-error"')
        if done != len(formulas) or errors:
            problems.append(f"{name}: {done} of {len(formulas)} typeset, {errors} KaTeX error(s)")
        if "$$" in dom or re.search(r'\$\s*<(?:span|div) class="arithmatex"', dom):
            problems.append(f"{name}: maths left as source ($$ or a stray $ by a formula)")
    assert not problems, "\n".join(problems)


def _overlap(a, b, eps=0.5):
    return a[0] < b[2] - eps and b[0] < a[2] - eps and a[1] < b[3] - eps and b[1] < a[3] - eps


def test_equation_numbers_clear_of_their_formulas(browser):
    """At WIDTH px, no equation number (\\tag) overlaps its formula, and each is inside its
    column (visible without scrolling)."""
    problems, numbered = [], 0
    for name, (_, probe, _, _) in browser.items():
        for f in probe["formulas"]:
            if "tag" not in f:
                continue
            numbered += 1
            what = f"{name} equation {f['tag_text']}"
            assert f["bases"], what
            hit = [b for b in f["bases"] if _overlap(f["tag"], b)]
            if hit:
                problems.append(f"{what}: the number {f['tag']} overlaps the formula at {hit}")
            if f["tag"][0] < f["container"][0] - 0.5 or f["tag"][2] > f["container"][2] + 0.5:
                problems.append(f"{what}: the number {f['tag']} is outside its column {f['container']}")
    assert numbered >= 8, numbered  # theory.md's (1.1)-(3.1): otherwise this checks nothing
    assert not problems, "\n".join(problems)
