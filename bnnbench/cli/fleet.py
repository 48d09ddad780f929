"""bnnbench fleet: the sweep on many devices over SSH at once, one report."""
import sys

from ..errors import BnnbenchError
from ..files import writable_dir
from .options import non_negative_float

DEFAULT_TIMEOUT = 3 * 3600


def register(sub):
    p = sub.add_parser(
        "fleet", help="run the sweep on many devices over SSH at once and gather one report",
        description=(
            "Drive devices listed in an inventory (a TOML file, one [[device]] table each: "
            "label, host, and optionally port, user, identity_file, known_hosts, workdir, "
            "python, env, lock, timeout, sweep_args) over SSH. Host keys are checked "
            "against known_hosts. Devices work in parallel; one device never runs two "
            "benchmarks at once; a device that fails stops alone, with one line saying why."))
    fleet = p.add_subparsers(dest="fleet_command", metavar="ACTION")
    fleet.required = True

    r = fleet.add_parser(
        "run", help="ship this commit, build and sweep on every device, fetch the run files",
        usage="bnnbench fleet run [options] INVENTORY [-- SWEEP OPTIONS]",
        description=(
            "For every device at once: connect, ship the source (from a git clone: `git "
            "archive` of HEAD, uncommitted changes not shipped; from any other install: "
            "its installed source files, with the commit they came from when known), create or reuse a venv in the device's "
            "workdir and pip-install the source there (the device's compiler builds the "
            "kernels), run `bnnbench sweep --label LABEL` with the options after `--`, and "
            "copy the run file into --results. Then the report of --results. Exit status 0 "
            "only if every device finished its sweep. Example: bnnbench fleet run fleet.toml "
            "-- --quick"))
    _common(r)
    r.add_argument("--host-probe", action="store_true",
                   help="also run `bnnbench host --probe` on each device (about 10 s, under the "
                        "device lock, before its sweep) and fetch its JSON into --results as "
                        "host-LABEL-TIMESTAMP.json")
    r.add_argument("--no-report", dest="report", action="store_false",
                   help="do not run `bnnbench report` on --results at the end")
    r.add_argument("--report-out", default="reports", metavar="DIR",
                   help="directory of the report (default: reports/)")
    r.set_defaults(func=run, passthrough=[])

    f = fleet.add_parser(
        "fetch", help="copy run files kept on the devices that are not here yet",
        description=(
            "Copy every run file a device kept that --results lacks (or has only as "
            "'running'), e.g. the rows of a sweep whose connection dropped, and its host "
            "files (--host-probe) that --results lacks. A run still "
            "'running' on a device where no benchmark holds the lock died with its process "
            "and is marked interrupted, as Ctrl-C marks a local one."))
    _common(f)
    f.set_defaults(func=fetch)

    c = fleet.add_parser(
        "check", help="reachability, Python, compiler, free memory and disk per device",
        description="Connect to every device and print what a sweep there would need: "
                    "Python and its venv module, a C compiler, free memory and disk, "
                    "whether a benchmark holds the device lock, the commit built there.")
    _common(c, results=False)
    c.set_defaults(func=check)


def _common(p, results=True):
    p.add_argument("inventory", metavar="INVENTORY", help="the inventory TOML file")
    if results:
        p.add_argument("--results", default="results", metavar="DIR",
                       help="where run files arrive (default: results/)")
    p.add_argument("--timeout", type=non_negative_float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                   help=f"per device, unless its inventory entry sets timeout "
                        f"(default: {DEFAULT_TIMEOUT})")
    p.add_argument("--accept-new-host-keys", action="store_true",
                   help="add the host key of a device that known_hosts does not list yet "
                        "(trust on first use, said out loud); a changed key is always refused")
    p.add_argument("--devices", default=None, metavar="LABELS",
                   help="only these devices, comma-separated labels")


def _devices(args):
    from ..fleet import inventory
    devices = inventory.load(args.inventory)
    if args.devices:
        wanted = [s.strip() for s in args.devices.split(",") if s.strip()]
        labels = [d.label for d in devices]
        unknown = [w for w in wanted if w not in labels]
        if unknown:
            raise BnnbenchError(f"--devices: no device {unknown[0]!r} in {args.inventory} "
                                f"(devices: {', '.join(labels)})")
        devices = [d for d in devices if d.label in wanted]
    from ..fleet import transport
    transport.asyncssh()  # the missing-library line now, not once per device
    return devices


def _sweep_args(args):
    extra = list(args.passthrough)
    for opt in ("--label", "--out", "--format"):
        if any(a == opt or a.startswith(opt + "=") for a in extra):
            raise BnnbenchError(f"{opt} is the fleet's to set (the label comes from the "
                                f"inventory, run files go to --results)")
    from . import build_parser
    try:  # bad sweep options are one line here, before any device is touched
        build_parser().parse_args(["sweep", *extra])
    except SystemExit as exc:
        raise SystemExit(exc.code)
    return extra


def _job_kw(args, **kw):
    return dict(accept_new=args.accept_new_host_keys, timeout=args.timeout, **kw)


def _finish(outcomes, table):
    from ..fleet.tables import show
    from ..escape import terminal
    for o in outcomes:
        if o.error:   # it may quote what a device sent: controls shown as escapes
            print(f"bnnbench fleet: {terminal(o.label)}: {terminal(o.error)}", file=sys.stderr)
    print(show(table(outcomes)))


def run(args):
    from ..fleet import job, source, tables
    devices = _devices(args)
    sweep_args = _sweep_args(args)
    writable_dir(args.results)
    src = source.current()
    if src.dirty:
        print(f"bnnbench fleet: warning: uncommitted changes are not shipped; the devices "
              f"build commit {src.commit[:12]}", file=sys.stderr)
    if src.origin == "git":
        what = f"commit {src.commit[:12]}"
    elif src.commit.startswith("installed-"):
        what = f"installed source ({src.commit}, commit unknown)"
    else:
        what = f"installed source of commit {src.commit[:12]}"
    print(f"bnnbench fleet: {len(devices)} devices, {what}, "
          f"bnnbench sweep {' '.join(sweep_args)}", file=sys.stderr)
    try:
        outcomes = job.run_all(devices, src, sweep_args, host_probe=args.host_probe,
                               **_job_kw(args, results_dir=args.results))
    except KeyboardInterrupt:
        print("bnnbench fleet: interrupted; the devices stop their sweeps and keep their rows: "
              f"bnnbench fleet fetch {args.inventory} gets them", file=sys.stderr)
        raise
    _finish(outcomes, tables.outcome_table)
    if args.report and any(o.run_file for o in outcomes):
        from .report import write_report
        write_report([args.results], args.report_out)
    return 0 if all(o.status == "complete" and not o.error for o in outcomes) else 1


def fetch(args):
    from ..fleet import job, tables
    devices = _devices(args)
    writable_dir(args.results)
    outcomes = job.fetch_all(devices, **_job_kw(args, results_dir=args.results))
    _finish(outcomes, tables.outcome_table)
    return 0 if not any(o.status == "error" for o in outcomes) else 1


def check(args):
    from ..fleet import job, tables
    outcomes = job.check_all(_devices(args), **_job_kw(args))
    _finish(outcomes, tables.check_table)
    return 0 if all(o.status == "ok" for o in outcomes) else 1
