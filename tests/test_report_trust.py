"""The report never shows a shaky figure as a fact: crafted run files (no
kernels run) for a quick and a full run of one host, an emulated host, a
noisy baseline under an unflagged candidate (an older file), a busy run and
an unreliable probe."""
import html
import json
import re

import numpy as np
import pandas as pd
import pytest

from bnnbench.measure import trust
from bnnbench.report import data, figures, sections
from bnnbench.report.build import build_report

HOST = dict(arch="x86_64", cpu_brand="Crafted CPU", cpu_flags=["popcnt", "avx2"],
            physical_cores=2, logical_cores=2, blas={"library": "openblas"})
# Speedup of each method over float_blas in the crafted runs.
RATIOS = {"float_blas": 1.0, "xnor_64": 18.0, "xnor_64_omp": 20.0, "binarize_xnor_64_omp": 12.0}


def samples(median, spread=0.01, n=9, seed=0):
    rng = np.random.default_rng(seed)
    return list(median * (1 + spread * rng.uniform(-1, 1, n)))


def shape_rows(channels, batch, ratios=RATIOS, spread=None, peak=None):
    """One shape's rows, both thread counts, as the sweep writes them."""
    spread = spread or {}
    k = 25 * channels
    n = batch * 64
    base = 2e-11 * 64 * n * k
    rows = []
    for threads in (1, 2):
        for method, ratio in ratios.items():
            if method == "xnor_64" and threads == 2:
                continue
            median = base / ratio / (1.8 if threads == 2 else 1.0)
            s = samples(median, spread.get(method, 0.01), seed=channels + threads)
            q1, q3 = np.percentile(s, [25, 75])
            rows.append(dict(
                method=method, threads=threads, M=64, N=n, K=k, channels=channels, filters=64,
                kernel=5, batch=batch, out_size=8, verified=True, samples_s=s, min_s=min(s),
                median_s=float(np.median(s)), iqr_s=float(q3 - q1),
                noisy=bool((q3 - q1) > 0.1 * np.median(s)),
                kind="float" if method == "float_blas" else "xnor",
                gops=2 * 64 * n * k / np.median(s) / 1e9, peak_fraction=peak))
    return rows


def run_file(tmp, label, run_id, shapes, started="2026-11-01T10:00:00+00:00", new=True,
             busy=False, host=None, **shape_kw):
    """A sweep run file; `new` adds the trust fields the sweep now writes
    (trust.annotate_shape, trust.verdict), otherwise it is an older file."""
    rows = []
    for channels, batch in shapes:
        one = shape_rows(channels, batch, **shape_kw)
        if new:
            load = {"other_cores": 1.0 if busy else 0.0, "cpus": 2, "steal_share": None,
                    "loadavg_1m": 3.0 if busy else 0.1, "freq_mhz": None, "wall_s": 1.0}
            trust.annotate_shape(one, load, busy)
        rows += one
    run = {"schema_version": 1, "kind": "sweep", "run_id": run_id, "status": "complete",
           "started_at": started, "finished_at": started, "command": "bnnbench sweep",
           "settings": {}, "host": dict(HOST, label=label, **(host or {})), "rows": rows}
    if new:
        run["verdict"] = trust.verdict(rows, run["host"].get("probe"))
    path = tmp / f"{label}-{run_id[:8]}.json"
    path.write_text(json.dumps(run))
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("trust")
    files = {
        # One host, a full-size run and a newer quick one.
        "ws_full": run_file(tmp, "ws", "f" * 32, [(1, 200), (32, 200), (64, 200)],
                            started="2026-11-01T10:00:00+00:00", peak=0.5),
        "ws_quick": run_file(tmp, "ws", "q" * 32, [(1, 8), (32, 8)],
                             started="2026-11-02T10:00:00+00:00", peak=0.4),
        # An emulator: huge ratios that must not set the cross-device scale.
        "emu": run_file(tmp, "qemu", "e" * 32, [(1, 8), (32, 8)],
                        ratios=dict(RATIOS, xnor_64=300.0, xnor_64_omp=300.0,
                                    binarize_xnor_64_omp=300.0),
                        host={"emulated": True, "emulator": "qemu-aarch64"}),
        # An older file: float_blas spread out, xnor_64 not flagged itself,
        # and the highest speedup of all.
        "noisy": run_file(tmp, "laptop", "n" * 32, [(1, 200), (32, 200), (64, 200)], new=False,
                          ratios=dict(RATIOS, xnor_64=66.0),
                          spread={"float_blas": 0.9}),
        # A run timed while another job held a core.
        "busy": run_file(tmp, "shared", "b" * 32, [(1, 200), (32, 200), (64, 200)], busy=True),
        # A probe that could not be trusted, with rows' fractions stored.
        "probe": run_file(tmp, "pi", "p" * 32, [(1, 200), (32, 200)], peak=2.5,
                          host={"probe": {"unreliable": "2-thread peak below the 1-thread "
                                                        "peak after a re-probe",
                                          "reprobed": True, "threads": {}}}),
    }
    return tmp, files


@pytest.fixture(scope="module")
def ds(runs):
    tmp, _ = runs
    return data.load([str(tmp)])


@pytest.fixture
def keep_artists(monkeypatch):
    monkeypatch.setattr(figures, "KEEP_ARTISTS", True)


def glance_table(ds):
    s = sections.glance(ds)
    (table,) = s.tables
    header, rows = table.cells()
    shown = pd.DataFrame(rows, columns=header).set_index("host")
    return s, table, shown


def test_a_noisy_baseline_makes_its_rows_shaky(ds):
    laptop = ds.sweep[(ds.sweep["host_label"] == "laptop") & (ds.sweep["method"] == "xnor_64")]
    assert (laptop["noisy"] == False).all()  # noqa: E712 - the candidate itself is quiet
    assert laptop["shaky"].all()
    assert laptop["shaky_why"].str.contains("noisy").all()
    ws = ds.sweep[ds.sweep["host_label"] == "ws"]
    assert not ws["shaky"].any()


def test_glance_never_headlines_a_shaky_figure(ds):
    s, table, shown = glance_table(ds)
    # The laptop's 66x sits over a noisy baseline: no best, every cell greyed.
    assert shown.loc["laptop", "best (not shaky)"].startswith("none")
    for col, _ in [(c, m) for _, m, c in sections.GLANCE_CELLS]:
        assert shown.loc["laptop", col].startswith("not a result")
        assert shown.loc["shared", col].startswith("not a result")
    i = list(table.df["host"]).index("laptop")
    assert all(table.muted[c][i] for _, _, c in sections.GLANCE_CELLS)
    # The quiet host's figures stand, with their interval beside them.
    assert re.fullmatch(r"1\d\.\d× \(\S+–\S+\)", shown.loc["ws", "xnor_64 (1 thread)"])
    assert "66" not in " ".join(text for _, text in s.notices)
    assert "66" not in shown.loc["laptop", "best (not shaky)"]
    # The headline sentence names only figures that are results.
    head = [t for level, t in s.notices if t.startswith("Binary layers")]
    assert head and "shared" not in head[0] and "laptop" not in head[0]


def test_glance_says_when_a_run_was_busy_or_its_probe_unreliable(ds):
    s, _, shown = glance_table(ds)
    warns = " ".join(t for level, t in s.notices if level == "warn")
    assert "shared: run bbbbbbbb" in warns and "other processes" in warns
    assert "pi: the peak probe of run pppppppp is unreliable" in warns
    assert "busy run" in shown.loc["shared", "trust"]
    assert "probe" in shown.loc["pi", "trust"]


def test_hollow_markers_for_points_that_are_not_results(ds, keep_artists):
    rows = ds.sweep[ds.sweep["host_label"] == "laptop"]
    (fig,) = figures.versus(rows, "channels", "speedup")
    hollow = [ln for ax in fig.artist.axes for ln in ax.get_lines()
              if ln.get_gid() == "not-a-result"]
    filled = [ln for ax in fig.artist.axes for ln in ax.get_lines() if ln.get_gid() == "result"]
    assert hollow and not filled
    assert all(ln.get_markerfacecolor() == figures.HOLLOW for ln in hollow)
    assert "Hollow points are not results" in fig.caption
    # Error bars from the interval are drawn too.
    assert any(c for ax in fig.artist.axes for c in ax.collections)
    quiet = ds.sweep[ds.sweep["host_label"] == "ws"]
    for fig in figures.versus(quiet, "channels", "speedup"):
        assert not [ln for ax in fig.artist.axes for ln in ax.get_lines()
                    if ln.get_gid() == "not-a-result"]


def test_every_batch_size_is_plotted(ds):
    rows = ds.sweep[ds.sweep["host_label"] == "ws"]
    assert set(rows["batch"]) == {8, 200}
    for value in ("time", "speedup"):
        titles = [f.title for f in figures.versus(rows, "channels", value)]
        assert [t.rsplit("batch ", 1)[1] for t in titles] == ["200", "8"]
    assert figures.unplotted_batches(rows) == []
    # A batch measured at one shape only has no line to draw: the room says so.
    single = rows[rows["batch"] == 8].head(1).assign(batch=50)
    assert figures.unplotted_batches(pd.concat([rows, single])) == [50]


def test_peak_figure_uses_one_runs_probe(ds, runs):
    ws = ds.sweep[ds.sweep["host_label"] == "ws"]
    fig = figures.peak_fraction(ws, ds.trust)
    assert "Run ffffffff against its own probe" in fig.caption
    assert "qqqqqqqq" in fig.caption   # the other run is named, not mixed in
    pi = ds.sweep[ds.sweep["host_label"] == "pi"]
    assert pi["peak_fraction"].isna().all()
    assert figures.peak_fraction(pi, ds.trust) is None
    room = sections.room(ds, ds.hosts[ds.hosts["host_label"] == "pi"].iloc[0], 0)
    assert any("unreliable" in t for _, t in room.notices)


def test_emulated_host_never_sets_the_scale(ds, keep_artists):
    long = sections.tables.comparison_long(ds.sweep)
    figs = figures.comparison(long, ds.host_labels(), {"qemu"})
    assert figs
    for fig in figs:
        (ax,) = fig.artist.axes
        top = ax.get_ylim()[1]
        assert top < 100          # the emulator's 300x is cut, not the scale
        assert any("↑" in t.get_text() for t in ax.texts)
        assert not figures.ticklabels_overlap(fig.artist, ax.xaxis)


def test_hosts_compared_only_on_shared_shapes(ds, runs, tmp_path):
    s = sections.comparison(ds)
    (table, _) = s.tables
    shapes = set(map(tuple, table.df[["channels", "filters", "kernel", "batch", "out_size"]]
                     .values))
    long = sections.tables.comparison_long(ds.sweep)
    for shape in shapes:
        hosts = long[(long[figures.SHAPE_COLS].apply(tuple, axis=1)) == shape]["host"]
        assert hosts.nunique() >= 2
    _, files = runs
    lonely = data.load([str(files["ws_quick"]), str(files["probe"])])
    s = sections.comparison(lonely)
    assert not s.figures and any("share no measured shape" in t for _, t in s.notices)


def test_tick_labels_never_overlap(keep_artists):
    shapes = [(c, 64, k, 200, 8) for c in (1, 16, 32, 64, 128, 256, 512, 1024)
              for k in (1, 3, 5)]
    recs = []
    for host in ("a-long-host-label", "b", "c"):
        for s in shapes:
            recs.append(dict(host=host, method="xnor_64", level="1", speedup=10.0,
                             speedup_low=9.0, speedup_high=11.0, shaky=False,
                             **dict(zip(figures.SHAPE_COLS, s))))
    (fig, *_) = figures.comparison(pd.DataFrame(recs), ["a-long-host-label", "b", "c"])
    (ax,) = fig.artist.axes
    assert not figures.ticklabels_overlap(fig.artist, ax.xaxis)
    layers = pd.DataFrame([dict(layer=f"block{i // 3}.conv{i % 3}_with_a_long_name",
                                method=m, _ms=1.0 + i) for i in range(60)
                           for m in ("float_blas", "xnor_64", "xnor_64_omp")])
    fig = figures.layer_bars(layers, "many layers")
    (ax,) = fig.artist.axes
    assert not figures.ticklabels_overlap(fig.artist, ax.yaxis)


def test_accuracy_axis_shows_the_difference(keep_artists):
    df = pd.DataFrame([dict(host_label="h", run_id="r" * 32, network=n, evaluation=e,
                            accuracy=a)
                       for n, e, a in (("float", "numpy", 0.923), ("binary", "numpy", 0.912),
                                       ("binary", "xnor", 0.912))])
    fig = figures.accuracy_bars(df)
    (ax,) = fig.artist.axes
    low, high = ax.get_ylim()
    assert low > 50 and high - low < 15
    assert any("-1.1 points" in t.get_text() for t in ax.texts)


def test_no_table_twice_and_published_rows_are_findable(runs, tmp_path):
    tmp, _ = runs
    out = build_report([str(tmp)], str(tmp_path))
    page = open(out.html, encoding="utf-8").read()
    ids = re.findall(r'<table id="t-([^"]+)"', page)
    assert len(ids) == len(set(ids))
    bodies = [re.sub(r"\s+", " ", b) for b in re.findall(r"<tbody>(.*?)</tbody>", page, re.S)]
    assert len(bodies) == len(set(bodies))
    published = page.split('<section id="published"')[1].split("</section>")[0]
    header = re.findall(r"<th>(.*?)</th>", published)
    assert "where" in header
    col = header.index("where")
    for row in re.findall(r"<tr>(.*?)</tr>", published.split("<tbody>")[1], re.S):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        assert html.unescape(cells[col]).strip() not in ("", "–")
    # The glance greys what is not a result.
    glance = page.split('<section id="glance"')[1].split("</section>")[0]
    assert 'class="num muted"' in glance


def test_a_sweep_beside_a_cpu_hog_heads_no_glance(tmp_path, sweep_beside_a_hog):
    """A real quick sweep while a busy process holds a core: the report's
    glance shows none of its speedups as a result and says the run was busy."""
    out = sweep_beside_a_hog("--out", str(tmp_path), "--label", "hogged",
                             "--methods", "float_blas,xnor_64,xnor_64_omp", "--quiet")
    assert out.returncode == 0, out.stderr
    s, table, shown = glance_table(data.load([str(tmp_path)]))
    assert shown.loc["hogged", "best (not shaky)"].startswith("none")
    for col in ("xnor_64 (1 thread)", "xnor_64_omp (all)"):
        assert shown.loc["hogged", col].startswith("not a result")
    assert not [t for _, t in s.notices if t.startswith("Binary layers")]
    assert any("hogged: run" in t and "other processes" in t for level, t in s.notices
               if level == "warn")


def test_cross_device_bars_that_are_not_results_are_hollow(ds, keep_artists):
    long = sections.tables.comparison_long(ds.sweep)
    (fig, *_) = figures.comparison(long, ds.host_labels(), {"qemu"})
    (ax,) = fig.artist.axes
    hollow = [p for p in ax.patches if p.get_gid() == "not-a-result"]
    assert hollow and all(p.get_facecolor()[3] == 0 for p in hollow)
    assert "Hollow bars are not results" in fig.caption


def test_a_profile_total_over_a_busy_layer_is_not_a_result(tmp_path):
    def row(layer, binary, method, median, busy=False):
        s = samples(median)
        return dict(model="m", layer=layer, method=method, threads=1, batch=2, M=64, N=128,
                    K=576, binary=binary, verified=True, samples_s=s, min_s=min(s),
                    median_s=median, iqr_s=0.0, noisy=False, busy=busy, suspect=False,
                    speedup_noisy=busy)
    rows = [row("conv1", False, "float_blas", 1e-3), row("conv2", True, "float_blas", 4e-3),
            row("conv2", True, "xnor_64", 2e-4, busy=True)]
    run = {"schema_version": 1, "kind": "profile", "run_id": "c" * 32, "status": "complete",
           "started_at": "2026-11-01T10:00:00+00:00", "host": dict(HOST, label="h"),
           "rows": rows, "verdict": {"host_busy": True, "evidence": "a hog"}}
    (tmp_path / "profile.json").write_text(json.dumps(run))
    s = sections.profile(data.load([str(tmp_path)]))
    totals = next(t for t in s.tables if t.name == "profile_totals")
    header, cells = totals.cells()
    assert cells[0][header.index("speedup")].startswith("not a result")
    assert totals.muted["speedup"] == [True]
    assert any("profile run cccccccc was timed while" in t for _, t in s.notices)


def test_all_runs_keeps_what_is_not_a_result(runs):
    tmp, _ = runs
    agg = data.load([str(tmp)], all_runs=True)
    laptop = agg.sweep[(agg.sweep["host_label"] == "laptop")
                       & (agg.sweep["method"] != "float_blas")]
    assert laptop["shaky"].all() and laptop["speedup_low"].notna().all()
    _, _, shown = glance_table(agg)
    assert shown.loc["laptop", "best (not shaky)"].startswith("none")
