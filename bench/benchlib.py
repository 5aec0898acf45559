"""What bench/syslog-ng and bench/rsyslog share: a local broker, the loggen load, one measured run
(first sent -> last landed from the broker's LogAppendTime, lost and duplicated by sequence
number, CPU per process), medians and the step that puts a section into BENCHMARKS.md.

Each script sets NAME (for its log lines) and passes its own daemon: an object with `name` (the
key of its CPU seconds in a run's record), `p` (its Popen), `kids()` (its children's pids) and
`stop()`."""

import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV = Path(os.environ.get("KPIPE_BENCH_VENV", Path.home() / ".cache" / "kpipe" / "bench-venv"))
VENV_PY = VENV / "bin" / "python"
HOSTS = [f"host{i:02d}" for i in range(32)]
PROGRAMS = [f"app{i}" for i in range(8)]
PARTITIONS = 3
NAME = "bench"


def ensure_venv(script):
    """Re-runs `script` with the bench venv's python unless confluent-kafka is importable."""
    try:
        import confluent_kafka  # noqa: F401
    except ImportError:
        if not VENV_PY.exists():
            sys.exit(f"no {VENV_PY}: run bench/run once (it creates the venv with confluent-kafka)")
        if Path(sys.prefix).resolve() == VENV.resolve():
            sys.exit("confluent-kafka is missing from the bench venv")
        os.execv(str(VENV_PY), [str(VENV_PY), str(script), *sys.argv[1:]])


def log(msg):
    print(f"[{NAME} bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    """utime + stime of a process (all its threads), 0 if it is gone."""
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def busy_seconds():
    """CPU seconds the whole machine has been busy (all cores)."""
    f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = f[3] + f[4]
    return (sum(f[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def children_of(pid):
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append(int(d.name))
    return out


def thread_cpu(pid, prefix="rdk:broker"):
    """CPU seconds of a process's threads whose name starts with prefix (librdkafka's broker threads)."""
    total = 0.0
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            try:
                st = Path(f"/proc/{pid}/task/{t}/stat").read_text()
            except OSError:
                continue
            if st[st.index("(") + 1:st.rindex(")")].startswith(prefix):
                f = st.rsplit(")", 1)[1].split()
                total += (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        pass
    return total


def write_messages(path, n):
    """n syslog lines (RFC 3164, as loggen --dont-parse sends them), 256 bytes with the newline
    like loggen's own default message size."""
    with open(path, "w") as f:
        for i in range(n):
            head = (f"<38>Nov 26 00:36:53 {HOSTS[i % len(HOSTS)]} {PROGRAMS[i % len(PROGRAMS)]}[{1000 + i % 50}]: "
                    f"seq: {i:010d}, thread: 0000, runid: 1, stamp: 2026-11-26T00:36:53 ")
            f.write(head + "P" * (255 - len(head)) + "\n")


def write_warm(path, programs):
    """One warm-up message per program (no sequence number: not counted)."""
    path.write_text("".join(f"<38>Nov 26 00:36:53 warmup {p}[1]: warm-up\n" for p in programs))


class Broker:
    def __init__(self, kafka_dir):
        self.dir = Path(kafka_dir)

    def start(self):
        log(f"starting Kafka in {self.dir}")
        out = sh([str(ROOT / "scripts" / "kafka-local"), "start", "--dir", str(self.dir), "--watch-pid", str(os.getpid())])
        self.bootstrap = out.strip().splitlines()[-1]
        self.pid = int((self.dir / "node1" / "pid").read_text().strip())
        from confluent_kafka.admin import AdminClient
        self.admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 3})
        log(f"Kafka at {self.bootstrap} (pid {self.pid})")

    def stop(self):
        # The admin client would log its reconnect attempts once the broker is gone.
        self.admin = None
        import gc
        gc.collect()
        subprocess.run([str(ROOT / "scripts" / "kafka-local"), "stop", "--dir", str(self.dir)], capture_output=True)

    def create_topics(self, names):
        """Topics of PARTITIONS partitions with LogAppendTime; returns once each has its leaders."""
        from confluent_kafka.admin import NewTopic
        fs = self.admin.create_topics([NewTopic(n, PARTITIONS, 1, config={"message.timestamp.type": "LogAppendTime"})
                                       for n in names])
        for n in names:
            fs[n].result(30)
        deadline = time.monotonic() + 15
        for n in names:
            while True:
                md = self.admin.list_topics(n, timeout=5).topics.get(n)
                if md and not md.error and len(md.partitions) == PARTITIONS and all(p.leader >= 0 for p in md.partitions.values()):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"topic {n} has no leaders after 15 s")
                time.sleep(0.05)

    def create_topic(self, name):
        self.create_topics([name])


def warm_broker(broker, kpipe, msgs, min_records, max_s, prefix):
    """A fresh broker's JVM spends several times more CPU per record until its code is compiled
    (bench/run measured its CPU per record falling 5-8x over the first ~15M records), and here
    the routes share two cores with it: without a warm-up the broker's CPU fell from run to run
    and the figures with it. Sends the messages file through kpipe straight into Kafka (no
    syslog daemon) until the broker's CPU per record settles, as bench/run does."""
    total, prev, history = 0, None, []
    t_end = time.monotonic() + max_s
    data = msgs.read_bytes() * 5
    n = data.count(b"\n")
    for i in range(1, 100):
        topic = f"{prefix}.warm-{i}"
        broker.create_topic(topic)
        c0 = cpu_seconds(broker.pid)
        subprocess.run([str(kpipe), "-b", broker.bootstrap, "-t", topic, "-q"], input=data, check=True)
        per = (cpu_seconds(broker.pid) - c0) * 1e6 / n
        total += n
        history.append(f"{per:.2f}")
        settled = prev is not None and per >= prev * 0.85 and total >= min_records
        prev = per
        if settled or time.monotonic() >= t_end:
            break
    log(f"broker warmed up with {total:,} records; its CPU µs/record per warm-up run: {' '.join(history)}")
    return {"records": total, "broker_cpu_us_per_record": history}


def wait_quiet(broker, limit=0.3, max_wait=5.0):
    """Waits (up to max_wait s) until processes other than the broker use < limit cores."""
    t_end = time.monotonic() + max_wait
    while True:
        b0, k0, t0 = busy_seconds(), cpu_seconds(broker.pid), time.monotonic()
        time.sleep(0.5)
        others = (busy_seconds() - b0 - (cpu_seconds(broker.pid) - k0)) / (time.monotonic() - t0)
        if others < limit or time.monotonic() >= t_end:
            return others


def wait_listening(port, proc, what, log_path, timeout=15):
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not listen: {Path(log_path).read_text()}")
            time.sleep(0.05)


def stop_daemon(p, kids, timeout=30):
    """SIGTERM to the daemon; waits for it, then (up to 15 s) for the children it had."""
    import signal
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    deadline = time.monotonic() + 15
    for k in kids:  # kpipe delivers what it still holds, then exits
        while Path(f"/proc/{k}").exists() and time.monotonic() < deadline:
            time.sleep(0.02)


def loggen(port, file, rate, log_path):
    """Runs loggen to its end; its own summary and the CPU seconds it used."""
    cmd = ["loggen", "--inet", "--stream", "--active-connections", "1", "--rate", str(rate), "--interval", "300",
           "--read-file", str(file), "--dont-parse", "127.0.0.1", str(port)]
    with open(log_path, "ab") as f:
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=f, stderr=f)
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise RuntimeError(f"loggen failed ({p.returncode}): {Path(log_path).read_text()}")
    text = Path(log_path).read_text()
    m = re.findall(r"average rate = ([\d.]+) msg/sec, count=(\d+), time=([\d.]+)", text)
    out = {"rate": float(m[-1][0]), "count": int(m[-1][1]), "time": float(m[-1][2])} if m else {}
    out["cpu_s"] = ru.ru_utime + ru.ru_stime
    return out


def watermarks(consumer, topics):
    """End offsets: {topic: [per partition]}. A consumer's metadata can lag behind fresh topics
    ("not leader for partition"): asked again for up to 10 s."""
    from confluent_kafka import KafkaException, TopicPartition
    deadline = time.monotonic() + 10
    while True:
        try:
            return {t: [consumer.get_watermark_offsets(TopicPartition(t, p), timeout=5)[1] for p in range(PARTITIONS)]
                    for t in topics}
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def landed_count(consumer, topics):
    return sum(sum(v) for v in watermarks(consumer, topics).values())


SEQ = re.compile(rb'seq: (\d{10})')


def read_topics(bootstrap, ends, host_re, conf=None):
    """Every record up to the given end offsets ({topic: [per partition]}): (append time ms,
    seq or None, key ok: the key equals what host_re's group 1 finds in the value), and one value.
    `conf`: more consumer settings (bench/kill-loss names isolation.level=read_committed, which is
    librdkafka's default anyway)."""
    from confluent_kafka import Consumer, TopicPartition, TIMESTAMP_LOG_APPEND_TIME
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-read-{time.time_ns()}", "enable.auto.commit": False,
                  "enable.partition.eof": True, "log_level": 3, **(conf or {})})
    left = {(t, p) for t, e in ends.items() for p in range(PARTITIONS) if e[p] > 0}
    c.assign([TopicPartition(t, p, 0) for t, p in left])
    out, sample = [], None
    deadline = time.monotonic() + 60
    while left and time.monotonic() < deadline:
        for m in c.consume(10000, 1.0):
            if m.error():
                if m.error().code() == -191:  # _PARTITION_EOF
                    left.discard((m.topic(), m.partition()))
                continue
            ts_type, ts = m.timestamp()
            assert ts_type == TIMESTAMP_LOG_APPEND_TIME, f"topic {m.topic()} is not LogAppendTime"
            v = m.value() or b""
            s = SEQ.search(v)
            h = host_re.search(v)
            out.append((ts, int(s.group(1)) if s else None, bool(h) and m.key() == h.group(1)))
            if sample is None and s:
                sample = v.decode(errors="replace")
            if m.offset() + 1 >= ends[m.topic()][m.partition()]:
                left.discard((m.topic(), m.partition()))
    c.close()
    return out, sample


def read_chars(pid):
    """Bytes a process has read so far (rchar in /proc/PID/io), None if it is gone."""
    try:
        return int(re.search(r"rchar: (\d+)", Path(f"/proc/{pid}/io").read_text()).group(1))
    except (OSError, AttributeError):
        return None


def measure(*, broker, daemon, port, route, topics, n, msgs, warm, warm_n, rate, wait, run_dir, producer_in_child,
            counted, host_re, out=None, quiet_wait=5.0):
    """One measured run on a started daemon: warm-up messages first (they must land), then the
    load from loggen, watched until every record landed (or `wait` s after loggen exited).
    Without topics the route writes `out` (a file): "landed" is then the moment it reached its
    final size. Before a counted run it waits up to quiet_wait s for other processes to use
    < 0.3 cores. Stops the daemon; returns the run's record."""
    from confluent_kafka import Consumer
    to_kafka = bool(topics)
    wm = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "bench-wm", "log_level": 3})
    sizes = []
    try:
        # Warm-up messages first: the producer is connected and has the topics' metadata.
        loggen(port, warm, 1000, run_dir / "loggen-warm.log")
        deadline = time.monotonic() + 20
        while (landed_count(wm, topics) < warm_n) if to_kafka else (not out.exists() or out.stat().st_size == 0):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{route}: the warm-up messages did not land in 20 s")
            time.sleep(0.05)
        others_before = wait_quiet(broker, max_wait=quiet_wait) if counted else None
        child = next(iter(daemon.kids()), None)
        pids = {daemon.name: daemon.p.pid, "child": child}
        producer = child if producer_in_child else daemon.p.pid
        cpu0 = {k: cpu_seconds(p) for k, p in pids.items() if p}
        rdk0 = thread_cpu(producer)
        k0, busy0, self0 = cpu_seconds(broker.pid), busy_seconds(), cpu_seconds(os.getpid())

        t0 = time.time()
        # loggen runs in a thread of its own so this one can watch; it is started first.
        lg = {}
        th = threading.Thread(target=lambda: lg.update(loggen(port, msgs, rate, run_dir / "loggen.log"), done=time.time()))
        th.start()
        deadline = None
        reads = []  # (time, bytes the child had read): when the daemon had handed it everything
        while True:
            if child:
                reads.append((time.time(), read_chars(child)))
            if not th.is_alive() and "done" not in lg:
                raise RuntimeError(f"loggen failed: {(run_dir / 'loggen.log').read_text()[-2000:]}")
            if to_kafka:
                if landed_count(wm, topics) >= n + warm_n:
                    break
                time.sleep(0.05)
            else:
                sizes.append((time.time(), out.stat().st_size))
                # All of them: the size has not changed for 0.5 s after loggen exited.
                if "done" in lg and len(sizes) > 50 and sizes[-1][1] == sizes[-51][1] and sizes[-51][0] > lg["done"]:
                    break
                time.sleep(0.01)
            if "done" in lg and deadline is None:
                deadline = time.monotonic() + wait
            if deadline is not None and time.monotonic() > deadline:
                break
        th.join()
        t_seen = time.time() - t0
        cpu = {k: cpu_seconds(p) - cpu0[k] for k, p in pids.items() if p}
        rdk = thread_cpu(producer) - rdk0
        broker_cpu = cpu_seconds(broker.pid) - k0
        busy = busy_seconds() - busy0
        mine = cpu_seconds(os.getpid()) - self0
        syscr = None
        if child:  # how many read()s the child needed for the messages
            try:
                syscr = int(re.search(r"syscr: (\d+)", Path(f"/proc/{child}/io").read_text()).group(1))
            except (OSError, AttributeError):
                pass
    finally:
        daemon.stop()
    t0_ms = t0 * 1000
    sample = None
    if to_kafka:
        ends = watermarks(wm, topics)
        recs, sample = read_topics(broker.bootstrap, ends, host_re)
        seqs = [s for _, s, _ in recs if s is not None]
        distinct = set(seqs)
        landed = sum(1 for s in distinct if 0 <= s < n)
        bench_ts = [ts for ts, s, _ in recs if s is not None]
        first_ms, last_ms = (min(bench_ts), max(bench_ts)) if bench_ts else (None, None)
        dup, keys_ok, records = len(seqs) - len(distinct), all(k for _, s, k in recs if s is not None), len(recs)
    else:
        ends = None
        data = out.read_bytes()
        # One sequence number per line (a line may hold it twice: rsyslog's %jsonmesg% has msg and rawmsg).
        seqs = [int(m.group(1)) for line in data.splitlines() if (m := SEQ.search(line))]
        distinct = set(seqs)
        landed, dup, keys_ok, records = sum(1 for s in distinct if 0 <= s < n), len(seqs) - len(distinct), True, len(seqs)
        final = out.stat().st_size
        warm_size = sizes[0][1] if sizes else 0
        first_ms = next((t * 1000 for t, z in sizes if z > warm_size), None)
        last_ms = next((t * 1000 for t, z in sizes if z == final), None)
    wm.close()
    reads = [(t, c) for t, c in reads if c is not None]
    child_read_all = next((t - t0 for t, c in reads if c == reads[-1][1]), None) if reads else None
    # Records landed by each quarter second after the first was sent.
    if to_kafka and last_ms:
        rel = sorted((ts - t0_ms) / 1000 for ts, s, _ in recs if s is not None)
        timeline = [sum(1 for x in rel if x <= q / 4) for q in range(1, int(rel[-1] * 4) + 2)]
    else:
        timeline = None
    kpipe_err = (run_dir / "kpipe.stderr").read_text().strip() if (run_dir / "kpipe.stderr").exists() else ""
    r = {
        "route": route, "topics": topics if to_kafka else [str(out)], "counted": counted,
        "first_sent_to_last_landed_s": (last_ms - t0_ms) / 1000 if last_ms else None,
        "first_sent_to_first_landed_s": (first_ms - t0_ms) / 1000 if first_ms else None,
        "loggen_exited_s": lg.get("done", t0) - t0, "loggen": {k: v for k, v in lg.items() if k != "done"}, "watched_until_s": t_seen,
        "records": records, "landed": landed, "lost": n - landed, "duplicated": dup, "keys_ok": keys_ok,
        "per_partition": ends,
        "cpu_s": cpu, "rdkafka_broker_thread_cpu_s": rdk if to_kafka else None, "broker_cpu_s": broker_cpu,
        "child_read_syscalls": syscr, "child_read_all_s": child_read_all, "landed_by_quarter_s": timeline,
        "others_cores": max(0.0, (busy - sum(cpu.values()) - broker_cpu - lg.get("cpu_s", 0) - mine) / max(t_seen, 1e-9)),
        "others_cores_before": others_before,
        "kpipe_stderr": kpipe_err[-2000:], "sample": sample,
    }
    log(f"{'' if counted else '(warm-up) '}{route:12s} {r['first_sent_to_last_landed_s'] or 0:.3f} s first sent -> last landed; "
        f"{landed:,} of {n:,} landed, {dup} dup{'' if keys_ok else ', KEYS WRONG'}; loggen exited {r['loggen_exited_s']:.2f} s "
        f"({lg.get('rate', 0):,.0f} msg/s)" + (f"; child had read all {child_read_all:.2f} s" if child_read_all else "") + "; CPU " + ", ".join(f"{k} {v:.2f} s" for k, v in cpu.items())
        + (f" (librdkafka broker thread {rdk:.2f} s)" if to_kafka else "")
        + f", Kafka {broker_cpu:.2f} s, loggen {lg.get('cpu_s', 0):.2f} s; others {r['others_cores']:.2f} cores")
    return r


def plan(routes, reference, runs, stamp, warm_up):
    """(route, tag, counted): one uncounted round first (unless not warm_up), then `runs` rounds,
    the routes alternating and the reference routes rotating."""
    out = [(rt, f"{stamp}-w", False) for rt in routes] if warm_up else []
    for i in range(runs):
        order = routes if i % 2 == 0 else routes[::-1]
        if reference:
            order = order + reference[i % len(reference):] + reference[:i % len(reference)]
        out += [(rt, f"{stamp}-{i + 1}", True) for rt in order]
    return out


def medians(runs, routes):
    return {rt: statistics.median(r["first_sent_to_last_landed_s"] or float("inf") for r in runs if r["route"] == rt and r["counted"])
            for rt in routes if any(r["route"] == rt and r["counted"] for r in runs)}


def fmt_s(x):
    return f"{x:.2f} s" if x is not None else "–"


def med_of(rs, f):
    xs = [f(r) for r in rs if f(r) is not None]
    return statistics.median(xs) if xs else None


def total_cpu(rs):
    """Median CPU seconds of the daemon, its child, the broker and loggen in a run."""
    return med_of(rs, lambda r: sum(r["cpu_s"].values()) + r["broker_cpu_s"] + r["loggen"].get("cpu_s", 0))


def pkg_version(name):
    try:
        return sh(["dpkg-query", "-W", "-f", "${Version}", name]).strip()
    except subprocess.CalledProcessError:
        return "?"


def kpipe_info(kpipe, rev=None):
    """What identifies the kpipe binary measured; `rev` names the commit it was built from
    (default: HEAD of the work tree now, with whether src/ had uncommitted changes)."""
    st = kpipe.stat()
    return {"kpipe_path": str(kpipe),
            "kpipe_version": sh([str(kpipe), "--version"]).strip().splitlines()[0],
            "kpipe_sha256": sh(["sha256sum", str(kpipe)]).split()[0],
            "kpipe_mtime": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(st.st_mtime)),
            "git_head": rev or sh(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT).strip(),
            "src_dirty": False if rev else bool(sh(["git", "status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock"], cwd=ROOT).strip())}


def kpipe_desc(e):
    """The kpipe binary of a results file's env, for a report."""
    path = Path(e.get("kpipe_path", ROOT / "target" / "release" / "kpipe"))
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    return (f"`{shown}` ({e['kpipe_version'].splitlines()[0]}, built {e['kpipe_mtime']}, sha256 `{e['kpipe_sha256'][:12]}`; "
            f"HEAD `{e['git_head']}`{', src/ had uncommitted changes' if e['src_dirty'] else ''})")


def kpipe_binary(path):
    """The kpipe to measure: `path`, else target/release/kpipe (built if missing)."""
    kpipe = Path(path).resolve() if path else ROOT / "target" / "release" / "kpipe"
    if not kpipe.exists():
        if path:
            sys.exit(f"no {kpipe}")
        log("building target/release/kpipe")
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    if not shutil.which("loggen"):
        sys.exit("loggen not found (Debian syslog-ng-core)")
    return kpipe


def publish(section, after=None):
    """Says where the section file is: BENCHMARKS.md links the reports of bench/syslog-ng,
    bench/rsyslog and bench/transactions rather than holding them (`after` is kept for the
    callers)."""
    print(f"report: {section.relative_to(ROOT)} (linked from BENCHMARKS.md)")
