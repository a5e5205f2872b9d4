"""The Data Docs' CDN links rewritten to the site's own copies of the pinned npm files."""

from __future__ import annotations

from pathlib import Path

from helpers.paths import REPO

from mnistgen.data import docs_assets

PAGE = """<html><head>
<link href="https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css" rel="stylesheet">
<link href='https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css' rel="stylesheet">
<script src="https://cdn.jsdelivr.net/npm/vega@5"></script>
<script src="https://example.org/new-in-gx.js"></script>
</head><body>
<img src="https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/logo-long.png?d=1&dataContextId=x">
<a href="https://greatexpectations.io">GX</a>
</body></html>
"""


def _node_modules(root: Path) -> Path:
    for path in docs_assets.ASSETS.values():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(f"/* {path} */")
    for folder in docs_assets.EXTRA_FOLDERS:
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / "fa-solid-900.woff2").write_bytes(b"font")
    return root


def test_every_page_points_at_the_sites_own_copies_whatever_its_depth(tmp_path: Path) -> None:
    modules, site = _node_modules(tmp_path / "node_modules"), tmp_path / "data_docs"
    deep = site / "validations" / "mnist_images" / "sha256-abc" / "page.html"
    deep.parent.mkdir(parents=True)
    (site / "index.html").write_text(PAGE)
    deep.write_text(PAGE)

    remote = docs_assets.make_offline(site, modules)

    assert remote == ["https://example.org/new-in-gx.js"], "a script GX adds later is named, not hidden"
    index, page = (site / "index.html").read_text(), deep.read_text()
    assert 'href="static/vendor/bootstrap/dist/css/bootstrap.min.css"' in index
    assert "href='../../../static/vendor/@fortawesome/fontawesome-free/css/all.min.css'" in page
    assert 'src="../../../static/vendor/vega/build/vega.min.js"' in page
    assert 'src="static/images/logo-long.png"' in index and "amazonaws" not in page
    assert 'href="https://greatexpectations.io"' in index, "links a person follows stay as they are"
    assert (site / "static/vendor/vega/build/vega.min.js").read_text() == "/* vega/build/vega.min.js */"
    assert (site / "static/vendor/@fortawesome/fontawesome-free/webfonts/fa-solid-900.woff2").is_file()
    docs_assets.make_offline(site, modules)
    assert (site / "index.html").read_text() == index, "a second pass changes nothing"


def test_missing_names_what_the_folder_lacks(tmp_path: Path) -> None:
    modules = _node_modules(tmp_path / "node_modules")
    assert docs_assets.missing(modules) == []
    (modules / "jquery" / "dist" / "jquery.min.js").unlink()
    assert docs_assets.missing(modules) == ["jquery/dist/jquery.min.js"]


def test_the_pinned_packages_are_the_ones_the_assets_come_from() -> None:
    import json

    pinned = json.loads((REPO / "datadocs" / "package.json").read_text())["dependencies"]
    used = {
        path.split("/")[0] if not path.startswith("@") else "/".join(path.split("/")[:2])
        for path in [
            *docs_assets.ASSETS.values(),
            *docs_assets.EXTRA_FOLDERS,
        ]
    }
    assert used == set(pinned)
