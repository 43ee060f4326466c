#!/usr/bin/env python3
"""An fsync-heavy workload for the power-cut tests, and the check of what must have survived a cut.

  crashload.py init DIR                  make the work directories (DIR/d0..d3) durable
  crashload.py run DIR STATE LOG SEED    files created, replaced by rename, appended, renamed and deleted, each
                                         step made durable with fsync (file, then directory), until killed; and
                                         scratch files written without fsync (nothing promised about them)
  crashload.py serve DIR STATE LOG       the same from commands on stdin, one answer line each, in one process
                                         for all cycles (under TCG starting Python costs about a second):
                                           run SEED DELAY_MS  start the workload in a child; answer once it has
                                                              completed an operation and DELAY_MS more passed
                                           kill               SIGKILL the child; answer with its operation count
                                           verify             as the verify command; answer "= STATUS SUMMARY"
  crashload.py verify DIR STATE LOG      after a cut: every file of STATE changed by an operation that completed
                                         (its last fsync returned, LOG says so) is as that operation left it; the
                                         one operation in flight may have landed or not. Rewrites STATE as found
                                         and empties LOG. Exit status 1 if anything durable is missing or wrong.

STATE is the manifest, JSON {"seq": N, "files": {path: [sha256, size]}}: every file whose last fsync returned.
LOG (a file outside the file system under test) gets "B" before an operation starts and "D" after its last fsync
returned, one JSON line each, written unbuffered so that a SIGKILL of this process loses nothing of it.
"""
import hashlib
import json
import os
import random
import signal
import sys
import time

DIRS = [f"d{i}" for i in range(4)]
# Many small files, a few larger ones; odd sizes so that partial blocks are written too.
SIZES = [4096, 9000, 32768, 100_000, 262_144, 1 << 20]
WEIGHTS = [6, 5, 4, 2, 2, 1]
APPEND_SIZES = [512, 4096, 20_000]


def sha(data):
    return hashlib.sha256(data).hexdigest()


def fsync_path(path, flags=os.O_RDONLY):
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_state(path):
    if not os.path.exists(path):
        return {"seq": 0, "files": {}}
    with open(path) as f:
        return json.load(f)


def save_state(path, state):
    with open(path + ".new", "w") as f:
        json.dump(state, f)
    os.replace(path + ".new", path)


class Log:
    def __init__(self, path):
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.n = 0

    def begin(self, **op):
        self.n += 1
        op["B"] = self.n
        os.write(self.fd, (json.dumps(op) + "\n").encode())

    def done(self):
        os.write(self.fd, (json.dumps({"D": self.n}) + "\n").encode())


def write_new(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def run(root, state_path, log_path, seed):
    state = load_state(state_path)
    files = state["files"]
    rng = random.Random(seed)
    log = Log(log_path)
    seq = state["seq"]

    def new_name():
        nonlocal seq
        seq += 1
        return f"{rng.choice(DIRS)}/f{seed}-{seq:05d}"

    scratch = []
    while True:
        count = len(files)
        ops = ["create", "replace", "append", "rename", "delete", "scratch"]
        weights = [60, 0, 0, 0, 0, 0] if count < 10 else [25, 15, 25, 15, 20 if count < 120 else 60, 30]
        op = rng.choices(ops, weights)[0]
        if op == "scratch":
            # Written and never fsynced: nothing is promised about it, but the writeback of such files keeps
            # unflushed data on the device, which a cut then drops (or tears) under the fsynced files' feet.
            if len(scratch) < 8:
                scratch.append(f"{rng.choice(DIRS)}/s{seed}-{len(scratch)}")
            with open(os.path.join(root, rng.choice(scratch)), "wb") as f:
                f.write(rng.randbytes(rng.choice([65536, 200_000, 262_144])))
            continue
        if op == "create":
            name = new_name()
            data = rng.randbytes(rng.choices(SIZES, WEIGHTS)[0] + rng.randrange(0, 512))
            log.begin(op=op, path=name, sha=sha(data), size=len(data))
            write_new(os.path.join(root, name), data)
            fsync_path(os.path.dirname(os.path.join(root, name)))
            files[name] = [sha(data), len(data)]
        elif op == "replace":
            # The atomic replace of editors and stores: a new file, fsync, rename over the old name, fsync the dir.
            name = rng.choice(sorted(files))
            tmp = f"{os.path.dirname(name)}/t{seed}-{seq}"
            seq += 1
            data = rng.randbytes(rng.choices(SIZES, WEIGHTS)[0])
            log.begin(op=op, path=name, tmp=tmp, sha=sha(data), size=len(data), old=files[name])
            write_new(os.path.join(root, tmp), data)
            os.rename(os.path.join(root, tmp), os.path.join(root, name))
            fsync_path(os.path.dirname(os.path.join(root, name)))
            files[name] = [sha(data), len(data)]
        elif op == "append":
            # A log's append: write at the end, fsync the file.
            name = rng.choice(sorted(files))
            path = os.path.join(root, name)
            extra = rng.randbytes(rng.choice(APPEND_SIZES))
            with open(path, "rb") as f:
                whole = f.read()
            log.begin(op=op, path=name, sha=sha(whole + extra), size=len(whole) + len(extra), old=files[name])
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
            try:
                os.write(fd, extra)
                os.fsync(fd)
            finally:
                os.close(fd)
            files[name] = [sha(whole + extra), len(whole) + len(extra)]
        elif op == "rename":
            name = rng.choice(sorted(files))
            to = new_name()
            log.begin(op=op, path=name, to=to, old=files[name])
            os.rename(os.path.join(root, name), os.path.join(root, to))
            fsync_path(os.path.dirname(os.path.join(root, to)))
            if os.path.dirname(to) != os.path.dirname(name):
                fsync_path(os.path.dirname(os.path.join(root, name)))
            files[to] = files.pop(name)
        else:
            name = rng.choice(sorted(files))
            log.begin(op=op, path=name, old=files[name])
            os.unlink(os.path.join(root, name))
            fsync_path(os.path.dirname(os.path.join(root, name)))
            del files[name]
        log.done()


def found(root, name):
    """(sha256, size, data) of a file, None if it does not exist; a file that cannot be read (EIO: a checksum
    error) counts as present with a content no operation wrote."""
    try:
        with open(os.path.join(root, name), "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    except OSError as e:
        return f"unreadable ({e.strerror})", -1, b""
    return sha(data), len(data), data


def verify(root, state_path, log_path):
    state = load_state(state_path)
    files = state["files"]
    ops, done = [], set()
    if os.path.exists(log_path):
        with open(log_path) as f:
            for line in f:
                if not line.endswith("\n"):
                    break  # a line cut by the kill: its operation had not started
                rec = json.loads(line)
                if "D" in rec:
                    done.add(rec["D"])
                else:
                    ops.append(rec)
    pending = [op for op in ops if op["B"] not in done]
    completed = [op for op in ops if op["B"] in done]
    # The expected state: the manifest with every completed operation applied.
    for op in completed:
        if op["op"] in ("create", "replace", "append"):
            files[op["path"]] = [op["sha"], op["size"]]
        elif op["op"] == "rename":
            files[op["to"]] = files.pop(op["path"])
        else:
            files.pop(op["path"], None)
    bad = []
    touched = set()
    for op in pending:  # at most one: the workload runs one operation at a time
        name = op["path"]
        now = found(root, name)
        touched.add(name)
        if op["op"] == "create":
            ok = True  # not promised yet: absent, empty, partial or whole
        elif op["op"] == "replace":
            ok = now is not None and [now[0], now[1]] in (op["old"], [op["sha"], op["size"]])
        elif op["op"] == "append":
            old_sha, old_size = op["old"]
            ok = now is not None and old_size <= now[1] <= op["size"] and sha(now[2][:old_size]) == old_sha
        elif op["op"] == "rename":
            touched.add(op["to"])
            to = found(root, op["to"])
            ok = (now is not None and [now[0], now[1]] == op["old"]) or (to is not None and [to[0], to[1]] == op["old"])
            if to is not None:
                files[op["to"]] = [to[0], to[1]]
        else:
            ok = now is None or [now[0], now[1]] == op["old"]
        if not ok:
            bad.append(f"in-flight {op['op']} of {name}: found {now[:2] if now else 'nothing'}, "
                       f"expected {op.get('old')} or {op.get('sha')}")
        if now is None or now[1] < 0:
            files.pop(name, None)
        else:
            files[name] = [now[0], now[1]]
    checked = 0
    lost = []
    for name, (want_sha, want_size) in sorted(files.items()):
        if name in touched:
            continue
        checked += 1
        now = found(root, name)
        if now is None:
            bad.append(f"{name}: missing (sha256 {want_sha[:16]}.., {want_size} bytes)")
            lost.append(name)
        elif now[1] < 0:
            bad.append(f"{name}: {now[0]}, expected {want_size} bytes, sha256 {want_sha[:16]}..")
            lost.append(name)
        elif now[0] != want_sha:
            bad.append(f"{name}: {now[1]} bytes, sha256 {now[0][:16]}.., expected {want_size} bytes, {want_sha[:16]}..")
            files[name] = [now[0], now[1]]
    # The next cycle starts from what is there, so that each cycle reports only its own losses.
    for name in lost:
        del files[name]
    state["seq"] = max([state["seq"]] + [int(n.rsplit("-", 1)[1]) for n in files if "-" in n])
    in_flight = f"{pending[0]['op']} in flight" if pending else "none in flight"
    summary = (f"{checked} files verified, {len(bad)} wrong; {len(completed)} operations completed since the last "
               f"check, {in_flight}")
    save_state(state_path, state)
    open(log_path, "w").close()
    return (1 if bad else 0), [f"#   {line}" for line in bad[:10]] + [summary]


def completed_ops(log_path):
    with open(log_path) as f:
        return f.read().count('"D"')


def serve(root, state_path, log_path):
    child = None
    for line in sys.stdin:
        words = line.split()
        if words[0] == "run":
            open(log_path, "w").close()
            child = os.fork()
            if child == 0:
                try:
                    run(root, state_path, log_path, int(words[1]))
                finally:
                    os._exit(1)
            while completed_ops(log_path) == 0 and os.waitpid(child, os.WNOHANG) == (0, 0):
                time.sleep(0.02)
            time.sleep(int(words[2]) / 1000)
            answer = "running" if os.waitpid(child, os.WNOHANG) == (0, 0) else "the workload ended"
        elif words[0] == "kill":
            if child:
                os.kill(child, signal.SIGKILL)
                os.waitpid(child, 0)
                child = None
            answer = str(completed_ops(log_path))
        elif words[0] == "verify":
            status, lines = verify(root, state_path, log_path)
            answer = "\n".join(lines[:-1] + [f"= {status} {lines[-1]}"])
        else:
            answer = f"unknown command {words[0]}"
        print(answer, flush=True)
    return 0


def main(argv):
    mode = argv[1] if len(argv) > 1 else ""
    if mode == "init":
        for d in DIRS:
            os.makedirs(os.path.join(argv[2], d), exist_ok=True)
            fsync_path(os.path.join(argv[2], d))
        fsync_path(argv[2])
        return 0
    if mode == "run":
        run(argv[2], argv[3], argv[4], int(argv[5]))
        return 0
    if mode == "serve":
        return serve(argv[2], argv[3], argv[4])
    if mode == "verify":
        status, lines = verify(argv[2], argv[3], argv[4])
        print("\n".join(lines))
        return status
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
