"""Make asv's published HTML work without a network.

asv's index.html loads jQuery, flot and its plugins, bootstrap, stupidtable
and blueimp-md5 from CDNs; offline its page is an error page. This step, run
after `asv publish` (`make asv-publish` does), copies the same libraries from
the npm packages pinned in package.json / package-lock.json beside this file
(installed by `make asv-html-assets`) into <html>/vendor/ and points the page
at them. Browsers also refuse asv's XMLHttpRequests for its .json data on
file:// pages, so each X.json is written again as X.json.js and
offline-data.js loads those there (it does nothing over HTTP).

    python tools/asv-html/offline.py .asv/html [--modules DIR]

A CDN address this table does not know (a newer asv), a package of another
version than the page names, or a file whose bytes differ from what the
page's integrity hash says is one line on stderr and exit status 1: the page
is left as asv wrote it rather than half converted.
"""
import argparse
import base64
import collections
import glob
import hashlib
import json
import os
import re
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
VENDOR = "vendor"
SHIM = "offline-data.js"

# Where each file asv 0.6's index.html loads lives in the npm registry's
# packages. same_bytes: the CDN serves exactly this file (its integrity hash
# is checked); flot's CDN copies are minified by the CDN from the same 0.8.3
# release, and stupidtable 1.0.1 is not on npm: 1.1.3 only adds to its API
# (CHANGELOG.md of the package).
Asset = collections.namedtuple("Asset", "package version path same_bytes")
ASSETS = {
    "https://code.jquery.com/jquery-3.3.1.min.js":
        Asset("jquery", "3.3.1", "dist/jquery.min.js", True),
    **{f"https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot{part}.min.js":
       Asset("flot", "0.8.3", f"jquery.flot{part}.js", False)
       for part in ("", ".time", ".selection", ".categories")},
    "https://cdn.jsdelivr.net/npm/flot-orderbars@1.0.0/js/jquery.flot.orderBars.js":
        Asset("flot-orderbars", "1.0.0", "js/jquery.flot.orderBars.js", True),
    "https://cdnjs.cloudflare.com/ajax/libs/stupidtable/1.0.1/stupidtable.min.js":
        Asset("stupid-table-plugin", "1.1.3", "stupidtable.min.js", False),
    "https://cdnjs.cloudflare.com/ajax/libs/blueimp-md5/2.19.0/js/md5.min.js":
        Asset("blueimp-md5", "2.19.0", "js/md5.min.js", True),
    "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/js/bootstrap.min.js":
        Asset("bootstrap", "3.1.1", "dist/js/bootstrap.min.js", True),
    "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/css/bootstrap.min.css":
        Asset("bootstrap", "3.1.1", "dist/css/bootstrap.min.css", True),
}
# Folders a copied file refers to by relative path (bootstrap.min.css: ../fonts/).
EXTRA_DIRS = {"bootstrap": ["dist/fonts"]}

# Attributes that only make sense for a cross-origin load; on a file:// page
# crossorigin turns the load into a CORS request that fails, and an integrity
# check needs one.
CROSS_ORIGIN_ATTRS = ("integrity", "crossorigin", "referrerpolicy")

TAG = re.compile(r"<(script|link)\b([^>]*?)(/?)>", re.IGNORECASE)
ATTR = re.compile(r"""\s+([^\s=/>]+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s>"']+))?""")
# link rel values that make the browser fetch the address (an "alternate"
# feed or a "canonical" link does not).
LOADING_RELS = {"stylesheet", "icon", "shortcut", "preload", "modulepreload", "manifest"}


class OfflineError(Exception):
    """One line for the user: what is wrong and what to do."""


def _attrs(text):
    return [(m.group(1), m.group(2)) for m in ATTR.finditer(text)]


def _unquote(value):
    if value and value[0] in "\"'":
        return value[1:-1]
    return value


def _loaded_url(name, attrs):
    """The (attribute, address) a <script> or <link> tag makes the browser
    load, or None."""
    values = {k.lower(): _unquote(v) for k, v in attrs}
    if name == "script":
        return ("src", values["src"]) if values.get("src") else None
    rels = set((values.get("rel") or "").lower().split())
    if rels & LOADING_RELS and values.get("href"):
        return ("href", values["href"])
    return None


def _is_remote(url):
    return re.match(r"(?i)^(https?:)?//", url) is not None


def sri(path, algorithm):
    """The subresource-integrity string of a file ("sha256-<base64>")."""
    with open(path, "rb") as fh:
        digest = hashlib.new(algorithm, fh.read()).digest()
    return f"{algorithm}-{base64.b64encode(digest).decode()}"


def package_version(modules, package):
    try:
        with open(os.path.join(modules, package, "package.json"), encoding="utf-8") as fh:
            return json.load(fh)["version"]
    except (OSError, ValueError, KeyError):
        return None


def _check_asset(url, asset, modules, integrity):
    """The installed file for one CDN address, after checking its version
    and, where the CDN serves the same bytes, its integrity hash."""
    found = package_version(modules, asset.package)
    if found is None:
        raise OfflineError(f"npm package {asset.package} is not installed in {modules}: "
                           "run `make asv-html-assets`")
    if found != asset.version:
        raise OfflineError(f"{modules} has {asset.package} {found}, asv's page needs "
                           f"{asset.version}: run `make asv-html-assets`")
    source = os.path.join(modules, asset.package, asset.path)
    if not os.path.isfile(source):
        raise OfflineError(f"{asset.package} {found} has no {asset.path}")
    if asset.same_bytes and integrity:
        for expected in integrity.split():
            algorithm = expected.split("-", 1)[0]
            if sri(source, algorithm) != expected:
                raise OfflineError(f"{asset.package}/{asset.path} differs from {url} "
                                   f"(integrity {expected})")
    return source


def vendor_path(asset):
    """Where a copied file lives, relative to the HTML directory."""
    return f"{VENDOR}/{asset.package}/{asset.path}"


def rewrite_page(html, modules):
    """A page's text with every CDN load pointing at vendor/, and the Assets
    it now loads from there (each checked against node_modules)."""
    used = []

    def replace(match):
        name, body, close = match.group(1).lower(), match.group(2), match.group(3)
        attrs = _attrs(body)
        loaded = _loaded_url(name, attrs)
        if loaded is None or not _is_remote(loaded[1]):
            return match.group(0)
        key, url = loaded
        asset = ASSETS.get(url)
        if asset is None:
            raise OfflineError(f"asv's page loads {url}, which offline.py does not know "
                               "(a newer asv?): add it to ASSETS in tools/asv-html/offline.py")
        integrity = next((_unquote(v) for k, v in attrs if k.lower() == "integrity"), None)
        _check_asset(url, asset, modules, integrity)
        used.append(asset)
        kept = [(k, f'"{vendor_path(asset)}"' if k.lower() == key else v) for k, v in attrs
                if k.lower() not in CROSS_ORIGIN_ATTRS]
        text = "".join(f" {k}" if v is None else f" {k}={v}" for k, v in kept)
        return f"<{match.group(1)}{text}{close}>"

    return TAG.sub(replace, html), used


def copy_assets(assets, modules, html_dir):
    """Each file, the folders it refers to, and its package's licence."""
    for asset in assets:
        package_dir = os.path.join(modules, asset.package)
        target = os.path.join(html_dir, *vendor_path(asset).split("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(os.path.join(package_dir, asset.path), target)
        for extra in EXTRA_DIRS.get(asset.package, ()):
            shutil.copytree(os.path.join(package_dir, extra),
                            os.path.join(html_dir, VENDOR, asset.package, extra),
                            dirs_exist_ok=True)
        for licence in glob.glob(os.path.join(package_dir, "LICEN[CS]E*")):
            shutil.copyfile(licence, os.path.join(html_dir, VENDOR, asset.package,
                                                  os.path.basename(licence)))


def add_data_loader(html):
    """offline-data.js right after jQuery (it wraps $.ajax), once."""
    if f'src="{SHIM}"' in html:
        return html
    jquery = f"{VENDOR}/jquery/"
    for match in TAG.finditer(html):
        loaded = _loaded_url(match.group(1).lower(), _attrs(match.group(2)))
        if loaded and loaded[1].startswith(jquery):
            end = html.index("</script>", match.end()) + len("</script>")
            return html[:end] + f'\n    <script src="{SHIM}"></script>' + html[end:]
    raise OfflineError("asv's page loads no jQuery that offline.py knows: "
                       "it cannot add the file:// data loader")


def write_data_scripts(html_dir):
    """X.json.js beside every X.json asv wrote: the same data as a script a
    file:// page may load. Returns how many."""
    count = 0
    for root, _, files in os.walk(html_dir):
        for name in files:
            if not name.endswith(".json"):
                continue
            path = os.path.join(root, name)
            with open(path, encoding="utf-8") as fh:
                data = fh.read()
            # JSON text is a JavaScript expression; asv writes no NaN.
            tmp = path + ".js.tmp"
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write("asvOfflineData(")
                fh.write(data.strip())
                fh.write(");\n")
            os.replace(tmp, path + ".js")
            count += 1
    return count


def make_offline(html_dir, modules):
    """Convert the HTML asv published into html_dir; returns a summary line.
    Every page is checked before anything is written."""
    index = os.path.join(html_dir, "index.html")
    if not os.path.isfile(index):
        raise OfflineError(f"no {index}: run `asv publish` (make asv-publish) first")
    if not os.path.isdir(modules):
        raise OfflineError(f"no {modules}: run `make asv-html-assets` (npm ci) first")
    pages, used = {}, []
    for page in sorted(glob.glob(os.path.join(html_dir, "*.html"))):
        with open(page, encoding="utf-8") as fh:
            html, assets = rewrite_page(fh.read(), modules)
        used += assets
        # Only index.html fetches data; asv's error.html loads nothing.
        pages[page] = add_data_loader(html) if page == index else html
    copy_assets(used, modules, html_dir)
    shutil.copyfile(os.path.join(HERE, SHIM), os.path.join(html_dir, SHIM))
    for page, html in pages.items():
        tmp = page + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(html)
        os.replace(tmp, page)
    scripts = write_data_scripts(html_dir)
    packages = ", ".join(sorted({asset.package for asset in used}))
    served = (f"{len(used)} CDN files now served from {VENDOR}/ ({packages})" if used
              else "no CDN loads (converted before)")
    return f"{html_dir}: {served}; {scripts} data files also written for file:// pages"


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="offline.py", description="Serve asv's published HTML without a network.")
    parser.add_argument("html_dir", help="the directory `asv publish` wrote (.asv/html)")
    parser.add_argument("--modules", default=os.path.join(HERE, "node_modules"),
                        help="node_modules of the pinned packages (default: beside this script)")
    args = parser.parse_args(argv)
    try:
        print(make_offline(args.html_dir, args.modules))
    except (OfflineError, OSError) as exc:
        print(f"offline.py: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
