#!/usr/bin/env python3
"""The write-ahead log under rnnd's checkpoints, with the store's settings (16 KiB pages, WAL,
synchronous = FULL, journal_size_limit = 64 MiB), in SQLite through Python's sqlite3 (the same
system library rnnd links): what a checkpoint of N records costs with and without a
wal_checkpoint(TRUNCATE) after each commit, and how big the WAL stays after a checkpoint of every
stream followed by ordinary ones. docs/checkpoints.md, "Crash safety", quotes its figures.

Usage: bench/wal.py [--dir DIR] (writes and removes a scratch database there; default /tmp)
"""
import argparse, os, sqlite3, statistics, tempfile, time

LIMIT = 64 << 20


def open_store(path):
    for suffix in ["", "-wal", "-shm"]:
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA page_size = 16384")
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")
    db.execute(f"PRAGMA journal_size_limit = {LIMIT}")
    db.execute("CREATE TABLE streams(id BLOB PRIMARY KEY, record BLOB NOT NULL, saved_at REAL NOT NULL)")
    return db


def checkpoint(db, count, blob):
    db.execute("BEGIN IMMEDIATE")
    for i in range(count):
        db.execute("INSERT OR REPLACE INTO streams VALUES (?, ?, ?)", (b"s%d" % i, blob, time.time()))
    db.execute("COMMIT")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", default=tempfile.gettempdir())
    args = parser.parse_args()
    path = os.path.join(args.dir, f"rnnd-wal-bench-{os.getpid()}.sqlite")
    print(f"SQLite {sqlite3.sqlite_version}")
    print("| records | record | commit (WAL kept) | commit + TRUNCATE | WAL kept | WAL after TRUNCATE |")
    print("|---|---|---|---|---|---|")
    for count, size in [(2000, 54_000), (1000, 226_000)]:
        blob = os.urandom(size)
        times = {}
        for truncate in [False, True]:
            db = open_store(path)
            rounds = []
            for _ in range(4):
                t = time.perf_counter()
                checkpoint(db, count, blob)
                if truncate:
                    db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
                rounds.append(time.perf_counter() - t)
            times[truncate] = (statistics.median(rounds[1:]), os.path.getsize(path + "-wal"))
            db.close()
        print(f"| {count} | {size // 1000} kB | {times[False][0]:.3f} s | {times[True][0]:.3f} s "
              f"| {times[False][1] / 1e6:.1f} MB | {times[True][1] / 1e6:.1f} MB |")

    print()
    print("The WAL after a checkpoint of every stream, then ordinary ones (54 kB records):")
    db = open_store(path)
    blob = os.urandom(54_000)
    for label, count in [("every stream", 4000), ("200 changed", 200), ("2000 changed", 2000), ("200 changed", 200)]:
        checkpoint(db, count, blob)
        print(f"  {label:>12}: {count * 54_000 / 1e6:6.1f} MB written, WAL {os.path.getsize(path + '-wal') / 1e6:6.1f} MB")
    db.close()
    for suffix in ["", "-wal", "-shm"]:
        if os.path.exists(path + suffix):
            os.remove(path + suffix)


if __name__ == "__main__":
    main()
