"""Great Expectations' Data Docs without the internet.

GX writes pages that load Bootstrap, jQuery, bootstrap-table, Font Awesome and Vega from public CDNs (and
its logo from S3): offline, an air-gapped team's browser, or CI's, shows them unstyled with an empty run
table. The same files, pinned in `datadocs/package-lock.json` and installed by `npm ci` (`make setup`), are
copied into the site's `static/vendor/` and every page is pointed at them. Nothing is fetched at run time.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

VENDOR = Path("static") / "vendor"
_CDNJS = "https://cdnjs.cloudflare.com/ajax/libs"
_JSDELIVR = "https://cdn.jsdelivr.net/npm"
_TABLE, _FILTER = "https://unpkg.com/bootstrap-table@1.19.1/dist", "extensions/filter-control"
_OLD_TABLE = "https://unpkg.com/bootstrap-table@1.19.0/dist"  # GX names two versions
# Each URL GX 1.x writes into its pages -> the file of the pinned npm package that serves it.
ASSETS: dict[str, str] = {
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": (
        "bootstrap/dist/css/bootstrap.min.css"
    ),
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": (
        "bootstrap/dist/js/bootstrap.min.js"
    ),
    f"{_JSDELIVR}/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css": (
        "@forevolve/bootstrap-dark/dist/css/bootstrap-prefers-dark.css"
    ),
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery/dist/jquery.min.js",
    # popper.js is pinned at 1.14.7, the release Bootstrap 4.3.1 asks for (npm refuses GX's 1.12.9 beside it)
    f"{_CDNJS}/popper.js/1.12.9/umd/popper.min.js": "popper.js/dist/umd/popper.min.js",
    f"{_CDNJS}/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css": (
        "bootstrap-datepicker/dist/css/bootstrap-datepicker.min.css"
    ),
    f"{_CDNJS}/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js": (
        "bootstrap-datepicker/dist/js/bootstrap-datepicker.min.js"
    ),
    # Font Awesome's stylesheet finds its fonts in ../webfonts: the folder is copied beside it.
    f"{_CDNJS}/font-awesome/6.6.0/css/all.min.css": "@fortawesome/fontawesome-free/css/all.min.css",
    f"{_TABLE}/bootstrap-table.min.css": "bootstrap-table/dist/bootstrap-table.min.css",
    f"{_TABLE}/bootstrap-table.min.js": "bootstrap-table/dist/bootstrap-table.min.js",
    **{
        f"{base}/{_FILTER}/bootstrap-table-filter-control{suffix}": (
            f"bootstrap-table/dist/{_FILTER}/bootstrap-table-filter-control{suffix}"
        )
        for base, suffix in ((_TABLE, ".min.js"), (_OLD_TABLE, ".css"), (_OLD_TABLE, ".min.css"))
    },
    f"{_JSDELIVR}/vega@5": "vega/build/vega.min.js",
    f"{_JSDELIVR}/vega-lite@5": "vega-lite/build/vega-lite.min.js",
    f"{_JSDELIVR}/vega-embed@6": "vega-embed/build/vega-embed.min.js",
}
EXTRA_FOLDERS = ("@fortawesome/fontawesome-free/webfonts",)
SHIPPED = (*ASSETS.values(), *EXTRA_FOLDERS)  # everything copied into the site
# GX's logo comes from S3 with the site's id in the query string; the site ships the same image.
REMOTE_LOGO = re.compile(r"https://great-expectations-web-assets\.s3\.[^\"']*/logo-long\.png[^\"']*")
LOCAL_LOGO = "static/images/logo-long.png"
_LINK = re.compile(r"""(src|href)=(["'])(https?://[^"']+)\2""")


def missing(modules: Path) -> list[str]:
    """The pinned files that `modules` (a `node_modules` folder) lacks: empty when it serves them all."""
    return [path for path in SHIPPED if not (modules / path).exists()]


def make_offline(docs_dir: Path, modules: Path) -> list[str]:
    """Copy the assets from `modules` into `docs_dir/static/vendor` and point every page of the site at
    them; returns the remote scripts and stylesheets a page still names (GX added one: none expected)."""
    vendor = docs_dir / VENDOR
    for path in SHIPPED:
        source, target = modules / path, vendor / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            shutil.copy2(source, target)
    remote: set[str] = set()
    for page in docs_dir.rglob("*.html"):
        up = "../" * (len(page.relative_to(docs_dir).parts) - 1)  # from the page's folder to the site's root

        def local(match: re.Match[str], up: str = up) -> str:
            attribute, quote, url = match.groups()
            if url in ASSETS:
                return f"{attribute}={quote}{up}{(VENDOR / ASSETS[url]).as_posix()}{quote}"
            if attribute == "src" or url.endswith((".css", ".js")):
                remote.add(url)
            return match.group(0)

        text = page.read_text(encoding="utf-8")
        offline = _LINK.sub(local, REMOTE_LOGO.sub(up + LOCAL_LOGO, text))
        if offline != text:
            page.write_text(offline, encoding="utf-8")
    return sorted(remote)
