#!/usr/bin/env python3
"""The running daemon's children are confined: checked from outside,
through /proc, on every worker and keyholder.

As root: the daemon drops its children to _todod in /var/empty; only the
parent stays root; every child has the user's ids and group, no
capabilities, no_new_privs, a seccomp filter, the chroot as root and cwd,
no core dumps and no new processes, and is not dumpable (its /proc files
belong to root, and its own user cannot read its environment).  The same
holds after a reload and for children restarted after SIGKILL, and real
requests work throughout.  Then the daemon is run as nobody: no chroot
and no uid change, but no_new_privs and seccomp all the same.

As a normal user only the second part runs, as that user.  In the
sanitizer build (TODOD_ASAN=1) TODOD_SANDBOX_DISABLE=1 is set by todtest:
then no filter and no chroot are expected, everything else is.

    python3 regress/integ/test_sandbox.py --build build
"""

import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import todtest as T  # noqa: E402

CHROOT = "/var/empty"


def status(pid):
    try:
        return T.proc_status(pid)
    except OSError:
        return {}


def limits(pid):
    out = {}
    try:
        with open("/proc/%d/limits" % pid) as f:
            for line in f.readlines()[1:]:
                soft, hard = line[26:].split()[:2]
                out[line[:26].strip()] = (soft, hard)
    except OSError:
        pass
    return out


def link(pid, what):
    try:
        return os.readlink("/proc/%d/%s" % (pid, what))
    except OSError as e:
        return "(%s)" % e.strerror


def ids_are(line, value):
    parts = (line or "").split()
    return len(parts) == 4 and all(p == str(value) for p in parts)


def readable_by(uid, gid, path):
    """Can uid:gid open path?  Tried in a child that drops to them."""
    pid = os.fork()
    if pid == 0:
        code = 2
        try:
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
            with open(path, "rb") as f:
                f.read(1)
            code = 0
        except PermissionError:
            code = 1
        except OSError:
            code = 3
        os._exit(code)
    _, st = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(st)


def check_child(d, pid, role, uid, gid, chrooted, filtered, what):
    """Every property of one confined child; returns False on a failure."""
    st = status(pid)
    good = True
    name = "%s %d (%s)" % (role, pid, what)
    good &= T.ok(ids_are(st.get("Uid"), uid) and ids_are(st.get("Gid"), gid),
                 "%s: Uid %s, Gid %s" % (name, st.get("Uid"), st.get("Gid")))
    groups = st.get("Groups", "").split()
    good &= T.ok(groups in ([], [str(gid)]),
                 "%s: Groups %r" % (name, st.get("Groups")))
    caps = {k: st.get(k) for k in ("CapInh", "CapPrm", "CapEff")}
    good &= T.ok(all(v is not None and int(v, 16) == 0
                     for v in caps.values()),
                 "%s: no capabilities %s" % (name, caps))
    want_sc = "2" if filtered else "0"
    good &= T.ok(st.get("NoNewPrivs") == "1" and
                 st.get("Seccomp") == want_sc,
                 "%s: NoNewPrivs %s, Seccomp %s (want 1, %s)" %
                 (name, st.get("NoNewPrivs"), st.get("Seccomp"), want_sc))
    root, cwd = link(pid, "root"), link(pid, "cwd")
    if chrooted:
        good &= T.ok(root == CHROOT and cwd == CHROOT,
                     "%s: root and cwd are %s (%s, %s)" %
                     (name, CHROOT, root, cwd))
    else:
        good &= T.ok(root == "/", "%s: not chrooted (root %s)" %
                     (name, root))
    lim = limits(pid)
    nofile = lim.get("Max open files", ("?", "?"))
    # The relaxed (sanitizer) build lets LSan start its tracer task.
    nproc_ok = lim.get("Max processes") == ("0", "0") or not filtered
    good &= T.ok(nproc_ok and
                 lim.get("Max core file size") == ("0", "0") and
                 nofile[0] == nofile[1] and nofile[0].isdigit(),
                 "%s: rlimits nproc %s, core %s, nofile %s" %
                 (name, lim.get("Max processes"),
                  lim.get("Max core file size"), nofile))
    return good


def check_not_dumpable(pid, role, uid, gid, what):
    """A non-dumpable process's /proc files belong to root, and its own
    user can neither read its environment nor attach to it."""
    try:
        owner = os.stat("/proc/%d/environ" % pid).st_uid
    except OSError:
        owner = None
    T.ok(owner == 0, "%s %d (%s): not dumpable, /proc/PID owned by uid %s"
         % (role, pid, what, owner))
    if T.is_root():
        r = readable_by(uid, gid, "/proc/%d/environ" % pid)
        T.ok(r == 1, "%s %d (%s): uid %d may not read its environ "
             "(result %d)" % (role, pid, what, uid, r))


def check_all(d, uid, gid, chrooted, filtered, what, dumpable_worker):
    workers, khs = d.workers(), d.keyholders()
    T.ok(len(workers) >= 1 and len(khs) >= 1,
         "%s: %d workers, %d keyholders" % (what, len(workers), len(khs)))
    for pid in workers:
        check_child(d, pid, "worker", uid, gid, chrooted, filtered, what)
        if not dumpable_worker:
            check_not_dumpable(pid, "worker", uid, gid, what)
    for pid in khs:
        check_child(d, pid, "keyholder", uid, gid, chrooted, filtered, what)
        check_not_dumpable(pid, "keyholder", uid, gid, what)
    return workers, khs


def requests(d, what):
    st, h, body = d.request("POST", "/todo", {"task": "sandboxed"})
    tid = body.get("todo", {}).get("id") if isinstance(body, dict) else None
    T.ok(st == 201 and tid, "%s: POST /todo 201" % what)
    r = d.curl(d.url())
    T.ok(r.returncode == 0 and b'"todos"' in r.stdout,
         "%s: curl GET /todo: %s" % (what, r.stdout[:60]))
    r = d.curl("--tlsv1.2", "--tls-max", "1.2", d.url("/todo/%s" % tid))
    T.ok(r.returncode == 0 and b'"sandboxed"' in r.stdout,
         "%s: curl over TLS 1.2 GET /todo/%s" % (what, tid))
    r = d.curl("-X", "DELETE", d.url("/todo/%s" % tid))
    T.ok(r.returncode == 0 and b"deleted" in r.stdout,
         "%s: curl DELETE /todo/%s" % (what, tid))
    c = d.conn()
    codes = []
    for _ in range(20):
        c.request("GET", "/todo")
        resp = c.getresponse()
        resp.read()
        codes.append(resp.status)
    c.close()
    T.ok(codes == [200] * 20, "%s: 20 requests on one keep-alive "
         "connection" % what)


def no_sigsys(d, what):
    bad = [l for l in d.log().splitlines()
           if "signal 31" in l or "forbidden system call" in l]
    T.ok(not bad, "%s: no child died of SIGSYS %s" % (what, bad[:3]))


def test_root(build, filtered):
    """As root: children as _todod, chrooted."""
    T.ensure_user()
    pw = pwd.getpwnam("_todod")
    uid, gid = pw.pw_uid, pw.pw_gid
    chrooted = filtered        # the relaxed build skips both
    d = T.Todod(build, prefork=2)
    try:
        d.start()
        pst = status(d.proc.pid)
        T.ok(ids_are(pst.get("Uid"), 0), "the parent is root (Uid %s)" %
             pst.get("Uid"))
        others = [p for p in d.children()
                  if status(p).get("Uid", "").split()[:1] == ["0"]]
        T.ok(not others, "only the parent is root (root children: %s)" %
             others)
        workers, khs = check_all(d, uid, gid, chrooted, filtered,
                                 "start", False)
        requests(d, "as _todod")

        d.reload()
        T.ok(d.wait_log(r"configuration reloaded", 10) and
             "reload failed" not in d.log(),
             "reload: configuration reloaded")
        requests(d, "after reload")
        check_all(d, uid, gid, chrooted, filtered, "after reload", False)

        os.kill(khs[0], signal.SIGKILL)
        os.kill(workers[0], signal.SIGKILL)
        T.ok(T.wait_until(lambda: khs[0] not in d.keyholders() and
                          len(d.keyholders()) == len(khs) and
                          workers[0] not in d.workers() and
                          len(d.workers()) == len(workers), 15),
             "a killed worker and keyholder are replaced")
        requests(d, "after restarts")
        check_all(d, uid, gid, chrooted, filtered, "restarted", False)
        no_sigsys(d, "as _todod")
        rc = d.stop()
        T.ok(rc == 0, "graceful shutdown, exit status %s" % rc)
    finally:
        d.cleanup()


def test_user(build, user, filtered):
    """Not root (as nobody when we are root): sandboxed, not dropped."""
    pw = pwd.getpwnam(user) if user else pwd.getpwuid(os.getuid())
    tmp = tempfile.mkdtemp(prefix="todod-sbx-")
    try:
        os.chmod(tmp, 0o755)
        bdir = os.path.join(tmp, "bin")
        os.mkdir(bdir)
        for prog in ("todod", "todod-keyholder"):
            shutil.copy(os.path.join(T.TOP, build, prog), bdir)
        os.mkdir(os.path.join(tmp, "run"))
        d = T.Todod(build, prefork=2, workdir=os.path.join(tmp, "run"))
        d.build = bdir
        pki = os.path.join(tmp, "pki")
        shutil.copytree(d.pki, pki)
        d.pki = pki
        d.write_conf()
        if user:
            for root, dirs, files in os.walk(tmp):
                for n in dirs + files:
                    os.chown(os.path.join(root, n), pw.pw_uid, pw.pw_gid)
            os.chown(tmp, pw.pw_uid, pw.pw_gid)
            real_popen = subprocess.Popen

            def popen(cmd, *a, **kw):
                if cmd and cmd[0] == os.path.join(bdir, "todod"):
                    cmd = ["setpriv", "--reuid", str(pw.pw_uid), "--regid",
                           str(pw.pw_gid), "--clear-groups", "--"] + cmd
                return real_popen(cmd, *a, **kw)
            subprocess.Popen = popen
            try:
                d.start()
            finally:
                subprocess.Popen = real_popen
        else:
            d.start()
        what = "as %s" % pw.pw_name
        try:
            pst = status(d.proc.pid)
            T.ok(ids_are(pst.get("Uid"), pw.pw_uid),
                 "%s: the parent runs as uid %d" % (what, pw.pw_uid))
            workers, _ = check_all(d, pw.pw_uid, pw.pw_gid, False,
                                   filtered, what, True)
            if T.is_root() and workers:
                # The control for the not-dumpable checks: a worker that
                # never changed uid stays dumpable, readable by its user.
                r = readable_by(pw.pw_uid, pw.pw_gid,
                                "/proc/%d/environ" % workers[0])
                T.ok(r == 0, "%s: a worker's environ is readable by its "
                     "own user (result %d)" % (what, r))
            requests(d, what)
            n = d.log().count("running as uid %d" % pw.pw_uid)
            T.ok(n == 1, "%s: the log says once that children are not "
                 "dropped (%d times)" % (what, n))
            no_sigsys(d, what)
            rc = d.stop()
            T.ok(rc == 0, "%s: graceful shutdown, exit status %s" %
                 (what, rc))
        finally:
            d.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    a = T.args()
    build = a.build
    if not os.access(os.path.join(T.TOP, build, "todod"), os.X_OK):
        T.ok(False, "%s/todod is built" % build)
        T.done()
    filtered = not T.asan()
    if T.is_root():
        test_root(build, filtered)
        if shutil.which("setpriv"):
            test_user(build, "nobody", filtered)
        else:
            T.ok(True, "as nobody # SKIP no setpriv")
    else:
        test_user(build, None, filtered)
    T.done()


if __name__ == "__main__":
    main()
