"""tools/asv-html/offline.py: asv's published HTML served without a network.

The rewrite is checked against the index.html of the installed asv (every CDN
load known, the copies byte-identical where the CDN's integrity hash says
so), bad input fails in one line without touching the page, and headless
Chromium with every host name unresolvable opens the converted pages from
file:// and over HTTP on 127.0.0.1, while asv's own page is its error page."""
import functools
import http.server
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import threading

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = os.path.join(ROOT, "tools", "asv-html")
MODULES = os.path.join(TOOLS, "node_modules")
REMOTE_LOAD = re.compile(r"""<(script|link)\b[^>]*\b(src|href)\s*=\s*["']?(https?:)?//""", re.I)
# asv's error page when its scripts did not load, and its message when its
# data did not.
NO_SCRIPTS = "continental origin of swallow"
NO_DATA = "Error fetching content"
BENCHMARK = "bench_gemm.TimeGemmChannels.time_gemm"


def _load_offline():
    spec = importlib.util.spec_from_file_location("asv_html_offline",
                                                  os.path.join(TOOLS, "offline.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


offline = _load_offline()


def _asv_www():
    asv = pytest.importorskip("asv")
    return os.path.join(os.path.dirname(asv.__file__), "www")


@pytest.fixture(scope="module")
def modules():
    if not os.path.isdir(MODULES):
        pytest.skip(f"no {os.path.relpath(MODULES, ROOT)}: `make asv-html-assets` "
                    "(npm ci) installs the pinned packages")
    return MODULES


def _git(*args):
    out = subprocess.run(["git", "-C", ROOT, *args], capture_output=True, text=True)
    return out.stdout.split() if out.returncode == 0 else []


# ------------------------------------------------------------ the rewrite

def test_the_pins_are_the_versions_the_table_names():
    with open(os.path.join(TOOLS, "package.json")) as fh:
        pinned = json.load(fh)["dependencies"]
    with open(os.path.join(TOOLS, "package-lock.json")) as fh:
        locked = {name.split("node_modules/", 1)[1]: entry["version"]
                  for name, entry in json.load(fh)["packages"].items() if name}
    needed = {asset.package: asset.version for asset in offline.ASSETS.values()}
    assert needed == pinned == locked


def test_every_cdn_load_of_the_installed_asv_is_served_locally(modules):
    with open(os.path.join(_asv_www(), "index.html")) as fh:
        original = fh.read()
    html, used = offline.rewrite_page(original, modules)
    assert REMOTE_LOAD.search(original)
    assert not REMOTE_LOAD.search(html)
    # Each table entry is one load of the page: nothing missing, nothing stale.
    assert sorted(used) == sorted(offline.ASSETS.values())
    assert "integrity=" not in html and "crossorigin=" not in html
    for asset in used:
        assert f'"{offline.vendor_path(asset)}"' in html
    # The page's own failure hook stays on each script.
    assert html.count('onerror="js_load_failure()"') == original.count(
        'onerror="js_load_failure()"')
    # The copies that claim the CDN's bytes were checked against its hashes.
    assert sum(a.same_bytes for a in used) == 5


def _page(tmp_path, head):
    html_dir = tmp_path / "html"
    html_dir.mkdir()
    (html_dir / "index.html").write_text(f"<html><head>{head}</head><body></body></html>")
    return html_dir


JQUERY_TAG = ('<script src="https://code.jquery.com/jquery-3.3.1.min.js" '
              'integrity="sha256-FgpCb/KJQlLNfOu91ta32o/NMZxltwRo8QtmkMRdAu8=" '
              'crossorigin="anonymous"></script>')


def _fake_modules(tmp_path, modules, version="3.3.1", extra=b""):
    """A node_modules with jquery alone, optionally of another version or
    with its file changed."""
    fake = tmp_path / "node_modules"
    shutil.copytree(os.path.join(modules, "jquery", "dist"), fake / "jquery" / "dist")
    (fake / "jquery" / "package.json").write_text(json.dumps({"version": version}))
    with open(fake / "jquery" / "dist" / "jquery.min.js", "ab") as fh:
        fh.write(extra)
    return str(fake)


@pytest.mark.parametrize("case, version, extra, message", [
    ("other version", "3.7.1", b"", "has jquery 3.7.1, asv's page needs 3.3.1"),
    ("changed bytes", "3.3.1", b"\n", "differs from https://code.jquery.com/jquery-3.3.1"),
])
def test_a_package_that_is_not_what_the_page_names_is_refused(
        tmp_path, modules, case, version, extra, message):
    html_dir = _page(tmp_path, JQUERY_TAG)
    fake = _fake_modules(tmp_path, modules, version, extra)
    with pytest.raises(offline.OfflineError, match=re.escape(message)):
        offline.make_offline(str(html_dir), fake)
    assert (html_dir / "index.html").read_text().count(JQUERY_TAG) == 1   # untouched
    assert not (html_dir / "vendor").exists()


def test_an_unknown_cdn_address_is_one_line_and_the_page_is_untouched(tmp_path, modules,
                                                                      capsys):
    unknown = '<script src="https://cdn.example.org/lib/1.0/lib.min.js"></script>'
    html_dir = _page(tmp_path, JQUERY_TAG + unknown)
    before = (html_dir / "index.html").read_text()
    assert offline.main([str(html_dir), "--modules", modules]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "https://cdn.example.org/lib/1.0/lib.min.js" in err
    assert "add it to ASSETS" in err
    assert (html_dir / "index.html").read_text() == before
    assert not (html_dir / "vendor").exists()


def test_missing_inputs_are_one_line(tmp_path, capsys):
    assert offline.main([str(tmp_path)]) == 1
    assert "run `asv publish`" in capsys.readouterr().err
    html_dir = _page(tmp_path, JQUERY_TAG)
    assert offline.main([str(html_dir), "--modules", str(tmp_path / "none")]) == 1
    assert "make asv-html-assets" in capsys.readouterr().err


# ------------------------------------------------- a published results dir

def _crafted_results(tmp_path, commits):
    """asv's results for one benchmark on the given commits (newest first),
    as `asv run` would have written them (no benchmark runs). The newest is
    twice as slow as the others: a regression for asv's regressions page."""
    results = tmp_path / "results"
    (results / "box").mkdir(parents=True)
    machine = {"machine": "box", "arch": "x86_64", "cpu": "Test CPU", "num_cpu": "2",
               "os": "Linux", "ram": "1000000"}
    (results / "box" / "machine.json").write_text(json.dumps(dict(machine, version=1)))
    params = [["'float_blas'", "'xnor_64'"], ["32", "64"], ["1"]]
    (results / "benchmarks.json").write_text(json.dumps({
        BENCHMARK: {"name": BENCHMARK, "param_names": ["method", "channels", "threads"],
                    "params": params, "type": "time", "unit": "seconds", "version": "1",
                    "timeout": 60, "code": "", "number": 0, "repeat": 0, "rounds": 1,
                    "min_run_count": 2, "sample_time": 0.01, "warmup_time": 0},
        "version": 2}))
    for age, commit in enumerate(commits):
        values = [t * (1.0 if age == 0 else 0.5) for t in (0.010, 0.020, 0.0005, 0.001)]
        (results / "box" / f"{commit[:8]}-existing-py.json").write_text(json.dumps({
            "commit_hash": commit, "env_name": "existing-py", "date": 1.7e12 - age * 8.64e7,
            "params": dict(machine, python="3.11"), "python": "3.11", "requirements": {},
            "env_vars": {}, "result_columns": ["result", "params", "version", "started_at",
                                               "duration"],
            "results": {BENCHMARK: [values, params, "1", 1.7e12, 1.0]},
            "durations": {}, "version": 2}))
    return results


@pytest.fixture(scope="module")
def published(tmp_path_factory, modules):
    """`asv publish` of crafted results for this checkout's last commits,
    as asv wrote it and as offline.py converted it."""
    commits = _git("rev-list", "--first-parent", "-n", "2", "HEAD")
    if not commits:
        pytest.skip("not a git checkout")
    tmp = tmp_path_factory.mktemp("asv-html")
    results = _crafted_results(tmp, commits)
    conf = {"version": 1, "project": "bnnbench", "project_url": "", "repo": ROOT,
            "dvcs": "git", "branches": ["HEAD"], "results_dir": str(results),
            "html_dir": str(tmp / "html"), "env_dir": str(tmp / "env"),
            "benchmark_dir": os.path.join(ROOT, "benchmarks")}
    (tmp / "asv.conf.json").write_text(json.dumps(conf))
    proc = subprocess.run([sys.executable, "-m", "asv", "publish", "--config",
                           str(tmp / "asv.conf.json")], cwd=tmp, capture_output=True,
                          text=True, timeout=300, env=dict(os.environ, HOME=str(tmp)))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    shutil.copytree(tmp / "html", tmp / "asv-html")
    # The command `make asv-publish` runs.
    proc = subprocess.run([sys.executable, os.path.join(TOOLS, "offline.py"),
                           str(tmp / "html"), "--modules", modules],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "10 CDN files now served from vendor/" in proc.stdout
    return {"html": tmp / "html", "asv": tmp / "asv-html", "tmp": tmp}


def test_each_data_file_is_also_a_script(published):
    html = published["html"]
    data = sorted(html.rglob("*.json"))
    assert {"index.json", "info.json"} <= {p.name for p in data}
    assert any(p.name == f"{BENCHMARK}.json" and "graphs" in p.parts for p in data)
    for path in data:
        script = path.with_name(path.name + ".js").read_text()
        assert script.startswith("asvOfflineData(") and script.endswith(");\n")
        assert json.loads(script[len("asvOfflineData("):-len(");\n")]) == json.loads(
            path.read_text())


def test_converting_twice_changes_nothing(published, modules, tmp_path):
    again = tmp_path / "html"
    shutil.copytree(published["html"], again)
    assert "no CDN loads" in offline.make_offline(str(again), modules)
    assert (again / "index.html").read_text() == (published["html"] / "index.html").read_text()


# ------------------------------------------------------- in a real browser

def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip("no headless Chromium (`make asv-html-test-tools` installs Debian's "
                "chromium where apt-get can)")


def _dom(url, profile):
    """The page's DOM once its scripts have run, with no network: every host
    name fails to resolve and a proxy that would be used is a closed port."""
    proc = subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-dev-shm-usage", f"--user-data-dir={profile}",
         "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
         "--proxy-server=127.0.0.1:9", "--virtual-time-budget=10000",
         "--window-size=1280,900", "--dump-dom", url],
        capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.fixture(scope="module")
def served(published):
    """The converted HTML over HTTP on 127.0.0.1, as `asv preview` serves it."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(published["html"]))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_asvs_own_page_needs_the_network(published, tmp_path):
    """The control: with the network blocked as below, asv's page as
    published is its error page."""
    dom = _dom((published["asv"] / "index.html").as_uri(), tmp_path / "profile")
    assert NO_SCRIPTS in dom


@pytest.mark.parametrize("page", ["#/summarylist", f"#{BENCHMARK}", "#/regressions"])
@pytest.mark.parametrize("scheme", ["file", "http"])
def test_the_converted_page_renders_offline(published, served, tmp_path, scheme, page):
    base = (published["html"] / "index.html").as_uri() if scheme == "file" \
        else served + "/index.html"
    dom = _dom(base + page, tmp_path / "profile")
    assert NO_SCRIPTS not in dom and NO_DATA not in dom
    if page == "#/summarylist":
        # One row per parameter combination, with its value at HEAD.
        assert dom.count(f">{BENCHMARK}</a>") == 4
        for method in ("'float_blas'", "'xnor_64'"):
            for channels in (32, 64):
                assert f"> ({method}, {channels}, 1)</a>" in dom
        assert ">10.000ms<" in dom and ">500.000μs<" in dom
    elif page == "#/regressions":
        # The four slowdowns at HEAD, keyed by blueimp-md5 hashes, in a
        # table stupidtable has sorted.
        assert len(re.findall(r'<tr id="asv-r-bnnbench[0-9a-f]{32}">', dom)) == 4
        assert 'class="sorting-desc desc">Factor<' in dom
    else:
        # flot drew the benchmark's graph from its data file.
        assert 'class="flot-base"' in dom and "channels-64; method-xnor_64" in dom
