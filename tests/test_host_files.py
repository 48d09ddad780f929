"""Host files (`bnnbench host --probe --format json` kept beside run files):
checked like any untrusted file, and passed over by the run loaders with at
most a note."""
import json
import warnings

import pytest

from bnnbench.runs import host_files, reader

from bnnbench.measure import hostinfo

from bnnbench import untrusted
from bnnbench.report import data

from test_results import make_run

PROBE = {"popcount_method": "builtin", "threads": {
    "1": {"popcount_gops": 100.0, "fma_gflops": 50.0, "read_gbs": 10.0},
    "2": {"popcount_gops": 190.0, "fma_gflops": 95.0, "read_gbs": 12.0}}}


def fingerprint(label="rpi4", probe=True):
    fp = hostinfo.fingerprint(label)
    if probe:
        fp["probe"] = json.loads(json.dumps(PROBE))
    return fp


def raw(obj):
    return json.dumps(obj).encode()


def test_name():
    name = host_files.filename("my pi/4", when=0)
    assert name == "host-my_pi_4-19700101T000000.json" and host_files.NAME.fullmatch(name)
    assert not host_files.NAME.fullmatch("sweep-rpi4-19700101T000000-abcdef12.json")
    assert host_files.is_for(name, "my pi/4") and not host_files.is_for(name, "my pi")
    assert not host_files.is_for("host-a-b-19700101T000000.json", "a")


def test_a_fingerprint_with_its_probe_passes():
    fp = host_files.parse(raw(fingerprint()), "x", label="rpi4", probe=True)
    assert fp["probe"]["threads"]["2"]["popcount_gops"] == 190.0


def _probe_with(**peaks):
    fp = fingerprint()
    fp["probe"]["threads"]["1"].update(peaks)
    return fp


@pytest.mark.parametrize("data_,reason", [
    (b"\xff\xfe", "not UTF-8"),
    (b"{", "not valid JSON"),
    (b"[" * 100 + b"]" * 100, "nested deeper"),
    (raw([1]), "not the output of bnnbench host"),
    (raw({"label": "rpi4"}), "not the output of bnnbench host"),
    (raw(fingerprint("other")), "labelled 'other', not 'rpi4'"),
    (raw(fingerprint(probe=False)), "no probe"),
    (raw(dict(fingerprint(), probe={"threads": {}})), "probe.threads missing or empty"),
    (raw(dict(fingerprint(), probe={"threads": {"one": {}}})), "not a thread count"),
    (raw(_probe_with(popcount_gops="fast")), "popcount_gops is not a non-negative number"),
    (raw(_probe_with(fma_gflops=-1)), "fma_gflops is not a non-negative number"),
    (raw(_probe_with(read_gbs=True)), "read_gbs is not a non-negative number"),
])
def test_bad_host_files_are_one_reason(data_, reason):
    with pytest.raises(untrusted.RejectedFile, match=reason) as exc:
        host_files.parse(data_, "rpi4:results/x/host-rpi4.json", label="rpi4", probe=True)
    assert str(exc.value).startswith("rpi4:results/x/host-rpi4.json: ")
    assert "\n" not in str(exc.value)


def test_size_limit(monkeypatch):
    monkeypatch.setattr(untrusted, "MAX_FILE_BYTES", 100)
    with pytest.raises(untrusted.RejectedFile, match="over the 100-byte limit"):
        host_files.parse(raw(fingerprint()), "x")


def test_run_loaders_pass_over_host_files(tmp_path):
    make_run(tmp_path, label="rpi4")
    (tmp_path / host_files.filename("rpi4")).write_bytes(raw(fingerprint()))
    (tmp_path / "junk.json").write_text('{"hello": 1}')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = reader.load_frame([str(tmp_path)])
    assert set(df["host_label"]) == {"rpi4"}
    assert [str(w.message) for w in caught] == [
        f"skipping {tmp_path / 'junk.json'}: not a bnnbench run file (missing schema_version, "
        f"kind, run_id, status, started_at, host, rows)"]
    ds = data.load([str(tmp_path)])
    assert [p for p, _ in ds.skipped] == [str(tmp_path / "junk.json")]
    assert any(n.startswith("Not runs, so not read: 1 host file(s)") for n in ds.notes)


def test_report_cli_is_quiet_about_host_files(tmp_path):
    import subprocess
    import sys
    make_run(tmp_path / "results", label="rpi4")
    (tmp_path / "results" / host_files.filename("rpi4")).write_bytes(raw(fingerprint()))
    proc = subprocess.run([sys.executable, "-m", "bnnbench", "report", "results", "--out", "r",
                           "--quiet"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert "1 hosts, 1 runs" in proc.stdout
    assert "Not runs, so not read: 1 host file(s)" in (tmp_path / "r" / "report.html").read_text()
