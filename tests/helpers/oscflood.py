"""The OSC flood's sender, in a process of its own (tests/test_fuzz_osc.py):
malformed, oversized, pathological and valid packets at full rate.

`python tests/helpers/oscflood.py PORT SEED PACKETS SECONDS` sends at least PACKETS
packets to 127.0.0.1:PORT and goes on for at least SECONDS, then prints what it sent as
JSON (`run_flood` runs it so and reads that). It builds the packets itself with the
standard library only (an OSC implementation of its own: `message`, `bundle`, `nested`,
and a quick start), so that it shares nothing with the server it floods.
"""

import json
import random
import socket
import struct
import subprocess
import sys
import time
from collections import Counter

#: UDP payloads are at most 65 507 bytes over IPv4; the oversized family stays under.
MAX_PAYLOAD = 65_000
IMMEDIATELY = 1
FAMILIES = ("random", "truncated", "oversized", "typetags", "bundles", "patterns", "valid")
WEIGHTS = (20, 15, 4, 15, 15, 15, 16)


# -- OSC built by hand (the sender's own implementation) -----------------------------------


def osc_string(text) -> bytes:
    """An OSC string: the bytes, a NUL, padded to a multiple of 4."""
    data = text.encode() if isinstance(text, str) else bytes(text)
    return data + b"\0" * (4 - len(data) % 4)


def osc_blob(data: bytes) -> bytes:
    return struct.pack(">i", len(data)) + data + b"\0" * (-len(data) % 4)


_PACK = {"i": ">i", "f": ">f", "d": ">d", "h": ">q"}


def message(address, tags: str = "", *args) -> bytes:
    """An OSC message; `tags` without the comma, one argument per data-carrying tag."""
    out = [osc_string(address), osc_string("," + tags)]
    values = iter(args)
    for tag in tags:
        if tag in _PACK:
            out.append(struct.pack(_PACK[tag], next(values)))
        elif tag == "s":
            out.append(osc_string(next(values)))
        elif tag == "b":
            out.append(osc_blob(next(values)))
    return b"".join(out)


def bundle(*elements: bytes, timetag: int = IMMEDIATELY) -> bytes:
    return (
        b"#bundle\0" + timetag.to_bytes(8, "big") + b"".join(struct.pack(">i", len(e)) + e for e in elements)
    )


def nested(inner: bytes, depth: int) -> bytes:
    """`inner` wrapped in `depth` bundles (built outside in, without copying it `depth` times)."""
    headers, size = [], len(inner)
    for _ in range(depth):
        headers.append(b"#bundle\0" + IMMEDIATELY.to_bytes(8, "big") + struct.pack(">i", size))
        size += 20
    return b"".join(reversed(headers)) + inner


# -- the families ------------------------------------------------------------------------------


def valid(rng: random.Random) -> bytes:
    """A well-formed command or query, as a control surface sends them (never a preset
    change or an output pause: those change what the test measures)."""
    choice = rng.randrange(10)
    if choice == 0:
        return message("/synd/hue", "f", rng.random())
    if choice == 1:
        return message("/synd/intensity", "f", rng.uniform(0.0, 2.0))
    if choice == 2:
        return message("/synd/feedback", "d", rng.uniform(0.0, 0.99))
    if choice == 3:
        return message("/synd/gain", "i", rng.randrange(0, 9))
    if choice == 4:
        return message("/synd/crossfade", "f", rng.random())
    if choice == 5:
        return message("/synd/freeze/toggle")
    if choice == 6:
        return message("/synd/blackout", rng.choice("TF"))
    if choice == 7:
        return message(rng.choice(["/synd/status", "/synd/intensity", "/synd/{hue,gain}"]))
    if choice == 8:
        return message("/synd/cut", "i", 1)
    return bundle(*(valid(rng) for _ in range(rng.randrange(1, 4))))


def random_bytes(rng: random.Random) -> bytes:
    n = rng.choice([rng.randrange(1, 64), rng.randrange(64, 1500), rng.randrange(1500, 9000)])
    prefix = rng.choice([b"", b"/", b"/synd/", b"#bundle\0", b"#bundle\0" + bytes(8)])
    return prefix + rng.randbytes(n)


def truncated(rng: random.Random) -> bytes:
    packet = valid(rng)
    return packet[: rng.randrange(1, len(packet))]


def oversized(rng: random.Random) -> bytes:
    n = rng.choice([rng.randrange(2000, 16000), rng.randrange(16000, MAX_PAYLOAD - 64)])
    choice = rng.randrange(7)
    if choice == 0:
        return message("/synd/preset", "s", "x" * n)  # a huge (unknown) name
    if choice == 1:
        return message("/synd/hue", "b", rng.randbytes(n))  # a huge blob
    if choice == 2:
        return message("/synd/" + "a" * n, "f", 0.5)  # a huge address
    if choice == 3:
        one = message("/synd/hue", "f", 0.5)
        return bundle(*[one] * (n // (len(one) + 4)))  # thousands of messages
    if choice == 4:
        count = n // 8
        return message("/synd/hue", "f" * count, *[0.5] * count)  # thousands of arguments
    if choice == 5:
        return b"/" + rng.randbytes(n)
    return message("/synd/hue", "b" * 4, *[rng.randbytes(n // 4)] * 4)


TAG_POOL = "ifsbhdTFNIScrmt[]x?\x00\x7f\xff"


def typetags(rng: random.Random) -> bytes:
    address = osc_string(rng.choice(["/synd/hue", "/synd/preset", "/synd/fade", "/synd/x"]))
    choice = rng.randrange(6)
    if choice == 0:  # random tags, random (usually too short) payload
        tags = "".join(rng.choice(TAG_POOL) for _ in range(rng.randrange(1, 24)))
        return address + osc_string("," + tags) + rng.randbytes(rng.randrange(0, 16))
    if choice == 1:  # tags claiming more arguments than the packet holds
        tags = rng.choice(["ff", "fff", "ss", "b", "iiii", "dd", "h"])
        return address + osc_string("," + tags) + struct.pack(">f", 0.5)
    if choice == 2:  # no comma
        return address + osc_string("ff") + struct.pack(">ff", 0.1, 0.2)
    if choice == 3:  # unterminated tags
        return address + b",fff" + struct.pack(">f", 0.5)[: rng.randrange(0, 3)]
    if choice == 4:  # unbalanced or deep arrays
        tags = rng.choice(["[", "]", "[[f]", "[f]]", "[" * 200 + "]" * 200, "[" * 5 + "f" + "]" * 5])
        return address + osc_string("," + tags) + struct.pack(">f", 0.5)
    return address + osc_string(",b") + struct.pack(">i", rng.choice([-4, -1, 2**31 - 1, 1000]))


def lying(inner: bytes, size: int) -> bytes:
    """A bundle holding `inner` under an element size of `size`."""
    return b"#bundle\0" + IMMEDIATELY.to_bytes(8, "big") + struct.pack(">i", size) + inner


def bundles(rng: random.Random) -> bytes:
    inner = valid(rng)
    choice = rng.randrange(8)
    if choice == 0:
        return nested(inner, rng.choice([9, 50, 1000]))  # too deep
    if choice == 1:
        return nested(inner, rng.randrange(1, 8))  # deep but allowed
    if choice == 2:  # an element size larger than what follows
        return lying(inner, len(inner) + rng.randrange(1, 10**6))
    if choice == 3:  # smaller, zero or negative
        return lying(inner, rng.choice([len(inner) - 4, 0, -8, -(2**31)]))
    if choice == 4:  # a lie deep inside
        return nested(lying(inner, 10**6), rng.randrange(1, 6))
    if choice == 5:
        return b"#bundle\0" + bytes(rng.randrange(0, 8))  # no complete time tag
    if choice == 6:  # an element that is neither message nor bundle
        junk = rng.randbytes(4 * rng.randrange(1, 16))
        return bundle(inner, b"x" + junk[1:])
    return bundle(inner, bundle())  # an empty bundle inside


def patterns(rng: random.Random) -> bytes:
    words = ["hue", "gain", "intensity", "x", "", "preset", "toggle"]
    choice = rng.randrange(10)
    if choice == 0:
        address = "/*" * rng.randrange(1, 120)
    elif choice == 1:
        address = "/synd/{" + ",".join(rng.choices(words, k=rng.randrange(2, 3000))) + "}"
    elif choice == 2:
        address = "/synd/{" + ",".join(rng.choices(words, k=rng.randrange(2, 40))) + "}"
    elif choice == 3:
        address = "/synd/[" + "".join(rng.choice("abc-!^*") for _ in range(rng.randrange(0, 30)))
    elif choice == 4:
        address = rng.choice(["//", "//*", "/synd//toggle", "//synd/hue", "/synd/*//"])
    elif choice == 5:
        address = "/synd/" + "*" * rng.randrange(1, 300) + "x"
    elif choice == 6:
        address = "/synd/" + "*a" * rng.randrange(1, 60) + "x"
    elif choice == 7:
        address = "/synd/" + "?" * rng.randrange(1, 250)
    elif choice == 8:
        address = rng.choice(
            [
                "/synd/[!a-z]*",
                "/synd/[z-a]",
                "/synd/{hue,gain",
                "/synd/{}",
                "/synd/}",
                "/synd/]",
                "/synd/*/*/*/*",
                "/synd/[]",
                "/[!/]*",
            ]
        )
    else:
        address = "/synd/" + "".join(rng.choices("*?[]{},!-/ab", k=rng.randrange(1, 60)))
    return message(address, "f", 0.5) if rng.random() < 0.7 else message(address)


MAKERS = {
    "random": random_bytes,
    "truncated": truncated,
    "oversized": oversized,
    "typetags": typetags,
    "bundles": bundles,
    "patterns": patterns,
    "valid": valid,
}


def flood(port: int, seed: int, packets: int, seconds: float) -> dict:
    """Send at least `packets` packets for at least `seconds` to 127.0.0.1:`port` as fast
    as this process can; what was sent, by family, with the time span (monotonic)."""
    rng = random.Random(seed)
    sent, errors = Counter(), Counter()
    nbytes = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(("127.0.0.1", port))
        began = time.monotonic()
        total = 0
        while total < packets or time.monotonic() - began < seconds:
            family = rng.choices(FAMILIES, WEIGHTS)[0]
            packet = MAKERS[family](rng)
            try:
                sock.send(packet)
            except OSError as exc:  # ENOBUFS, or ECONNREFUSED after a reply bounced
                errors[type(exc).__name__] += 1
                continue
            sent[family] += 1
            nbytes += len(packet)
            total += 1
        ended = time.monotonic()
    return {"sent": dict(sent), "errors": dict(errors), "bytes": nbytes, "began": began, "ended": ended}


def run_flood(port: int, seed: int, packets: int, seconds: float) -> dict:
    """`flood` in a process of its own (so the sender does not share the interpreter
    lock with the engine it floods)."""
    done = subprocess.run(
        [sys.executable, __file__, str(port), str(seed), str(packets), str(seconds)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


if __name__ == "__main__":
    print(json.dumps(flood(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))))
    sys.exit(0)
