#!/usr/bin/python3
"""Runs one libFuzzer target for a bounded time on a fresh copy of its seed corpus: the meson
suite libfuzzer of a -Dfuzzing=true build (tests/fuzz/README.md).

usage: run_libfuzzer.py FUZZER WORKDIR SECONDS [--pcaps DIR] SEED...

WORKDIR (in the build directory) is emptied, then holds corpus/ (the seeds, and the inputs
libFuzzer adds) and artifacts/ (a crashing input, if any): nothing is written into the source
tree. DS_FUZZ_SECONDS, when set, replaces SECONDS. With --pcaps, the corpus also gets the first
frames of each classic pcap in DIR, written as fuzz_decode.c reads its input (a link-type byte,
then the frame). Exits with libFuzzer's status: 0 when it found nothing.
"""
import os
import re
import shutil
import struct
import subprocess
import sys

# fuzz_decode.c's links[]: pcap link type -> index (libpcap reads LINKTYPE_RAW as DLT_RAW)
LINKS = {1: 0, 113: 1, 276: 2, 101: 3, 12: 3, 14: 4, 228: 6, 229: 7, 0: 8, 108: 9, 239: 10}
FRAMES_PER_FILE = 4
FRAMES_MAX = 48
FRAME_BYTES = 2048


def pcap_frames(path):
    """The first frames of a classic pcap file as (link index, truncated, bytes); [] for others."""
    with open(path, "rb") as f:
        head = f.read(24)
        if len(head) < 24:
            return []
        for endian in "<>":
            magic, = struct.unpack(endian + "I", head[:4])
            if magic in (0xA1B2C3D4, 0xA1B23C4D):
                break
        else:
            return []  # pcapng or not a capture
        link = struct.unpack(endian + "I", head[20:24])[0] & 0xFFFF
        if link not in LINKS:
            return []
        frames = []
        while len(frames) < FRAMES_PER_FILE:
            rec = f.read(16)
            if len(rec) < 16:
                break
            _, _, incl, orig = struct.unpack(endian + "IIII", rec)
            data = f.read(incl)
            if len(data) < incl:
                break
            cut = incl < orig or incl > FRAME_BYTES
            frames.append((LINKS[link], cut, data[:FRAME_BYTES]))
        return frames


def add_pcap_seeds(pcap_dir, corpus):
    n = 0
    for name in sorted(os.listdir(pcap_dir)):
        if n >= FRAMES_MAX:
            break
        try:
            frames = pcap_frames(os.path.join(pcap_dir, name))
        except OSError:
            continue
        for i, (link, cut, data) in enumerate(frames):
            if n >= FRAMES_MAX:
                break
            with open(os.path.join(corpus, "pcap-%s-%d.bin" % (name, i)), "wb") as out:
                out.write(bytes([link | (0x80 if cut else 0)]) + data)
            n += 1
    return n


def main(argv):
    if len(argv) < 4:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    fuzzer, workdir, seconds = argv[1], argv[2], os.environ.get("DS_FUZZ_SECONDS") or argv[3]
    seeds = argv[4:]
    pcaps = None
    if seeds[:1] == ["--pcaps"]:
        pcaps, seeds = seeds[1], seeds[2:]
    name = os.path.basename(fuzzer)
    corpus, artifacts = os.path.join(workdir, "corpus"), os.path.join(workdir, "artifacts")
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(corpus)
    os.makedirs(artifacts)
    for s in seeds:
        shutil.copy(s, corpus)
    extra = add_pcap_seeds(pcaps, corpus) if pcaps and os.path.isdir(pcaps) else 0
    print("%s: %d seeds%s, %s s" % (name, len(seeds),
                                    " + %d frames from %s" % (extra, pcaps) if extra else "",
                                    seconds), flush=True)
    env = dict(os.environ)
    env.setdefault("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1")
    cmd = [fuzzer, "-max_total_time=%d" % int(seconds), "-rss_limit_mb=2048", "-timeout=30",
           "-print_final_stats=1", "-artifact_prefix=" + artifacts + "/", corpus]
    proc = subprocess.run(cmd, env=env, stderr=subprocess.PIPE, text=True, errors="replace")
    sys.stderr.write(proc.stderr)
    stats = dict(re.findall(r"^stat::(\w+):\s*(\d+)", proc.stderr, re.M))
    print("%s: %s runs, %s exec/s, corpus %d -> %d inputs, exit %d" % (
        name, stats.get("number_of_executed_units", "?"), stats.get("average_exec_per_sec", "?"),
        len(seeds) + extra, len(os.listdir(corpus)), proc.returncode))
    if proc.returncode != 0:
        for a in sorted(os.listdir(artifacts)):
            path = os.path.join(artifacts, a)
            print("%s: crashing input %s\n  reproduce: %s %s\n  keep it: cp %s "
                  "tests/fuzz/corpus/regress-%s-SHORT.bin (and list it in tests/fuzz/meson.build)"
                  % (name, path, fuzzer, path, path, name[len("fuzz_"):]))
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv))
