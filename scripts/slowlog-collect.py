"""Drain a server's SLOWLOG while a run goes on, and sum it per command.

    python3 scripts/slowlog-collect.py PORT LUA_DIR OUT   # until SIGTERM, then writes OUT

Every 0.2 s it takes and clears the log in one MULTI/EXEC, so no entry is lost to
slowlog-max-len (a lost one would show as a gap in the entry ids beyond the one each
drain's own EXEC leaves: printed as "dropped"). EVALSHA is named by the script (SHA1
of lib.lua + its file, as smppd loads them). Commands a script runs are logged too: a
script's time includes them.
"""
import hashlib, os, signal, socket, sys, time

port, lua, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
lib = open(os.path.join(lua, "lib.lua"), "rb").read()
names = {}
for f in os.listdir(lua):
    body = open(os.path.join(lua, f), "rb").read()
    for src in (lib + body, body):
        names[hashlib.sha1(src).hexdigest()[:8]] = f[:-4]

s = socket.create_connection(("127.0.0.1", port))
rf = s.makefile("rb")


def read():
    l = rf.readline()
    t, r = l[:1], l[1:-2]
    if t == b"*":
        n = int(r)
        return None if n < 0 else [read() for _ in range(n)]
    if t == b"$":
        n = int(r)
        return None if n < 0 else rf.read(n + 2)[:-2]
    if t == b"-":
        raise SystemExit(f"slowlog-collect: {r.decode()}")
    return r


def cmd(*args):
    s.sendall(b"".join([b"*%d\r\n" % len(args)] + [b"$%d\r\n%s\r\n" % (len(a), a) for a in args]))


tot, last_id, dropped, drains, stop = {}, None, 0, 0, False


def drain():
    global last_id, dropped, drains
    drains += 1
    cmd(b"MULTI"), cmd(b"SLOWLOG", b"GET", b"-1"), cmd(b"SLOWLOG", b"RESET"), cmd(b"EXEC")
    read(), read(), read()
    entries = read()[0]
    for e in reversed(entries):  # oldest first
        i = int(e[0])
        if last_id is not None and i != last_id + 1:
            dropped += i - last_id - 1
        last_id = i
        a = e[3]
        sha = a[1].decode()[:8] if a[0].lower() == b"evalsha" else None
        k = a[0].decode().lower() + (" " + names.get(sha, sha) if sha else "")
        n, us = tot.get(k, (0, 0))
        tot[k] = (n + 1, us + int(e[2]))


def on_term(*_):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_term)
signal.signal(signal.SIGINT, on_term)
while not stop:
    drain()
    time.sleep(0.2)
drain()
with open(out, "w") as o:
    for k, (n, us) in sorted(tot.items(), key=lambda x: -x[1][1]):
        o.write(f"{k:24s} calls={n:9d} usec={us:10d} per={us / n:9.1f}\n")
    # Each drain's EXEC takes an entry id that the next RESET clears unseen.
    o.write(f"dropped {max(dropped - (drains - 1), 0)} entries\n")
