"""Griffe extension: Sphinx cross-reference roles in docstrings become mkdocs-autorefs links.

meanfield's docstrings are numpydoc, and numpydoc writes cross-references as Sphinx roles
(``:func:`q_map` ``, ``:class:`~meanfield.Activation` ``, ``:mod:`meanfield.nets` ``).
mkdocstrings renders Markdown, where a role shows as raw text. This extension, loaded by
mkdocstrings-python (``extensions:`` in mkdocs.yml), rewrites every role in every docstring of
the package, before it is rendered, into an *optional* autorefs reference::

    <autoref identifier="meanfield.maps.q_map" optional><code>q_map</code></autoref>

The name is resolved as Python would from the docstring's own scope (the object, then its
parents, their members and imports), so ``:func:`q_map` `` in ``meanfield.maps`` and
``:func:`meanfield.q_map` `` reach the same target. mkdocs-autorefs turns the reference into a
link when the target is documented somewhere on the site, and into plain code otherwise
(private helpers, modules without a page): an optional reference never fails a strict build.
Two other kinds of pointer in the docstrings lead nowhere on the site, and are rewritten the same
way: ``docs/theory.md §N`` (the theory now lives on the site's pages: §1–3 and §7 on the Theory page,
§5 on Critical sparsity, §6 on Training after pruning) and "(see) the module docstring" (which
links to the module's entry on the API page when it has one).

The source files are not changed; Sphinx would still read them as written.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import griffe
from markdown.extensions.toc import slugify

DOCS = Path(__file__).resolve().parents[1]

#: ``:role:`target` ``, ``:py:role:`target` ``, ``:role:`~target` `` and ``:role:`title <target>` ``.
ROLE_RE = re.compile(
    r":(?:py:)?(?P<role>func|class|mod|meth|data|attr|exc|obj|const|ref):`(?P<body>[^`]+)`"
)
_TITLED_RE = re.compile(r"^(?P<title>.+?)\s*<(?P<target>[^<>]+)>$")


def _headings(page: str) -> list[tuple[int, str, str]]:
    """(level, title, anchor id) of the ATX headings of a docs page, outside code fences."""
    out, fenced = [], False
    try:
        lines = (DOCS / page).read_text(encoding="utf-8").splitlines()
    except OSError:
        return out
    for line in lines:
        if line.lstrip().startswith("```"):
            fenced = not fenced
        m = None if fenced else re.match(r"^(#{1,6})\s+(.+?)\s*#*\s*$", line)
        if m:
            out.append((len(m[1]), m[2], slugify(m[2], "-")))
    return out


def _theory_sections() -> dict[str, tuple[str, str]]:
    """docs/theory.md's section numbers -> (link text, autorefs anchor id) on the site."""
    out: dict[str, tuple[str, str]] = {}
    for lvl, title, anchor in _headings("theory.md"):
        m = re.match(r"(\d+)\.\s", title)
        if lvl == 2 and m:
            out[m[1]] = (f"Theory §{m[1]}", anchor)
        elif lvl == 2 and title.strip().lower() == "numerics":
            out["numerics"] = ("Theory: Numerics", anchor)
        elif lvl == 1:
            out["page"] = ("Theory", anchor)
    return out


THEORY_RE = re.compile(r"docs/theory\.md(?:\s+§(?P<a>\d+)(?:(?P<sep>–|-| and §)(?P<b>\d+))?"
                       r"|, (?P<named>Numerics))?")
MODULE_DOC_RE = re.compile(r"(?P<lead>(?:see )?(?:the )?)module docstring")


def _link(anchor: str, text: str) -> str:
    return f'<autoref identifier="{html.escape(anchor, quote=True)}" optional>{html.escape(text)}</autoref>'


def rewrite_pointers(text: str, obj: griffe.Object, sections: dict[str, tuple[str, str]]) -> str:
    """``docs/theory.md §N`` and "the module docstring" as links to where the site has them."""

    def theory(match: re.Match) -> str:
        if match["named"]:
            numbers = ["numerics"]
        elif match["a"] is None:  # the page as a whole
            numbers = ["page"]
        else:
            numbers = [match["a"]]
        if match["a"] and match["b"]:
            lo, hi = int(match["a"]), int(match["b"])
            numbers = ([str(n) for n in range(lo, hi + 1)] if match["sep"] in "–-"
                       else [match["a"], match["b"]])
        if not all(n in sections for n in numbers):
            return match[0]
        return ", ".join(_link(sections[n][1], sections[n][0]) for n in numbers)

    text = THEORY_RE.sub(theory, text)
    module = obj if obj.is_module else obj.module
    return MODULE_DOC_RE.sub(
        lambda m: m["lead"] + _link(module.path, f"{module.path} module docstring"),
        text)


def _resolve(obj: griffe.Object, target: str) -> str | None:
    """The full path of ``target`` seen from ``obj``'s scope, or None."""
    if not target.isidentifier() and not all(p.isidentifier() for p in target.split(".")):
        return None
    head, _, rest = target.partition(".")
    try:
        path = obj.resolve(head)
    except (griffe.NameResolutionError, KeyError, AttributeError, griffe.AliasResolutionError,
            griffe.CyclicAliasError):
        # A dotted name may already be a full path (``meanfield.maps.q_map``).
        return target if "." in target else None
    return f"{path}.{rest}" if rest else path


def rewrite_roles(text: str, obj: griffe.Object) -> str:
    """``text`` with each Sphinx role replaced by an optional autorefs reference (or code)."""

    def repl(match: re.Match) -> str:
        body = match["body"].strip()
        titled = _TITLED_RE.match(body)
        if titled:
            title, target = titled["title"], titled["target"].strip()
        else:
            target = body
            title = None
        short = target.startswith("~")
        target = target.lstrip("~.")
        if title is None:
            title = target.rsplit(".", 1)[-1] if short else target
            if match["role"] in ("func", "meth"):
                title += "()"
        code = f"<code>{html.escape(title)}</code>"
        if match["role"] == "ref":
            return code
        path = _resolve(obj, target)
        if path is None:
            return code
        return f'<autoref identifier="{html.escape(path, quote=True)}" optional>{code}</autoref>'

    return ROLE_RE.sub(repl, text)


class SphinxRoles(griffe.Extension):
    """Rewrite Sphinx roles in the docstrings of every object of a loaded package."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        self._walk(pkg, set(), _theory_sections())

    def _walk(self, obj: griffe.Object, seen: set[str], sections: dict) -> None:
        if obj.path in seen:
            return
        seen.add(obj.path)
        if obj.docstring is not None:
            value = rewrite_roles(obj.docstring.value, obj)
            obj.docstring.value = rewrite_pointers(value, obj, sections)
        for member in obj.members.values():
            if not member.is_alias:
                self._walk(member, seen, sections)
