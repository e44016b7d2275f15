// Typeset the maths of pymdownx.arithmatex (generic mode) with the vendored KaTeX.
//
// arithmatex writes inline maths as <span class="arithmatex">\(...\)</span> and display maths
// as <div class="arithmatex">\[...\]</div>. Only those elements are touched: a dollar sign or a
// backslash in prose or code is left alone. Material's `document$` fires on every page load
// (and on each page of instant navigation); without it, the page is typeset once it is parsed.
(function () {
  "use strict";

  function typeset(root) {
    if (typeof katex === "undefined") {
      return;
    }
    var spans = root.querySelectorAll(".arithmatex");
    for (var i = 0; i < spans.length; i++) {
      var el = spans[i];
      if (el.getAttribute("data-katex") === "done") {
        continue;
      }
      var tex = el.textContent.trim();
      var display = el.tagName === "DIV";
      var m = /^\\\(([\s\S]*)\\\)$/.exec(tex) || /^\\\[([\s\S]*)\\\]$/.exec(tex);
      if (m) {
        tex = m[1];
      } else if (/^\$\$[\s\S]*\$\$$/.test(tex)) {
        tex = tex.slice(2, -2);
      } else if (/^\$[\s\S]*\$$/.test(tex)) {
        tex = tex.slice(1, -1);
      }
      katex.render(tex, el, { displayMode: display, throwOnError: false });
      el.setAttribute("data-katex", "done");
    }
  }

  if (typeof document$ !== "undefined") {
    document$.subscribe(function () {
      typeset(document.body);
    });
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () {
      typeset(document.body);
    });
  } else {
    typeset(document.body);
  }
})();
