#!/usr/bin/env python3
"""Every sandbox-probe action for both roles: what a role needs works, what
it must not do kills it with SIGSYS (or, for the few calls denied with an
errno, fails cleanly).  As root also the privilege drop (_todod, chroot
/var/empty), and the normal-user path as nobody.

    python3 regress/integ/test_sandbox_probe.py --build build
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import todtest as T  # noqa: E402

# What each role must be able to do.
NEEDED_BOTH = {"pair-io", "fdpass", "poll", "memory", "random", "clock",
               "log", "keys", "status", "fstat"}
NEEDED_WORKER = {"event", "epoll", "accept", "nameinfo-scope",
                 "shm", "tls13-ec", "tls12-ec", "tls13-rsa", "tls12-rsa"}
# Worker-only needs that the keyholder's filter must refuse.
REFUSED_KEYHOLDER = {"event", "epoll", "accept", "shm"}
# Forbidden for both (send-recv: send(2) and recv(2) are sendto and
# recvfrom, which neither role uses).
FORBIDDEN = {"send-recv", "open", "open-raw", "execve", "socket",
             "socket-unix", "socketpair", "connect", "bind", "listen", "getsockname",
             "fork", "thread", "ptrace", "kill", "setuid", "chroot",
             "mount", "unshare", "prctl", "mmap-exec", "mprotect-exec",
             "fcntl-dupfd", "dup", "ioctl-tiocsti", "memfd", "x32",
             "stat-path", "fstatat-path", "fstat-libc"}
# Denied with an errno instead of a kill (see common/sandbox.c): newfstatat,
# whose path a filter cannot see, fails with EACCES whatever its flags, so
# stat() of a path fails in both roles (fstat is its own system call).
ERRNO = {(role, action): "EACCES" for role in ("worker", "keyholder")
         for action in ("stat-path", "fstatat-path", "fstat-libc")}


def expect(role, action):
    """"ok", "kill", "errno:E", or None when it means nothing here."""
    if (role, action) in ERRNO:
        return "errno:" + ERRNO[(role, action)]
    if action in FORBIDDEN:
        return "kill"
    if action in NEEDED_BOTH:
        return "ok"
    if role == "worker" and action in NEEDED_WORKER:
        return "ok"
    if role == "keyholder" and action in REFUSED_KEYHOLDER:
        return "kill"
    return None     # TLS serving in the keyholder: not a keyholder thing


def outcome(rc, out):
    if rc == -signal.SIGSYS:
        return "kill"
    if rc == 0:
        return "ok"
    if rc == 3:
        for line in out.splitlines():
            if line.startswith("denied: "):
                return "errno:" + line[8:].strip()
    if rc < 0:
        return "signal %d" % -rc
    return "exit %d" % rc


def describe(o):
    if o == "kill":
        return "killed by SIGSYS"
    if o == "ok":
        return "allowed"
    if o.startswith("errno:"):
        return "denied with " + o[6:]
    return o


class Probe:
    def __init__(self, path):
        self.path = path

    def run(self, role, action, opts=(), env=None, user=None,
            stderr=subprocess.PIPE, timeout=60):
        cmd = [self.path] + list(opts) + [role, action]
        if user is not None:
            cmd = as_user(user) + cmd
        e = dict(os.environ)
        e.pop("TODOD_SANDBOX_DISABLE", None)
        if env:
            e.update(env)
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=stderr, env=e,
                           timeout=timeout)
        err = p.stderr.decode("utf-8", "replace") if p.stderr else ""
        return p.returncode, p.stdout.decode("utf-8", "replace"), err

    def hold(self, role, opts=(), env=None, user=None):
        """Start the status action and read its status block; the process
        then waits for stdin to close so that /proc can be inspected."""
        cmd = [self.path] + list(opts) + [role, "status"]
        if user is not None:
            cmd = as_user(user) + cmd
        e = dict(os.environ)
        e.pop("TODOD_SANDBOX_DISABLE", None)
        if env:
            e.update(env)
        p = subprocess.Popen(cmd, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=e)
        status = {}
        for _ in range(200):
            line = p.stdout.readline().decode("utf-8", "replace")
            if not line or line == "END\n":
                break
            k, _, v = line.partition(":")
            status[k] = v.strip()
        return p, status

    @staticmethod
    def release(p):
        p.stdin.close()
        try:
            rc = p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            rc = p.wait(10)
        p.stdout.close()
        p.stderr.close()
        return rc


def as_user(user):
    import pwd
    pw = pwd.getpwnam(user)
    return ["setpriv", "--reuid", str(pw.pw_uid), "--regid",
            str(pw.pw_gid), "--clear-groups", "--"]


def all_same(field, value):
    """A /proc status line like "Uid: 999 999 999 999"."""
    parts = field.split()
    return len(parts) == 4 and all(x == str(value) for x in parts)


def limits(pid):
    out = {}
    with open("/proc/%d/limits" % pid) as f:
        for line in f.readlines()[1:]:
            name = line[:26].strip()
            soft, hard = line[26:].split()[:2]
            out[name] = (soft, hard)
    return out


def test_matrix(probe, actions, sanitizer):
    for role in ("worker", "keyholder"):
        for action in actions:
            want = expect(role, action)
            if want is None:
                continue
            env = None
            if sanitizer:
                # The sanitizer build honours TODOD_SANDBOX_DISABLE: run the
                # needed actions without the filter (ASan/LSan need calls
                # of their own), the forbidden ones with it, leak checking
                # off because LSan's exit-time scan needs clone and ptrace.
                env = {"ASAN_OPTIONS": "detect_leaks=0"}
                if want == "ok":
                    env["TODOD_SANDBOX_DISABLE"] = "1"
            rc, out, err = probe.run(role, action, env=env)
            got = outcome(rc, out)
            T.ok(got == want, "%s: %s %s" % (role, action, describe(want)) +
                 ("" if got == want else " (got %s; %s)" %
                  (describe(got), (err.strip().splitlines() or [""])[-1])))


def test_stderr_file(probe):
    """dprintf to a regular file probes it with lseek: that must work."""
    with tempfile.TemporaryFile() as f:
        rc, _, _ = probe.run("keyholder", "log", stderr=f)
        f.seek(0)
        text = f.read().decode()
    T.ok(rc == 0 and "probe log line 2" in text,
         "keyholder: logging to stderr in a regular file works")


def test_disable_ignored(probe):
    rc, out, err = probe.run("worker", "execve",
                             env={"TODOD_SANDBOX_DISABLE": "1"})
    T.ok(rc == -signal.SIGSYS and "TODOD_SANDBOX_DISABLE ignored" in err,
         "TODOD_SANDBOX_DISABLE=1 is ignored outside sanitizer builds")


def test_disable_honoured(probe):
    p, st = probe.hold("worker", env={"TODOD_SANDBOX_DISABLE": "1",
                                      "ASAN_OPTIONS": "detect_leaks=0"})
    Probe.release(p)
    T.ok(st.get("Seccomp") == "0" and st.get("NoNewPrivs") == "1",
         "sanitizer build: TODOD_SANDBOX_DISABLE=1 skips the filter but "
         "keeps no_new_privs")


def test_debug_build(build):
    """The TRAP build names the forbidden call, then dies of SIGSYS."""
    pkgs = ["libtls", "libbsd-overlay", "yajl", "sqlite3", "libevent",
            "libseccomp", "libssl", "libcrypto"]
    cc = os.environ.get("CC", "cc")
    if not shutil.which(cc) or not shutil.which("pkg-config"):
        T.ok(True, "debug build # SKIP no compiler")
        return
    pc = subprocess.run(["pkg-config", "--cflags", "--libs"] + pkgs,
                        capture_output=True, text=True)
    tmp = tempfile.mkdtemp(prefix="todod-probe-dbg-")
    try:
        exe = os.path.join(tmp, "sandbox-probe-debug")
        cmd = [cc, "-O1", "-D_GNU_SOURCE", "-DTODOD_SANDBOX_DEBUG",
               "-I" + os.path.join(T.TOP, "common"),
               "-I" + os.path.join(T.TOP, "daemon"), "-o", exe,
               os.path.join(T.TOP, "regress", "tools", "sandbox-probe.c"),
               os.path.join(T.TOP, "common", "sandbox.c"),
               os.path.join(build, "libtodod.a"),
               os.path.join(build, "libcommon.a")] + pc.stdout.split() + \
            ["-ldl"]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if not T.ok(pc.returncode == 0 and r.returncode == 0,
                    "debug build of the probe compiles"):
            print("# " + r.stderr.replace("\n", "\n# ")[-2000:])
            return
        dbg = Probe(exe)
        for role, action, name in (("worker", "execve", "execve"),
                                   ("keyholder", "accept", "accept4"),
                                   ("worker", "prctl", "prctl")):
            rc, out, err = dbg.run(role, action)
            T.ok(rc == -signal.SIGSYS and
                 "forbidden system call %s (" % name in err,
                 "debug build, %s: %s is named and kills (%s)" %
                 (role, name, err.strip().splitlines()[-1:]))
        rc, out, err = dbg.run("worker", "tls13-rsa")
        T.ok(rc == 0 and "forbidden" not in err,
             "debug build, worker: a TLS handshake traps nothing")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_status_here(probe):
    for role in ("worker", "keyholder"):
        p, st = probe.hold(role)
        rc = Probe.release(p)
        T.ok(rc == 0 and st.get("NoNewPrivs") == "1" and
             st.get("Seccomp") == "2" and st.get("Seccomp_filters") == "1",
             "%s: no_new_privs and one seccomp filter (Seccomp %s)" %
             (role, st.get("Seccomp")))


def test_root_drop(probe, actions):
    """As root: -u _todod -r /var/empty, checked from outside via /proc."""
    T.ensure_user()
    import pwd
    pw = pwd.getpwnam("_todod")
    uid, gid = pw.pw_uid, pw.pw_gid
    if not os.path.isdir("/var/empty"):
        os.mkdir("/var/empty", 0o755)
    opts = ["-u", "%d:%d" % (uid, gid), "-r", "/var/empty"]
    for role in ("worker", "keyholder"):
        p, st = probe.hold(role, opts)
        pid = p.pid
        try:
            root = os.readlink("/proc/%d/root" % pid)
            cwd = os.readlink("/proc/%d/cwd" % pid)
            lim = limits(pid)
            owner = os.stat("/proc/%d/status" % pid).st_uid
        except OSError as e:
            root = cwd = str(e)
            lim = {}
            owner = None
        rc = Probe.release(p)
        T.ok(rc == 0, "%s as _todod: the probe ran and exited 0" % role)
        T.ok(all_same(st.get("Uid", ""), uid) and
             all_same(st.get("Gid", ""), gid),
             "%s as _todod: Uid %s, Gid %s" % (role, st.get("Uid"),
                                               st.get("Gid")))
        T.ok(st.get("Groups", "").split() in ([str(gid)], []),
             "%s as _todod: Groups %r" % (role, st.get("Groups")))
        caps = [st.get(k) for k in ("CapInh", "CapPrm", "CapEff",
                                    "CapBnd", "CapAmb")]
        T.ok(all(c is not None and int(c, 16) == 0 for c in caps),
             "%s as _todod: every capability set is empty %s" % (role, caps))
        T.ok(st.get("NoNewPrivs") == "1" and st.get("Seccomp") == "2",
             "%s as _todod: NoNewPrivs 1, Seccomp 2" % role)
        T.ok(root == "/var/empty" and cwd == "/var/empty",
             "%s as _todod: root and cwd are /var/empty (%s, %s)" %
             (role, root, cwd))
        T.ok(lim.get("Max processes") == ("0", "0") and
             lim.get("Max core file size") == ("0", "0") and
             lim.get("Max open files") == ("64", "64"),
             "%s as _todod: rlimits nproc 0, core 0, nofile 64 (%s)" %
             (role, {k: lim.get(k) for k in ("Max processes",
                                             "Max core file size",
                                             "Max open files")}))
        # A non-dumpable process's /proc files belong to root, whatever
        # its uid: the check that ptrace and core dumps are shut.
        T.ok(owner == 0, "%s as _todod: not dumpable (/proc/PID owned by "
             "uid %s)" % (role, owner))
    for role in ("worker", "keyholder"):
        for action in actions:
            want = expect(role, action)
            if want is None or action == "status":
                continue
            rc, out, err = probe.run(role, action, opts)
            got = outcome(rc, out)
            T.ok(got == want, "%s as _todod in /var/empty: %s %s" %
                 (role, action, describe(want)) +
                 ("" if got == want else " (got %s; %s)" %
                  (describe(got), (err.strip().splitlines() or [""])[-1])))
    rc, _, err = probe.run("worker", "pair-io", ["-u", "0:0", "-r",
                                                  "/var/empty"])
    T.ok(rc == 1 and "refusing to run as uid 0" in err,
         "privdrop_child refuses uid 0")
    rc, _, err = probe.run("worker", "pair-io",
                           ["-u", "%d:%d" % (uid, gid), "-r",
                            "/nonexistent/todod-chroot"])
    T.ok(rc == 1 and "chroot /nonexistent/todod-chroot" in err,
         "privdrop_child: a missing chroot directory is fatal")


def test_normal_user(probe, user):
    """Not root: no chroot, no uid change, but rlimits and the filter."""
    opts = ["-v", "-u", "1:1"]
    for role in ("worker", "keyholder"):
        p, st = probe.hold(role, opts, user=user)
        pid = p.pid
        try:
            lim = limits(pid)
            owner = os.stat("/proc/%d/status" % pid).st_uid
            root = os.readlink("/proc/%d/root" % pid)
        except OSError as e:
            lim, owner, root = {}, None, str(e)
        rc = Probe.release(p)
        import pwd
        want = os.getuid() if user is None else pwd.getpwnam(user).pw_uid
        T.ok(rc == 0 and all_same(st.get("Uid", ""), want) and
             root == "/",
             "%s as uid %d: ran, uid unchanged, not chrooted (%s)" %
             (role, want, root))
        T.ok(st.get("NoNewPrivs") == "1" and st.get("Seccomp") == "2" and
             int(st.get("CapEff", "1"), 16) == 0,
             "%s as uid %d: NoNewPrivs 1, Seccomp 2, no capabilities" %
             (role, want))
        T.ok(lim.get("Max processes") == ("0", "0") and
             lim.get("Max core file size") == ("0", "0"),
             "%s as uid %d: rlimits nproc 0 and core 0" % (role, want))
        # The keyholder makes itself non-dumpable; the worker, never
        # having changed uid, stays dumpable (its /proc is its own).
        T.ok(owner == (0 if role == "keyholder" else want),
             "%s as uid %d: /proc/PID owned by uid %s" % (role, want,
                                                          owner))
    rc, _, err = probe.run("worker", "pair-io", opts, user=user)
    T.ok(rc == 0 and "running as uid" in err and
         "no chroot and no privilege drop" in err,
         "as uid %s: privdrop_child says it does not drop" % want)
    for role, action in (("worker", "execve"), ("worker", "fork"),
                         ("worker", "tls13-ec"), ("worker", "accept"),
                         ("keyholder", "keys"), ("keyholder", "open"),
                         ("keyholder", "socket")):
        rc, out, err = probe.run(role, action, opts, user=user)
        want = expect(role, action)
        got = outcome(rc, out)
        T.ok(got == want, "%s as uid %s: %s %s" % (role, user or "self",
                                                   action, describe(want)) +
             ("" if got == want else " (got %s)" % describe(got)))


def main():
    a = T.args()
    build = os.path.join(T.TOP, a.build)
    path = os.path.join(build, "regress", "sandbox-probe")
    if not os.access(path, os.X_OK):
        T.ok(False, "%s is built" % path)
        T.done()
    sanitizer = T.asan()
    tmp = None
    if T.is_root():
        # A copy that any user can run, whatever the tree's permissions.
        tmp = tempfile.mkdtemp(prefix="todod-probe-")
        os.chmod(tmp, 0o755)
        shutil.copy(path, os.path.join(tmp, "sandbox-probe"))
        os.chmod(os.path.join(tmp, "sandbox-probe"), 0o755)
        path = os.path.join(tmp, "sandbox-probe")
    probe = Probe(path)
    try:
        listed = subprocess.run([path, "-l"], capture_output=True,
                                text=True).stdout.split()
        table = NEEDED_BOTH | NEEDED_WORKER | FORBIDDEN
        T.ok(listed and set(listed) == table,
             "every probe action has an expectation here (%s)" %
             sorted(set(listed) ^ table))
        test_matrix(probe, listed, sanitizer)
        if sanitizer:
            test_disable_honoured(probe)
        else:
            test_stderr_file(probe)
            test_disable_ignored(probe)
            test_status_here(probe)
            test_debug_build(build)
            if T.is_root():
                test_root_drop(probe, listed)
                if shutil.which("setpriv"):
                    test_normal_user(probe, "nobody")
                else:
                    T.ok(True, "normal-user path # SKIP no setpriv")
            else:
                test_normal_user(probe, None)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    T.done()


if __name__ == "__main__":
    main()
