#!/usr/bin/env python3
"""ship_test.py - integration tests of alog-shipper on loopback.

Starts the real binaries (alog-shipper send/receive, ship_tool produce as the
edge log's writer) on 127.0.0.1 with ephemeral ports, stops them by PID, and
after every scenario checks with `ship_tool compare` that the canonical log
holds exactly the edge's records: same offsets, same times, same bytes, no
gap, no duplicate. Every wait is bounded.

Scenarios: plain streaming with edge retention and a GAP stop; kill -9 of
sender and receiver at random moments under load, many rounds; the link cut
(dropped and blackholed connections, and a corrupted byte) through a TCP
relay; a slow disk on the edge host (fsync made slow by an LD_PRELOAD shim);
the receiver's disk budget full, with the sender backing off; TLS with mutual
authentication, and a wrong certificate, a name that does not match the
certificate, and an unknown edge refused. A failed scenario prints the end
of its processes' logs.
"""
import argparse
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import proc_util  # noqa: E402
from proc_util import free_port  # noqa: E402

ARGS = None
TMP = None
FAILS = []
PROCS = []  # the running scenario's processes: stopped, and their logs
            # printed if it failed, when it ends
LOG_TAIL_LINES = 40


def log(msg):
    print(f"[ship_test {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def check(cond, what):
    if cond:
        log(f"ok: {what}")
    else:
        log(f"FAILED: {what}")
        FAILS.append(what)


def wait_for(pred, timeout, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


def metrics_format_errors(text):
    """What breaks the Prometheus text format's grouping rule in text:
    each family's samples together, after at most one TYPE line."""
    errors, seen, current = [], set(), None
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            name = line.split()[2]
            if name in seen:
                errors.append(f"second TYPE line for {name}")
            seen.add(name)
            current = name
        elif line and not line.startswith("#"):
            name = line.split("{", 1)[0].split(" ", 1)[0]
            if name != current:
                if name in seen:
                    errors.append(f"{name}: samples not together")
                seen.add(name)
                current = name
    return errors


def metrics(port):
    """/metrics as {sample: value}; a body that breaks the text format's
    grouping fails the running scenario."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                    timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return {}
    errors = metrics_format_errors(text)
    if errors:
        check(False, f"metrics on port {port} in the text format: "
              f"{'; '.join(errors[:5])}")
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def Proc(name, argv, env=None):
    """A process of the running test, logged under TMP (proc_util.Proc)."""
    return proc_util.Proc(name, argv, TMP, PROCS, env)


def print_log_tails(procs):
    """The last lines of each log of a failed scenario, on stdout (CI keeps
    only that), bounded: LOG_TAIL_LINES lines of at most 300 characters."""
    seen = []
    for p in procs:
        if p.logpath not in seen:
            seen.append(p.logpath)
    for path in seen:
        try:
            with open(path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 64 * 1024))
                lines = f.read().decode(errors="replace").splitlines()
        except OSError as e:
            log(f"cannot read {path}: {e}")
            continue
        lines = lines[-LOG_TAIL_LINES:]
        log(f"--- last {len(lines)} lines of {os.path.basename(path)}")
        for line in lines:
            print(f"    {line[:300]}", flush=True)
    if seen:
        log("--- end of logs")


def write_conf(path, kv):
    with open(path, "w") as f:
        for k, v in kv.items():
            f.write(f"{k} = {v}\n")
    return path


class Setup:
    """One edge log, one receiver data dir, configs for both roles."""

    def __init__(self, name, tls=None, budget=0, extra_recv=None,
                 extra_send=None, edges="e1"):
        self.dir = os.path.join(TMP, name)
        os.makedirs(self.dir)
        self.edge = os.path.join(self.dir, "edge")
        self.data = os.path.join(self.dir, "canon")
        self.rport = free_port()
        self.rmport = free_port()
        self.smport = free_port()
        base = {"heartbeat_ms": 200, "timeout_ms": 2000,
                "handshake_timeout_ms": 2000}
        if tls:
            base["transport"] = "tls"
        else:
            base["transport"] = "plain-loopback-only"
        self.recv = {**base, "listen": f"127.0.0.1:{self.rport}",
                     "data_dir": self.data, "edges": edges,
                     "metrics_listen": f"127.0.0.1:{self.rmport}",
                     "segment_bytes_max": 1 << 20,
                     "disk_budget_bytes": budget}
        self.send = {**base, "receiver": f"localhost:{self.rport}",
                     "edge": "e1", "log_dir": self.edge,
                     "metrics_listen": f"127.0.0.1:{self.smport}",
                     "backoff_min_ms": 20, "backoff_max_ms": 300,
                     "batch_bytes": 64 * 1024}
        if tls:
            self.recv.update(tls["receiver"])
            self.send.update(tls["e1"])
        self.recv.update(extra_recv or {})
        self.send.update(extra_send or {})
        self.n = 0
        self.r = self.s = self.prod = None

    def start_receiver(self, **over):
        conf = write_conf(os.path.join(self.dir, f"r{self.n}.conf"),
                          {**self.recv, **over})
        self.n += 1
        self.r = Proc(f"{os.path.basename(self.dir)}-recv",
                      [ARGS.shipper, "receive", "--config", conf])
        return self.r

    def start_sender(self, env=None, **over):
        conf = write_conf(os.path.join(self.dir, f"s{self.n}.conf"),
                          {**self.send, **over})
        self.n += 1
        self.s = Proc(f"{os.path.basename(self.dir)}-send",
                      [ARGS.shipper, "send", "--config", conf], env=env)
        return self.s

    def produce(self, *args):
        self.prod = Proc(f"{os.path.basename(self.dir)}-produce",
                         [ARGS.tool, "produce", self.edge,
                          "--segment-bytes", str(1 << 20), *map(str, args)])
        return self.prod

    def produce_sync(self, count):
        r = subprocess.run([ARGS.tool, "produce", self.edge, "--count",
                            str(count), "--segment-bytes", str(1 << 20)],
                           capture_output=True, timeout=120)
        assert r.returncode == 0, r.stderr
        return int(r.stdout)

    def head(self):
        try:
            with open(os.path.join(self.edge, "HEAD"), "rb") as f:
                return int.from_bytes(f.read(32)[8:16], "little")
        except OSError:
            return -1

    def acked(self):
        m = metrics(self.smport)
        return int(m.get('alog_ship_acked_offset{role="send"}', -1))

    def drained(self, timeout=60):
        return wait_for(lambda: self.head() > 0 and
                        self.acked() == self.head(), timeout, 0.1)

    def compare(self, first=None):
        argv = [ARGS.tool, "compare", self.edge,
                os.path.join(self.data, "e1", "log")]
        if first is not None:
            argv += ["--first", str(first)]
        r = subprocess.run(argv, capture_output=True, timeout=300)
        out = (r.stdout + r.stderr).decode().strip()
        log(out)
        return r.returncode == 0

    def sender_exit(self, timeout):
        """The sender's exit status once it stops by itself, or None."""
        if not wait_for(lambda: self.s.p.poll() is not None, timeout):
            return None
        return self.s.p.wait(timeout=5)

    def stop_all(self):
        for p in (self.s, self.r, self.prod):
            if p:
                p.stop()


# ---- scenarios -----------------------------------------------------------


def t_stream_retention_gap():
    """Live streaming with edge retention; then the canonical log is lost:
    the sender must stop with a loud GAP, not restart silently."""
    st = Setup("stream")
    st.start_receiver()
    st.produce("--rate", 100000, "--seconds", 3, "--retain-ms", 100)
    time.sleep(0.2)
    st.start_sender(checkpoint_interval_ms=50)
    check(st.prod.p.wait(timeout=60) == 0, "stream: producer finished")
    check(st.drained(), "stream: sender drained to the edge head")
    key = 'alog_ship_acked_offset{role="receive",edge="e1"}'
    check(wait_for(lambda: metrics(st.rmport).get(key) == st.head(), 5),
          "stream: receiver metrics show everything acknowledged")
    # Retention on the edge (the producer applied the consumer checkpoint).
    r = subprocess.run([ARGS.tool, "produce", st.edge, "--count", "1",
                        "--retain-ms", "1", "--segment-bytes",
                        str(1 << 20)], capture_output=True, timeout=60)
    check(st.drained(), "stream: drained again")
    check(st.compare(first=0), "stream: canonical == edge from offset 0")
    out = subprocess.run([ARGS.shipper, "status", f"127.0.0.1:{st.smport}"],
                         capture_output=True, timeout=10).stdout.decode()
    check("alog_ship_lag_records" in out, "stream: status command works")
    # The canonical host loses everything: GAP, exit 4.
    st.r.kill9()
    shutil.rmtree(st.data)
    st.start_receiver()
    rc = st.sender_exit(30)
    check(rc == 4, f"gap: sender stopped with exit status 4 (got {rc})")
    check("GAP" in st.s.text(), "gap: sender logged GAP")
    check("GAP" in st.r.text(), "gap: receiver logged the GAP reason")
    st.stop_all()


def edge_start(st):
    """The edge log's lowest segment base (its start offset)."""
    bases = [int(f[:20]) for f in os.listdir(st.edge)
             if f.endswith(".seg") and f[:20].isdigit()]
    return min(bases) if bases else -1


def read_ckpt(st, name="shipper"):
    """The sender's committed checkpoint (docs/log-format.md), or -1."""
    try:
        with open(os.path.join(st.edge, "consumers", name), "rb") as f:
            return int.from_bytes(f.read(48)[16:24], "little")
    except OSError:
        return -1


def t_gap_after_roll():
    """The canonical host loses its data while the edge is caught up and
    retention has deleted everything below the checkpoint: checkpoint ==
    the edge log's start > 0. The receiver has no log and asks for nothing
    in particular; resuming at the start would ship [start, head) and
    silently lose [0, start). The sender must stop with GAP."""
    st = Setup("gaproll")

    def produce(count, *extra):
        # 4,064-byte payloads: 4 KiB records, 255 to a 1 MiB segment.
        r = subprocess.run([ARGS.tool, "produce", st.edge, "--count",
                            str(count), "--size", "4064", "--segment-bytes",
                            str(1 << 20), *extra], capture_output=True,
                           timeout=60)
        check(r.returncode == 0, f"gaproll: produced {count}")
        return int(r.stdout)
    n = produce(255)  # the first segment, full to the byte
    st.start_receiver()
    st.start_sender(checkpoint_interval_ms=50)
    check(st.drained(), "gaproll: drained")
    st.s.stop()  # commits its checkpoint on the way out
    check(read_ckpt(st) == n, f"gaproll: checkpoint {read_ckpt(st)} == {n}")
    # One more record rolls to a new segment at n; retention (the producer
    # applies the consumer checkpoints) then deletes the first.
    produce(1, "--retain-ms", "1")
    check(edge_start(st) == n,
          f"gaproll: edge log starts at the checkpoint ({edge_start(st)})")
    st.r.kill9()
    shutil.rmtree(st.data)
    st.start_receiver()
    st.start_sender(checkpoint_interval_ms=50)
    rc = st.sender_exit(30)
    check(rc == 4, f"gaproll: sender stopped with exit status 4 (got {rc})")
    check("GAP" in st.s.text() and "consumers/shipper" in st.s.text(),
          "gaproll: sender logged GAP and how to ship the rest anyway")
    # The documented recovery: delete the checkpoint, ship the rest to the
    # new host. The first connection is cut after the handshake, before
    # any DATA reaches the receiver: nothing was acknowledged, so the
    # reconnect must not read a checkpoint written at connect as an ACK.
    os.unlink(os.path.join(st.edge, "consumers", "shipper"))
    relay = Relay(st.rport)
    relay.mode = "hold_data"
    try:
        st.start_sender(receiver=f"127.0.0.1:{relay.port}",
                        checkpoint_interval_ms=50)
        check(wait_for(lambda: metrics(st.smport).get(
            'alog_ship_connection_state{role="send"}') == 2, 10),
              "gaproll: connected through the relay")
        time.sleep(0.3)  # checkpoint interval x 6
        relay.mode = "pass"
        relay.cut()
        check(wait_for(lambda: st.acked() == n + 1, 15) and
              st.s.p.poll() is None,
              f"gaproll: after a cut before any ACK the sender ships "
              f"[{n}, {n + 1}) to the new host (acked {st.acked()}), "
              f"no false GAP")
        check(st.compare(), "gaproll: canonical == what the edge still has")
    finally:
        relay.close()
    st.stop_all()


def t_backlog():
    """A 1-million-record backlog in 1 MiB frames to a canonical log of
    1 MiB segments: a frame's records go in as many appends as the log's
    limits need (one append of a whole frame once failed the log, "record
    too large", and stopped the receiver)."""
    st = Setup("backlog", extra_send={"batch_bytes": 1 << 20})
    n = st.produce_sync(1000000)
    st.start_receiver()
    st.start_sender()
    check(st.drained(120), f"backlog: drained {n} records")
    check(st.r.p.poll() is None, "backlog: the receiver is still running")
    check(st.compare(first=0), "backlog: canonical == edge")
    st.stop_all()


def t_slow_link():
    """A link slower than the sender: its socket stays full (partial sends,
    EAGAIN). The sender once took that for a receiver that stopped reading
    (a clock read before the flush that moved last_tx_ns; the difference
    wrapped), dropped the connection at once and sent the window again."""
    st = Setup("slowlink", extra_send={"zstd_level": 0})
    n = st.produce_sync(60000)  # ~11 MB uncompressed: ~2 s at 6 MB/s
    st.start_receiver()
    relay = Relay(st.rport)
    relay.mode = "slow"
    try:
        st.start_sender(receiver=f"127.0.0.1:{relay.port}")
        check(st.drained(60), f"slowlink: drained {n} records")
        conns = metrics(st.smport).get(
            'alog_ship_connects_total{role="send"}')
        check(conns == 1 and "not reading" not in st.s.text(),
              f"slowlink: one connection throughout (connects {conns})")
        check(st.compare(first=0), "slowlink: canonical == edge")
    finally:
        relay.close()
    st.stop_all()


def t_big_records():
    """Records larger than batch_bytes go one per frame instead of stopping
    the sender for good: 4 KiB records with batch_bytes 1 KiB."""
    st = Setup("big", extra_send={"batch_bytes": 1024})
    r = subprocess.run([ARGS.tool, "produce", st.edge, "--count", "600",
                        "--size", "4000", "--segment-bytes", str(1 << 20)],
                       capture_output=True, timeout=60)
    check(r.returncode == 0, "big: produced 600 records of 4,000 bytes")
    st.start_receiver()
    st.start_sender()
    check(st.drained(30), "big: drained, one record per frame")
    m = metrics(st.rmport)
    check(m.get('alog_ship_records_received_total{role="receive",edge="e1"}')
          == 600, "big: the receiver got 600 records")
    check(st.s.p.poll() is None, "big: the sender is still running")
    check(st.compare(first=0), "big: canonical == edge")
    st.stop_all()


def t_identity():
    """The edge log is replaced by a new one (another identity) while the
    canonical log holds the old one's records: the receiver answers
    IDENTITY and the sender stops (exit 4) rather than mixing two logs
    under one offset space."""
    st = Setup("identity")
    st.produce_sync(1000)
    st.start_receiver()
    st.start_sender()
    check(st.drained(), "identity: drained")
    st.s.stop()
    shutil.rmtree(st.edge)
    st.produce_sync(500)
    st.start_sender()
    rc = st.sender_exit(30)
    check(rc == 4, f"identity: sender stopped with exit status 4 (got {rc})")
    check("IDENTITY" in st.s.text() and "identity changed" in st.r.text(),
          "identity: both sides logged why")
    st.stop_all()


def t_handshake():
    """Refusals no real sender provokes: a HELLO whose versions do not
    overlap the receiver's gets ERROR VERSION; an unknown edge name gets
    ERROR AUTH; a good HELLO gets WELCOME."""
    st = Setup("handshake")
    st.start_receiver()

    def hello(name, vmin, vmax):
        r = subprocess.run([ARGS.tool, "hello", str(st.rport), name,
                            str(vmin), str(vmax)], capture_output=True,
                           timeout=30)
        return r.stdout.decode().strip()
    check(wait_for(lambda: hello("e1", 1, 1) == "WELCOME", 5),
          "handshake: versions 1..1 welcomed")
    out = hello("e1", 9, 12)
    check(out.startswith("ERROR VERSION") and "9..12" in out,
          f"handshake: versions 9..12 refused with VERSION ({out!r})")
    out = hello("e9", 1, 1)
    check(out.startswith("ERROR AUTH") and "e9" in out,
          f"handshake: an unknown edge refused with AUTH ({out!r})")
    st.stop_all()


def t_outage_metrics():
    """While the receiver is away the sender's metrics show the lag
    growing (head moves, acked stays), also after a sender restart; under
    load the receiver learns the edge's head from heartbeats that go out
    every interval, not only when a side is idle."""
    st = Setup("outage")
    st.start_receiver()
    st.start_sender(checkpoint_interval_ms=50)
    st.produce("--rate", 20000, "--seconds", 4)
    hk = 'alog_ship_head_offset{role="receive",edge="e1"}'
    ak = 'alog_ship_acked_offset{role="receive",edge="e1"}'
    seen = []

    def receiver_sees_head():
        m = metrics(st.rmport)
        seen.append((m.get(hk), m.get(ak)))
        return m.get(hk, 0) > 20000 and m.get(ak, 0) > 0
    check(wait_for(receiver_sees_head, 3.5),
          f"outage: under load the receiver's head metric moves "
          f"(head, acked seen: {seen[-3:]})")
    rk = 'alog_ship_records_per_second{role="receive",edge="e1"}'
    check(wait_for(lambda: metrics(st.rmport).get(rk, 0) > 1000, 2.5),
          "outage: the receiver reports its throughput under load")
    check(st.prod.p.wait(timeout=60) == 0, "outage: producer finished")
    check(st.drained(), "outage: drained")
    n1 = st.head()
    st.r.kill9()
    n2 = st.produce_sync(5000)  # prints the new head
    check(n2 == n1 + 5000, f"outage: produced 5000 more ({n1} -> {n2})")
    lk, sk = 'alog_ship_lag_records{role="send"}', \
        'alog_ship_connection_state{role="send"}'

    def lag_shows():
        m = metrics(st.smport)
        return (m.get('alog_ship_head_offset{role="send"}') == n2 and
                m.get(lk) == n2 - n1 and
                m.get('alog_ship_lag_bytes{role="send"}', 0) > 0 and
                m.get(sk) != 2)
    check(wait_for(lag_shows, 10),
          f"outage: sender shows lag {n2 - n1} while the receiver is down")
    st.s.stop()
    st.start_sender(checkpoint_interval_ms=50)
    check(wait_for(lag_shows, 10),
          "outage: a restarted sender shows the same lag, lag bytes "
          "estimated from the edge log")
    st.start_receiver()
    check(st.drained(), "outage: drained after the receiver came back")
    check(st.compare(first=0), "outage: canonical == edge")
    st.stop_all()


def t_kill9(rounds):
    st = Setup("kill9")
    st.start_receiver()
    st.produce("--rate", 40000, "--seconds", 0)
    st.start_sender()
    seed = int(os.environ.get("SHIP_TEST_SEED", "0")) or \
        random.SystemRandom().randrange(1, 2**31)
    log(f"kill9: SHIP_TEST_SEED={seed} replays these moments and victims")
    rnd = random.Random(seed)
    kills = {"send": 0, "receive": 0}
    for i in range(rounds):
        time.sleep(rnd.uniform(0.05, 0.6))
        who = rnd.choice(["send", "receive", "both"])
        if who in ("send", "both"):
            st.s.kill9()
            kills["send"] += 1
        if who in ("receive", "both"):
            st.r.kill9()
            kills["receive"] += 1
        time.sleep(rnd.uniform(0, 0.2))
        if who in ("receive", "both"):
            st.start_receiver()
        if who in ("send", "both"):
            st.start_sender()
    log(f"kill9: {rounds} rounds, kills {kills}")
    st.prod.stop()
    check(st.drained(90), "kill9: drained after the last kill")
    check(st.compare(first=0),
          f"kill9: canonical == edge after {rounds} kill -9 rounds")
    st.stop_all()


class RelayConn:
    """One relayed connection: c (the sender's side) and u (the receiver's).
    Only its pumps close the sockets, the second one to finish, so no
    socket is closed while a thread may still use its descriptor (a closed
    descriptor's number is reused at once by the next accept)."""

    def __init__(self, c, u):
        self.socks = (c, u)
        self.pumps = 2
        self.over = False   # the pumps stop at their next step
        self.reset = False  # cut(): close with RST (SO_LINGER 0), not FIN
        self.down_chunks = 0  # reads from the receiver's side
        self.up_chunks = 0    # reads from the sender's side


class Relay:
    """TCP relay: modes pass, drop (reset everything, refuse new), blackhole
    (accept, forward nothing), hold_acks (forward to the receiver, hold
    back everything it answers after its first read: the WELCOME),
    hold_data (forward the sender's first read, the HELLO, hold the rest), slow
    (forward to the receiver at about 6 MB/s), and corrupt-once (flip one byte going to
    the receiver). Every relayed connection is closed when its pumps finish, so
    a reconnect storm cannot exhaust the harness's descriptors."""

    STEP = 0.1  # a pump looks at cut() and close() at least this often

    def __init__(self, target_port):
        self.target = target_port
        self.mode = "pass"
        self.corrupt = False
        self.corrupted = 0
        self.accepted = 0  # connections relayed to the receiver
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.conns = set()  # RelayConn not yet closed, under lock
        self.lock = threading.Lock()
        self.done = False
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def accept_loop(self):
        self.lsock.settimeout(0.2)
        while not self.done:
            try:
                c, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError as e:
                if self.done:
                    return
                log(f"relay: accept: {e}")  # EMFILE: keep the relay up
                time.sleep(0.2)
                continue
            if self.mode == "drop":
                c.close()
                continue
            try:
                u = socket.create_connection(("127.0.0.1", self.target), 2)
            except OSError:
                c.close()
                continue
            c.settimeout(self.STEP)
            u.settimeout(self.STEP)
            conn = RelayConn(c, u)
            with self.lock:
                self.conns.add(conn)
                self.accepted += 1
                if self.mode == "drop" or self.done:  # cut() ran meanwhile
                    conn.over = conn.reset = True
            threading.Thread(target=self.pump, args=(conn, c, u, True),
                             daemon=True).start()
            threading.Thread(target=self.pump, args=(conn, u, c, False),
                             daemon=True).start()

    def pump(self, conn, src, dst, upstream):
        try:
            while not conn.over:
                try:
                    data = src.recv(65536)
                except socket.timeout:
                    continue
                if not data:
                    break
                if upstream:
                    conn.up_chunks += 1
                else:
                    conn.down_chunks += 1
                # hold_acks: the first answer (WELCOME) goes through;
                # hold_data: the first read of the sender's (HELLO) does.
                while (self.mode == "blackhole" or
                       (self.mode == "hold_acks" and not upstream and
                        conn.down_chunks > 1) or
                       (self.mode == "hold_data" and upstream and
                        conn.up_chunks > 1)) and not conn.over:
                    time.sleep(0.05)
                if self.mode == "drop" or conn.over:
                    break
                if upstream and self.corrupt and len(data) > 100:
                    b = bytearray(data)
                    b[len(b) // 2] ^= 0x5A
                    data = bytes(b)
                    self.corrupt = False
                    self.corrupted += 1
                while data and not conn.over:
                    try:
                        data = data[dst.send(data):]
                    except socket.timeout:
                        continue
                if upstream and self.mode == "slow":
                    time.sleep(0.01)  # ~6 MB/s: the sender's socket fills
        except OSError:
            pass
        with self.lock:
            if not conn.over:
                # This direction ended: end both, as a proxy does (FIN).
                conn.over = True
                for s in conn.socks:
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
            conn.pumps -= 1
            if conn.pumps > 0:
                return
            self.conns.discard(conn)
        for s in conn.socks:
            try:
                if conn.reset:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 b"\x01\x00\x00\x00\x00\x00\x00\x00")
            except OSError:
                pass
            s.close()

    def cut(self):
        """Reset every live connection: its pumps stop and close both
        sockets with RST."""
        with self.lock:
            for conn in self.conns:
                if conn.over:
                    continue
                conn.over = conn.reset = True
                for s in conn.socks:
                    try:  # wakes a pump in recv; sends nothing
                        s.shutdown(socket.SHUT_RD)
                    except OSError:
                        pass

    def live(self):
        """Relayed connections whose sockets are still open."""
        with self.lock:
            return len(self.conns)

    def close(self):
        self.done = True
        self.cut()
        self.lsock.close()
        wait_for(lambda: self.live() == 0, 5)


def t_link_cut():
    st = Setup("linkcut")
    st.start_receiver()
    relay = Relay(st.rport)
    try:
        link_cut(st, relay)
    finally:
        relay.close()
    st.stop_all()


def link_cut(st, relay):
    st.produce("--rate", 30000, "--seconds", 0)
    st.start_sender(receiver=f"127.0.0.1:{relay.port}", timeout_ms=1000)
    time.sleep(1)
    for i in range(3):
        relay.mode = "drop"
        relay.cut()
        time.sleep(1.0)
        relay.mode = "pass"
        time.sleep(0.7)
        relay.mode = "blackhole"
        time.sleep(2.5)  # beyond timeout_ms: both sides must give up
        relay.mode = "pass"
        relay.cut()
        time.sleep(0.7)
    relay.corrupt = True
    check(wait_for(lambda: relay.corrupted > 0, 10),
          "linkcut: a byte was corrupted in flight")
    time.sleep(1)
    st.prod.stop()
    check(st.drained(60), "linkcut: drained after cuts and corruption")
    check(st.compare(first=0), "linkcut: canonical == edge")
    check("checksum" in st.r.text() or "bad DATA" in st.r.text()
          or "bad frame" in st.r.text(),
          "linkcut: receiver refused the corrupt frame with a reason")
    check("no frame" in st.s.text() or "silent" in st.s.text()
          or "no frame" in st.r.text(),
          "linkcut: a blackholed link was detected by timeout")
    live = relay.live()
    log(f"linkcut: {relay.accepted} connections relayed, {live} still open")
    check(live <= 2, "linkcut: the relay closed its finished connections")


def t_window():
    """A backlog goes out up to the window without waiting for ACKs: with
    every answer of the receiver held back by the relay, the receiver still
    gets the whole backlog (57 frames of 64 KiB, far below the 32 MiB
    window). The sender once queued one frame and then slept in poll until
    the next ACK (nothing else wakes it when the log does not grow): a
    backlog drained one frame per fdatasync round trip. Heartbeats are 20 s
    apart here, so nothing but the fix can wake it within the deadline."""
    st = Setup("window")
    n = st.produce_sync(20000)
    slow = {"heartbeat_ms": 20000, "timeout_ms": 60000}
    st.start_receiver(**slow)
    relay = Relay(st.rport)
    relay.mode = "hold_acks"
    try:
        st.start_sender(receiver=f"127.0.0.1:{relay.port}",
                        checkpoint_interval_ms=0, **slow)
        got = lambda: int(metrics(st.rmport).get(
            'alog_ship_records_received_total{role="receive",edge="e1"}',
            0))
        check(wait_for(lambda: got() == n, 8),
              f"window: the receiver got all {n} records with no ACK "
              f"back (got {got()})")
        check(st.acked() == 0, "window: no ACK reached the sender")
        relay.mode = "pass"
        check(st.drained(30), "window: drained once ACKs flow")
        check(st.compare(first=0), "window: canonical == edge")
        conns = metrics(st.smport).get(
            'alog_ship_connects_total{role="send"}')
        check(conns == 1 and "not reading" not in st.s.text(),
              f"window: one connection throughout (connects {conns}): "
              f"a full socket is not a receiver that stopped reading")
        m = metrics(st.rmport)
        lbl = '{role="receive",edge="e1"}'
        commits = m.get("alog_ship_log_commits_total" + lbl, 0)
        log(f"window: receiver metrics {m}")
        check(commits >= 1 and
              m.get("alog_ship_log_fsyncs_total" + lbl, 0) >= commits and
              m.get("alog_ship_log_fsync_seconds_sum" + lbl, 0) > 0 and
              m.get("alog_ship_log_bytes_written_total" + lbl, 0) >=
              n * 32 and m.get("alog_ship_log_segments" + lbl, 0) >= 1,
              "window: the receiver's metrics show its canonical log's "
              "commits, fsyncs and bytes")
    finally:
        relay.close()
    st.stop_all()


def log_time(line):
    """Seconds of a shipper log line's timestamp (2026-01-02T03:04:05.678Z)
    within its day, or None."""
    m = re.match(r"\d{4}-\d\d-\d\dT(\d\d):(\d\d):(\d\d\.\d{3})Z", line)
    if not m:
        return None
    return int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3])


def reconnect_waits(text, since_word):
    """The waits (ms) the sender logged before reconnecting, from its first
    disconnect that says since_word on."""
    out, seen = [], False
    for line in text.splitlines():
        if "disconnected from" in line and since_word in line:
            seen = True
        m = re.search(r"reconnecting in (\d+) ms", line)
        if seen and m:
            out.append(int(m[1]))
    return out


def t_disk_budget():
    st = Setup("budget", budget=3 << 20)
    n = st.produce_sync(60000)  # about 10 MB with headers
    st.start_receiver()
    st.start_sender()
    check(wait_for(lambda: "STORAGE_FULL" in st.r.text(), 30),
          "budget: receiver reported STORAGE_FULL")
    time.sleep(0.5)
    acked = st.acked()
    check(0 < acked < n, f"budget: partial ack {acked} of {n}")
    check("STORAGE_FULL" in st.s.text(), "budget: sender logged the reason")
    # A full receiver takes the handshake and refuses the DATA. Once nothing
    # more is acknowledged the sender's backoff grows (backoff_min_ms 20
    # doubling to backoff_max_ms 300, waits in [d/2, d]) as after a
    # refusal, so after at most four more retries every wait it logs is at
    # least 150 ms. It used to start again from backoff_min_ms after every
    # WELCOME: a reconnect storm. (The logged waits, not clock gaps: a
    # loaded machine stretches gaps, and a retry that still got a little
    # data acknowledged rightly starts over.)
    check(wait_for(lambda: len(reconnect_waits(st.s.text(),
                                               "STORAGE_FULL")) >= 8, 20),
          "budget: the sender kept retrying the full receiver")
    w = reconnect_waits(st.s.text(), "STORAGE_FULL")
    check(len(w) >= 8 and min(w[-3:]) >= 150,
          f"budget: the sender backed off from the full receiver "
          f"(logged waits in ms: {w[:12]})")
    # Space comes back (a larger budget): it drains, nothing lost.
    st.r.stop()
    st.start_receiver(disk_budget_bytes=0)
    check(st.drained(60), "budget: drained once space was back")
    check(st.compare(first=0), "budget: canonical == edge")
    st.stop_all()


SLOW_FSYNC_C = r"""
/* ship_test.py's LD_PRELOAD: every fsync and fdatasync of the process takes
 * SHIP_TEST_FSYNC_MS longer, as on a loaded disk. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>

static void slow(void)
{
	const char *e = getenv("SHIP_TEST_FSYNC_MS");
	long ms = e ? atol(e) : 0;
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

int fsync(int fd)
{
	static int (*real)(int);

	if (!real)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
	slow();
	return real(fd);
}

int fdatasync(int fd)
{
	static int (*real)(int);

	if (!real)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
	slow();
	return real(fd);
}
"""


def build_slow_fsync():
    """The fsync shim as a shared object, or None without a C compiler."""
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        return None
    src = os.path.join(TMP, "slow_fsync.c")
    so = os.path.join(TMP, "slow_fsync.so")
    with open(src, "w") as f:
        f.write(SLOW_FSYNC_C)
    r = subprocess.run([cc, "-shared", "-fPIC", "-O1", "-o", so, src, "-ldl"],
                       capture_output=True, timeout=120)
    if r.returncode != 0:
        log(f"building the fsync shim: {r.stderr.decode(errors='replace')}")
        return None
    return so


def t_slow_disk():
    """The edge host's disk is slow: each fsync takes 1.5 s, more than
    timeout_ms. The consumer checkpoint (two fsyncs) must not hold up the
    sender's connection: it used to, the receiver dropped the silent sender
    ('no frame for 2000 ms'), and it reconnected over and over, a frame at a
    time, never catching up."""
    so = build_slow_fsync()
    if not so:
        log("slowdisk: skipped: no C compiler for the fsync shim")
        return
    st = Setup("slowdisk")
    st.start_receiver()
    st.produce("--rate", 30000, "--seconds", 0)
    asan = os.environ.get("ASAN_OPTIONS", "")
    env = dict(os.environ, LD_PRELOAD=so, SHIP_TEST_FSYNC_MS="1500",
               ASAN_OPTIONS=f"{asan}:verify_asan_link_order=0".lstrip(":"))
    st.start_sender(env=env, timeout_ms=1000)
    time.sleep(5)
    st.prod.stop()
    check(st.drained(60), "slowdisk: drained with a 1.5 s fsync on the edge")
    check(st.compare(first=0), "slowdisk: canonical == edge")
    check("no frame for" not in st.r.text(),
          "slowdisk: the receiver never found the sender silent")
    n = st.s.text().count("connected to")
    log(f"slowdisk: the sender connected {n} times")
    st.stop_all()


def make_certs(d):
    def ossl(*a):
        subprocess.run(["openssl", *a], check=True, capture_output=True,
                       timeout=60)

    def ca(name):
        ossl("req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
             "-subj", f"/CN={name}", "-keyout", f"{d}/{name}.key",
             "-out", f"{d}/{name}.crt")

    def leaf(name, cn, ca_name, san=None, eku=None):
        ossl("req", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-subj", f"/CN={cn}",
             "-keyout", f"{d}/{name}.key", "-out", f"{d}/{name}.csr")
        ext = f"{d}/{name}.ext"
        with open(ext, "w") as f:
            f.write("basicConstraints=CA:FALSE\n")
            if san:
                f.write(f"subjectAltName={san}\n")
            if eku:
                f.write(f"extendedKeyUsage={eku}\n")
        ossl("x509", "-req", "-in", f"{d}/{name}.csr", "-CA",
             f"{d}/{ca_name}.crt", "-CAkey", f"{d}/{ca_name}.key",
             "-CAcreateserial", "-days", "2", "-extfile", ext,
             "-out", f"{d}/{name}.crt")

    ca("ca")
    ca("rogue-ca")
    leaf("receiver", "receiver.test", "ca", "DNS:receiver.test")
    leaf("e1", "e1", "ca")
    leaf("e1-rogue", "e1", "rogue-ca")
    leaf("e2", "e2", "ca")
    # Right CA and name, but only good for a server (no clientAuth).
    leaf("e1-server-only", "e1", "ca", eku="serverAuth")

    def files(name):
        return {"tls_cert": f"{d}/{name}.crt", "tls_key": f"{d}/{name}.key",
                "tls_ca": f"{d}/ca.crt"}
    return {"receiver": files("receiver"), "e1": files("e1"),
            "e1-rogue": {**files("e1-rogue")}, "e2": files("e2"),
            "e1-server-only": files("e1-server-only")}


def t_tls():
    d = os.path.join(TMP, "certs")
    os.makedirs(d)
    certs = make_certs(d)
    st = Setup("tls", tls=certs, edges="e1,e3",
               extra_send={"tls_server_name": "receiver.test"})
    n = st.produce_sync(50000)
    st.start_receiver()
    st.start_sender()
    check(st.drained(60), f"tls: drained {n} records over TLS")
    m = metrics(st.rmport)
    check(m.get('alog_ship_connection_state{role="receive",edge="e1"}') == 1
          and m.get('alog_ship_connection_state{role="receive",edge="e3"}')
          == 0, "tls: receiver metrics list both configured edges")
    check("TLS, cert CN ok" in st.r.text(), "tls: mutual auth logged")
    check(st.compare(first=0), "tls: canonical == edge")
    st.s.stop()
    st.produce_sync(1000)
    # Wrong certificate: signed by another CA.
    rk = 'alog_ship_records_received_total{role="receive",edge="e1"}'
    before = metrics(st.rmport).get(rk)
    bad = st.start_sender(**certs["e1-rogue"])
    time.sleep(1.5)
    m = metrics(st.smport)
    conns = m.get('alog_ship_connects_total{role="send"}')
    check(conns == 0 and
          m.get('alog_ship_connection_state{role="send"}') != 2 and
          metrics(st.rmport).get(rk) == before,
          f"tls: rogue certificate not accepted (no session, no records; "
          f"sender connects {conns})")
    check(wait_for(lambda: "refused" in st.r.text() and
                   "certificate" in st.r.text(), 5),
          "tls: receiver logged the refused certificate")
    bad.stop()
    # Signed by our CA, CN e1, but its extended key usage is serverAuth
    # only: not a client certificate.
    bad = st.start_sender(**certs["e1-server-only"])
    time.sleep(1.5)
    m = metrics(st.smport)
    check(m.get('alog_ship_connects_total{role="send"}') == 0 and
          metrics(st.rmport).get(rk) == before,
          "tls: a certificate without clientAuth usage not accepted")
    bad.stop()
    # No client certificate at all (a TLS client that only checks the
    # receiver): the handshake fails and the receiver says so.
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(certs["receiver"]["tls_ca"])
    ctx.check_hostname = False
    nlog = st.r.text().count("refused")
    try:
        with socket.create_connection(("127.0.0.1", st.rport), 5) as raw:
            with ctx.wrap_socket(raw) as tls:
                tls.settimeout(5)
                tls.sendall(b"ASF1")  # TLS 1.3: the refusal comes now
                tls.recv(1)
    except (OSError, ssl.SSLError):
        pass
    check(wait_for(lambda: st.r.text().count("refused") > nlog, 5) and
          metrics(st.rmport).get(rk) == before,
          "tls: a client without a certificate refused with a logged "
          "reason, nothing received")
    # A valid certificate for another name.
    bad = st.start_sender(**certs["e2"])
    check(wait_for(lambda: "presented a certificate for 'e2'"
                   in st.r.text(), 5),
          "tls: edge name not matching the certificate refused (AUTH)")
    check(wait_for(lambda: "AUTH" in bad.text(), 5),
          "tls: sender logged AUTH")
    bad.stop()
    # An allowed-looking name with its own valid certificate, not in edges.
    bad = st.start_sender(edge="e2", **certs["e2"])
    check(wait_for(lambda: "unknown edge 'e2'" in st.r.text(), 5),
          "tls: unknown edge refused with a logged reason")
    bad.stop()
    # Server name check: the sender refuses a receiver with another name.
    bad = st.start_sender(tls_server_name="other.test")
    check(wait_for(lambda: "TLS handshake failed" in bad.text(), 5),
          "tls: sender refused a receiver certificate for another name")
    bad.stop()
    st.start_sender()
    check(st.drained(30), "tls: drained the rest with the right cert")
    check(st.compare(first=0), "tls: canonical == edge after refusals")
    st.stop_all()


def t_config_refusals():
    st = Setup("config")
    r = subprocess.run([ARGS.shipper, "receive", "--config",
                        write_conf(os.path.join(st.dir, "bad.conf"),
                                   {**st.recv, "listen": "0.0.0.0:0"})],
                       capture_output=True, timeout=10)
    check(r.returncode == 1 and b"loopback" in r.stderr,
          "config: plain mode refuses a non-loopback listen address")
    r = subprocess.run([ARGS.shipper, "send", "--config",
                        write_conf(os.path.join(st.dir, "bad2.conf"),
                                   {**st.send, "transport": "plain"})],
                       capture_output=True, timeout=10)
    check(r.returncode == 1 and b"plain-loopback-only" in r.stderr,
          "config: an unnamed plain transport is refused")


def main():
    global ARGS, TMP
    ap = argparse.ArgumentParser()
    ap.add_argument("--shipper", required=True)
    ap.add_argument("--tool", required=True)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--only")
    ARGS = ap.parse_args()
    TMP = tempfile.mkdtemp(prefix="alog-ship-test-")
    tests = {"config": t_config_refusals, "stream": t_stream_retention_gap,
             "kill9": lambda: t_kill9(ARGS.rounds), "linkcut": t_link_cut,
             "window": t_window, "gaproll": t_gap_after_roll,
             "outage": t_outage_metrics, "identity": t_identity, "handshake": t_handshake,
             "big": t_big_records, "backlog": t_backlog,
             "slowlink": t_slow_link,
             "slowdisk": t_slow_disk, "budget": t_disk_budget, "tls": t_tls}
    t0 = time.monotonic()
    for name, fn in tests.items():
        if ARGS.only and name not in ARGS.only.split(","):
            continue
        log(f"=== {name}")
        nfails = len(FAILS)
        PROCS.clear()
        try:
            fn()
        except Exception as e:  # a crash of the harness is a failure
            import traceback
            traceback.print_exc()
            FAILS.append(f"{name}: {e!r}")
        for p in PROCS:  # left running by a crash; closes every log
            try:
                p.stop()
            except Exception as e:
                log(f"stopping {p.name}: {e!r}")
        if len(FAILS) > nfails:
            print_log_tails(PROCS)
    log(f"{len(FAILS)} failures in {time.monotonic() - t0:.0f}s")
    if FAILS:
        for f in FAILS:
            log(f"  FAILED: {f}")
        log(f"logs kept in {TMP}")
        sys.exit(1)
    shutil.rmtree(TMP, ignore_errors=True)


if __name__ == "__main__":
    main()
