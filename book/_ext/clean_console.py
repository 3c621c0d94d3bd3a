"""Make every page render cleanly: its equations typeset, and no spurious console errors.

- Jupyter Book 1 registers some inline scripts twice (sphinx-thebe's `const THEBE_JS_URL`
  among them), and a second `const` declaration is a SyntaxError: keep the first of each.
- Sphinx adds MathJax only to pages it saw equations in, and misses those in notebooks:
  add page assets to every page.
- On a first visit pydata-sphinx-theme finds an empty theme mode and logs an error before
  falling back to "auto": choose "auto" before it looks.
"""

FIRST_VISIT_MODE = """if (!document.documentElement.dataset.mode) {
  document.documentElement.dataset.mode = "auto";
}"""


def drop_duplicate_scripts(app, pagename, templatename, context, doctree):
    seen, unique = set(), []
    for script in context.get("script_files", []):
        key = (getattr(script, "filename", script) or "",  # None and "" both mean inline
               tuple(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"][:] = unique  # in place: later handlers add to this very list


def setup(app):
    app.set_html_assets_policy("always")
    app.add_js_file(None, body=FIRST_VISIT_MODE, priority=100)
    app.connect("html-page-context", drop_duplicate_scripts, priority=1)  # before any returns
    return {"parallel_read_safe": True, "parallel_write_safe": True}

