#!/usr/bin/env python3
"""Helpers for regress/bench/run: /proc sampling and the arithmetic.

    benchlib.py waitport PORT PID SECS   wait until PID listens on PORT
    benchlib.py busy PORT                exit 0 if something listens on PORT
    benchlib.py tree PID                 PID and its descendants
    benchlib.py cpu PID                  CPU seconds of the process tree
    benchlib.py procs PID                per-process CPU ticks, with titles
    benchlib.py pcpu BEFORE AFTER SECS   %CPU per process between samples
    benchlib.py busiest BEFORE AFTER SECS "wmax=% khmax=%": busiest worker
                                         and keyholder, % of one core
    benchlib.py mem PID                  "pss_kb rss_kb nread nprocs" of the tree
    benchlib.py hist BEFORE AFTER NAME [-q]  p50/p99 of a Prometheus
                                         histogram (-q: key=value)
    benchlib.py targets RAW              issue 18's targets against the runs
    benchlib.py table RAW                the results tables
    benchlib.py field LINE KEY           one key=value from a result line

Only /proc and the files named are read; nothing here signals a process.
"""

import os
import statistics
import sys
import time

TCK = os.sysconf("SC_CLK_TCK")


def stat_fields(pid):
    """Fields 3.. of /proc/PID/stat (the title may hold spaces)."""
    with open("/proc/%d/stat" % pid) as f:
        data = f.read()
    return data[data.rindex(")") + 2:].split()


def descendants(root):
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            ppid = int(stat_fields(int(name))[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if not os.path.exists("/proc/%d" % pid):
            continue
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def ticks(pid, with_children):
    """utime+stime; the root also counts children it has reaped."""
    f = stat_fields(pid)
    t = int(f[11]) + int(f[12])
    if with_children:
        t += int(f[13]) + int(f[14])
    return t


def title(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            raw = f.read().replace(b"\0", b" ").strip()
        if raw:
            return raw.decode("utf-8", "replace")
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return "?"


def tree_ticks(root):
    total = 0
    for pid in descendants(root):
        try:
            total += ticks(pid, pid == root)
        except (OSError, ValueError, IndexError):
            pass
    return total


def listening(port):
    want = ":%04X" % port
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    if cols[1].endswith(want) and cols[3] == "0A":
                        return True
        except OSError:
            pass
    return False


def cmd_waitport(port, pid, secs):
    deadline = time.monotonic() + float(secs)
    port, pid = int(port), int(pid)
    while time.monotonic() < deadline:
        try:
            if stat_fields(pid)[0] == "Z":
                return 1
        except OSError:
            return 1
        if listening(port):
            return 0
        time.sleep(0.1)
    return 1


def cmd_procs(root):
    for pid in descendants(int(root)):
        try:
            print(pid, ticks(pid, False), title(pid))
        except (OSError, ValueError, IndexError):
            pass
    return 0


def read_procs(path):
    out = {}
    with open(path) as f:
        for line in f:
            pid, t, name = line.rstrip("\n").split(" ", 2)
            out[int(pid)] = (int(t), name)
    return out


def cmd_pcpu(before, after, secs):
    a, b, secs = read_procs(before), read_procs(after), float(secs)
    for pid, (t1, name) in sorted(b.items()):
        t0 = a.get(pid, (0, name))[0]
        print("  %-7d %-28s %6.1f%%" % (pid, name[:28],
                                        100.0 * (t1 - t0) / TCK / secs))
    return 0


def cmd_busiest(before, after, secs):
    """The busiest worker and keyholder between two `procs` samples."""
    a, b, secs = read_procs(before), read_procs(after), float(secs)
    top = {"wmax": 0.0, "khmax": 0.0}
    for pid, (t1, name) in b.items():
        key = "khmax" if "keyholder" in name else \
            "wmax" if "worker" in name else None
        if key is None or secs <= 0:
            continue
        pct = 100.0 * (t1 - a.get(pid, (0, name))[0]) / TCK / secs
        top[key] = max(top[key], pct)
    print("wmax=%.1f khmax=%.1f" % (top["wmax"], top["khmax"]))
    return 0


def cmd_mem(root):
    """Pss and Rss sums, processes read and found (a non-dumpable process,
    the keyholder, is readable only by root)."""
    pss = rss = n = 0
    pids = descendants(int(root))
    for pid in pids:
        try:
            with open("/proc/%d/smaps_rollup" % pid) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1])
                    elif line.startswith("Rss:"):
                        rss += int(line.split()[1])
            n += 1
        except (OSError, ValueError, IndexError):
            pass
    print(pss, rss, n, len(pids))
    return 0


def prom_buckets(path, name):
    """{le: count} summed over every label set of NAME_bucket."""
    out = {}
    try:
        f = open(path)
    except OSError:
        return out
    with f:
        for line in f:
            if not line.startswith(name + "_bucket{"):
                continue
            labels, _, value = line.rpartition("}")
            le = None
            for part in labels.split("{", 1)[1].split(","):
                k, _, v = part.partition("=")
                if k.strip() == "le":
                    le = v.strip().strip('"')
            if le is None:
                continue
            bound = float("inf") if le in ("+Inf", "Inf") else float(le)
            out[bound] = out.get(bound, 0) + float(value.split()[0])
    return out


def bucket_quantile(cum, q):
    """Linear interpolation inside the bucket, as Prometheus does."""
    total = cum[-1][1]
    rank = q * total
    lower, below = 0.0, 0.0
    for bound, c in cum:
        if c >= rank:
            if bound == float("inf"):
                return None, lower
            if c == below:
                return bound, None
            return lower + (bound - lower) * (rank - below) / (c - below), None
        lower, below = bound, c
    return None, lower


def cmd_hist(before, after, name, quiet=None):
    """p50/p99 of the observations between two scrapes; with -q as
    khp50=US khp99=US khn=N (khp99=>US: past the last finite bucket)."""
    a, b = prom_buckets(before, name), prom_buckets(after, name)
    cum = sorted((le, b[le] - a.get(le, 0)) for le in b)
    if not cum or cum[-1][1] <= 0:
        print("khn=0" if quiet else
              "n/a (no %s in /metrics)" % name if not b else
              "n/a (no signatures counted)")
        return 0
    parts = []
    for label, q in (("p50", 0.5), ("p99", 0.99)):
        v, over = bucket_quantile(cum, q)
        if quiet:
            parts.append("kh%s=%s%.0f" % (label, ">" if v is None else "",
                                          (over if v is None else v) * 1e6))
        elif v is None:
            parts.append("%s>%.0fus" % (label, over * 1e6))
        else:
            parts.append("%s=%.0fus" % (label, v * 1e6))
    if quiet:
        print("%s khn=%d" % (" ".join(parts), cum[-1][1]))
    else:
        print("%s (%d signatures)" % (" ".join(parts), cum[-1][1]))
    return 0


def parse_line(line):
    out = {}
    for tok in line.split():
        k, sep, v = tok.partition("=")
        if sep:
            out[k] = v
    return out


def cmd_field(line, key):
    print(parse_line(line).get(key, ""))
    return 0


ROWS = [
    ("full-ec", "full, P-256"),
    ("full-rsa", "full, RSA-2048"),
    ("resume13", "resume 1.3, P-256"),
    ("resume12", "resume 1.2, P-256"),
    ("resume13-rsa", "resume 1.3, RSA"),
    ("resume12-rsa", "resume 1.2, RSA"),
    ("get", "keep-alive GET"),
    ("post", "keep-alive POST"),
]
HANDSHAKE_ROWS = ["full-ec", "full-rsa", "resume13", "resume12",
                  "resume13-rsa", "resume12-rsa"]
PEERS = ["todod", "nginx", "lab"]


def med(vals):
    return statistics.median(vals) if vals else None


def fmt(v, spec="%.0f"):
    return "n/a" if v is None else spec % v


def ratio(a, b):
    return "n/a" if a is None or b is None or b == 0 else "%.2f" % (a / b)


def summarize(runs):
    """Medians over the rounds of one mode and peer."""
    ok = [r for r in runs if "rps" in r]
    if not ok:
        return None
    s = {"n": len(ok)}
    s["rps"] = med([float(r["rps"]) for r in ok])
    s["p50"] = med([float(r["p50"]) for r in ok])
    s["p99"] = med([float(r["p99"]) for r in ok])
    s["err"] = sum(int(r["err"]) for r in ok)
    s["resumed"] = med([float(r["resumed"]) for r in ok])
    s["reconn"] = sum(int(r["reconn"]) for r in ok)
    cpu = [float(r["srvcpu"]) * 1e6 / int(r["tot"])
           for r in ok if int(r.get("tot", 0)) > 0 and "srvcpu" in r]
    s["cpu"] = med(cpu)
    gen = [float(r["cpu"]) * 1e6 / int(r["req"])
           for r in ok if int(r["req"]) > 0]
    s["gen"] = med(gen)
    for k in ("wmax", "khmax"):
        v = [float(r[k]) for r in ok if k in r]
        s[k] = max(v) if v else None
    return s


def read_raw(raw):
    """Medians per (row, peer), and the keyholder lines per row."""
    runs, kh = {}, {}
    with open(raw) as f:
        for line in f:
            r = parse_line(line)
            if "row" in r and "peer" in r:
                runs.setdefault((r["row"], r["peer"]), []).append(r)
            elif "khrow" in r:
                kh[r["khrow"]] = r
    return {k: summarize(v) for k, v in runs.items()}, kh


def verdict(value, target, higher):
    if value is None:
        return "n/a"
    ok = value >= target if higher else value <= target
    return "met" if ok else "MISSED"


def cmd_targets(raw):
    """One line per target of issue 18: todod against nginx in the same
    rounds, todod's POST against its own GET, the keyholder."""
    res, kh = read_raw(raw)

    def get(row, peer, key):
        s = res.get((row, peer))
        return None if s is None else s.get(key)

    def div(a, b):
        return None if a is None or b is None or b == 0 else a / b

    out = ["Targets (issue 18): todod default configuration against nginx "
           "worker_processes auto, medians of the rounds"]
    hdr = "%-26s %10s %10s %7s %8s  %s" % ("measure", "todod", "nginx",
                                           "ratio", "target", "verdict")
    out.append(hdr)
    out.append("-" * len(hdr))

    def line(label, t, n, r, target, higher, fmtv="%.1f"):
        out.append("%-26s %10s %10s %7s %8s  %s" % (
            label, fmt(t, fmtv), fmt(n, fmtv), fmt(r, "%.2f"),
            ("%s%.2f" % (">=" if higher else "<=", target)),
            verdict(r, target, higher)))

    for row, label in ROWS:
        if row in ("get", "post"):
            continue
        t, n = get(row, "todod", "rps"), get(row, "nginx", "rps")
        line(label + " /s", t, n, div(t, n), 1.0, True)
    t, n = get("get", "todod", "rps"), get("get", "nginx", "rps")
    line("keep-alive GET /s", t, n, div(t, n), 1.0, True)
    for row, label in ROWS:
        if row not in HANDSHAKE_ROWS:
            continue
        t, n = get(row, "todod", "cpu"), get(row, "nginx", "cpu")
        line("CPU us/hs " + label.split(",")[0].replace("resume ", "res ")
             + "," + label.split(",")[1], t, n, div(t, n), 1.0, False,
             "%.0f")
    p, g = get("post", "todod", "rps"), get("get", "todod", "rps")
    out.append("%-26s %10s %10s %7s %8s  %s" % (
        "durable POST / todod GET", fmt(p, "%.1f"), fmt(g, "%.1f") + "*",
        fmt(div(p, g), "%.2f"), ">=0.50", verdict(div(p, g), 0.5, True)))
    for row, label in (("full-ec", "P-256"), ("full-rsa", "RSA-2048")):
        k = kh.get(row, {})
        w, m = get(row, "todod", "wmax"), get(row, "todod", "khmax")
        if k.get("khn", "0") == "0":
            rt = "n/a"
        else:
            rt = "p50 %sus p99 %sus (%s signatures)" % (
                k.get("khp50"), k.get("khp99"), k.get("khn"))
        out.append("keyholder %-16s %s" % (label, rt))
        sat = "n/a" if w is None or m is None else \
            "busiest keyholder %.0f%%, busiest worker %.0f%% of a core: %s" % (
                m, w, "met" if m < w and m < 90 else "MISSED")
        out.append("%-26s %s" % ("", sat))
    out.append("* the nginx column of the POST line is todod's own "
               "keep-alive GET; CPU: all server processes, us per "
               "request; ratio todod/nginx")
    print("\n".join(out))
    return 0


def cmd_table(raw):
    res, _ = read_raw(raw)

    def get(row, peer, key):
        s = res.get((row, peer))
        return None if s is None else s.get(key)

    out = []
    hdr = ("%-17s %9s %9s %8s %7s %7s | %8s %8s %8s" %
           ("mode (c=16)", "todod/s", "nginx/s", "lab/s", "t/ngx", "t/lab",
            "cpu t", "cpu ngx", "cpu lab"))
    out.append("Throughput (median req/s) and server CPU per request (us, "
               "all server processes)")
    out.append(hdr)
    out.append("-" * len(hdr))
    for row, label in ROWS:
        t, n, l = (get(row, p, "rps") for p in PEERS)
        out.append("%-17s %9s %9s %8s %7s %7s | %8s %8s %8s" % (
            label, fmt(t, "%.1f"), fmt(n, "%.1f"), fmt(l, "%.1f"),
            ratio(t, n), ratio(t, l),
            *(fmt(get(row, p, "cpu")) for p in PEERS)))
    out.append("")
    hdr = ("%-17s %15s %15s %15s | %11s | %7s %7s %7s | %s" %
           ("mode", "p50/p99 todod", "p50/p99 nginx", "p50/p99 lab",
            "errors t/n/l", "gen t", "gen ngx", "gen lab", "notes"))
    out.append("Latency (median p50/p99, us), errors (sum over rounds), "
               "generator CPU per request (us)")
    out.append(hdr)
    out.append("-" * len(hdr))
    for row, label in ROWS:
        lat = []
        for p in PEERS:
            a, b = get(row, p, "p50"), get(row, p, "p99")
            lat.append("n/a" if a is None else "%.0f/%.0f" % (a, b))
        errs = "/".join(fmt(get(row, p, "err"), "%d") for p in PEERS)
        notes = []
        if row.startswith("resume"):
            notes.append("resumed " + "/".join(
                fmt(get(row, p, "resumed"), "%.2f") for p in PEERS))
        if row in ("get", "post"):
            notes.append("reconnects " + "/".join(
                fmt(get(row, p, "reconn"), "%d") for p in PEERS))
        out.append("%-17s %15s %15s %15s | %11s | %7s %7s %7s | %s" % (
            label, lat[0], lat[1], lat[2], errs,
            *(fmt(get(row, p, "gen")) for p in PEERS), "; ".join(notes)))
    counts = {}
    for (row, peer), s in res.items():
        if s:
            counts[peer] = max(counts.get(peer, 0), s["n"])
    out.append("")
    out.append("rounds: " + (", ".join("%s %d" % (p, counts[p])
                                       for p in PEERS if p in counts)
                             or "no results"))
    print("\n".join(out))
    return 0


def main(argv):
    cmds = {
        "waitport": (cmd_waitport, 3),
        "busy": (lambda p: 0 if listening(int(p)) else 1, 1),
        "tree": (lambda p: print(*descendants(int(p))) or 0, 1),
        "cpu": (lambda p: print("%.2f" % (tree_ticks(int(p)) / TCK)) or 0,
                1),
        "procs": (cmd_procs, 1),
        "pcpu": (cmd_pcpu, 3),
        "mem": (cmd_mem, 1),
        "busiest": (cmd_busiest, 3),
        "hist": (cmd_hist, 3),
        "targets": (cmd_targets, 1),
        "table": (cmd_table, 1),
        "field": (cmd_field, 2),
    }
    nargs = len(argv) - 2
    if argv[1:2] == ["hist"] and nargs == 4 and argv[5] == "-q":
        return cmd_hist(*argv[2:])
    if len(argv) < 2 or argv[1] not in cmds or nargs != cmds[argv[1]][1]:
        sys.stderr.write(__doc__)
        return 2
    return cmds[argv[1]][0](*argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
