#!/usr/bin/env python3
# SPDX-License-Identifier: ((GPL-2.0 WITH Linux-syscall-note) OR BSD-3-Clause)
"""A small consumer of YNL netlink-raw specs.

It reads nothing but a spec (spec/conntrack.yaml, or any netlink-raw spec)
and talks to the kernel with what the spec says: message types, fixed
header, attribute sets, definitions and multicast groups. It builds its
tables the way the kernel's YNL library (tools/net/ynl/pyynl) does, so
that it decodes what a YNL consumer decodes:

- attributes and enum entries without a value take the previous value
  plus one (attributes start at 1, entries at value-start or 0);
- a value listed under several names maps to the last name listed;
- with enum-model directional, request and reply values are counted
  apart, a notification (notify or event) takes its value as a reply
  value, and a message type maps to the last operation listed whose
  reply or notification has that value;
- a received message is a notification only if that operation is one;
- the spec's first line must be an SPDX licence tag.

Standard library plus PyYAML. Commands print JSON:

  ynlpy.py --spec S --dump OP        one JSON array of the replies
  ynlpy.py --spec S --do OP          one JSON array (the reply, if any)
  ynlpy.py --spec S --subscribe G1,G2 [--duration SEC]
                                     a line "# subscribed", then one JSON
                                     object a line per notification
  ynlpy.py --spec S --names SET      the set's value-to-name table, and
                                     that of message types to operations
"""

import argparse
import ipaddress
import json
import os
import select
import socket
import struct
import sys
import time

import yaml

NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300
NLA_TYPE_MASK = 0x3FFF
SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP = 1

SCALARS = {"u8": "B", "u16": "H", "u32": "I", "u64": "Q",
           "s8": "b", "s16": "h", "s32": "i", "s64": "q"}


class SpecError(Exception):
    """The spec says something this consumer cannot use."""


class Enum:
    """An enum or flags definition: entries by name and by raw value."""

    def __init__(self, d):
        self.name = d["name"]
        self.flags = d["type"] == "flags"
        self.by_name = {}
        self.by_val = {}
        val = d.get("value-start", 0)
        for e in d.get("entries", []):
            if isinstance(e, str):
                e = {"name": e}
            if "value" in e:
                val = e["value"]
            self.by_name[e["name"]] = val
            self.by_val[val] = e["name"]  # the last name of a value wins
            val += 1

    def decode(self, raw, as_flags):
        if self.flags or as_flags:
            out, bit = [], 0
            while raw:
                if raw & 1:
                    out.append(self.by_val.get(bit, "bit-%d" % bit))
                raw >>= 1
                bit += 1
            return out
        return self.by_val.get(raw, raw)


class AttrSet:
    """An attribute set: attributes by name and by type value."""

    def __init__(self, s):
        if "subset-of" in s:
            raise SpecError("set %s: subset-of is not supported" % s["name"])
        self.name = s["name"]
        self.by_name = {}
        self.by_val = {}
        val = 1
        for a in s["attributes"]:
            if "value" in a:
                val = a["value"]
            a = dict(a, value=val)
            self.by_name[a["name"]] = a
            self.by_val[val] = a  # the last name of a value wins
            val += 1


class Op:
    """An operation with its request and reply message types."""

    def __init__(self, y, req, rsp):
        self.y = y
        self.name = y["name"]
        self.req = req
        self.rsp = rsp
        self.is_async = "notify" in y or "event" in y


class Family:
    """A loaded spec."""

    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            if not f.readline().startswith("# SPDX-License-Identifier: "):
                raise SpecError("%s: the first line is not an SPDX licence tag" % path)
            f.seek(0)
            y = yaml.safe_load(f)
        if y.get("protocol") != "netlink-raw":
            raise SpecError("%s: protocol is not netlink-raw" % path)
        self.y = y
        self.protonum = y["protonum"]
        self.enums, self.structs = {}, {}
        for d in y.get("definitions", []):
            if d["type"] in ("enum", "flags"):
                self.enums[d["name"]] = Enum(d)
            elif d["type"] == "struct":
                self.structs[d["name"]] = d
        self.sets = {s["name"]: AttrSet(s) for s in y["attribute-sets"]}
        ops = y["operations"]
        self.fixed_header = ops.get("fixed-header")
        self.ops = {}
        if ops.get("enum-model", "unified") == "directional":
            self._directional(ops["list"])
        else:
            self._unified(ops["list"])
        self.rsp_by_value = {}
        for op in self.ops.values():  # spec order: the last one wins
            if op.rsp is not None:
                self.rsp_by_value[op.rsp] = op
        self.async_ids = {op.rsp for op in self.ops.values() if op.is_async}
        self.groups = {}
        for g in y.get("mcast-groups", {}).get("list", []):
            self.groups[g["name"]] = g["value"]

    def _unified(self, lst):
        val = 1
        for y in lst:
            val = y.get("value", val)
            self.ops[y["name"]] = Op(y, val, val)
            val += 1

    def _directional(self, lst):
        req = rsp = 1
        for y in lst:
            if "notify" in y or "event" in y:
                rsp = y.get("value", rsp)
                self.ops[y["name"]] = Op(y, None, rsp)
                rsp += 1
                continue
            mode = y.get("do") or y.get("dump")
            if mode is None:
                raise SpecError("operation %s: no do, dump, notify or event" % y["name"])
            v = mode.get("request", {}).get("value")
            if v:
                req = v
            v = mode.get("reply", {}).get("value")
            if v:
                rsp = v
            has_reply = "reply" in mode
            self.ops[y["name"]] = Op(y, req, rsp if has_reply else None)
            req += 1
            if has_reply:
                rsp += 1

    def op_attr_set(self, op):
        name = op.y.get("attribute-set")
        if name is None and "notify" in op.y:
            name = self.ops[op.y["notify"]].y.get("attribute-set")
        return self.sets[name]

    def op_fixed_header(self, op):
        return op.y.get("fixed-header", self.fixed_header)

    # Decoding.

    def struct_size(self, name):
        if name is None:
            return 0
        size = 0
        for m in self.structs[name]["members"]:
            if m["type"] in SCALARS:
                size += struct.calcsize(SCALARS[m["type"]])
            else:
                size += int(m["len"])
        return size

    def decode_struct(self, name, data):
        out, off = {}, 0
        for m in self.structs[name]["members"]:
            t = m["type"]
            if t in SCALARS:
                fmt = (">" if m.get("byte-order") == "big-endian" else "=") + SCALARS[t]
                n = struct.calcsize(fmt)
                if off + n > len(data):
                    raise ValueError("struct %s: member %s: short data" % (name, m["name"]))
                v = struct.unpack_from(fmt, data, off)[0]
                if "enum" in m:
                    v = self.enums[m["enum"]].decode(v, m.get("enum-as-flags", False))
                elif m.get("display-hint") == "ipv4":
                    v = str(ipaddress.IPv4Address(v))
                out[m["name"]] = v
                off += n
            else:
                n = int(m["len"])
                if t != "pad":
                    out[m["name"]] = data[off:off + n].hex()
                off += n
        return out

    def decode_scalar(self, spec, data):
        t = spec["type"]
        fmt = (">" if spec.get("byte-order") == "big-endian" else "=") + SCALARS[t]
        if len(data) != struct.calcsize(fmt):
            raise ValueError("%s: want %d bytes, got %d" % (spec["name"], struct.calcsize(fmt), len(data)))
        v = struct.unpack(fmt, data)[0]
        if "enum" in spec:
            return self.enums[spec["enum"]].decode(v, spec.get("enum-as-flags", False))
        hint = spec.get("display-hint")
        if hint == "ipv4":
            return str(ipaddress.IPv4Address(v))
        if hint == "hex":
            return hex(v)
        return v

    def decode_attrs(self, set_name, data):
        aset = self.sets[set_name]
        out = {}
        off = 0
        while off + 4 <= len(data):
            alen, atype = struct.unpack_from("=HH", data, off)
            if alen < 4 or off + alen > len(data):
                raise ValueError("set %s: attribute at %d: bad length %d" % (set_name, off, alen))
            payload = data[off + 4:off + alen]
            off += (alen + 3) & ~3
            spec = aset.by_val.get(atype & NLA_TYPE_MASK)
            if spec is None:
                out.setdefault("unknown-attributes", []).append(atype & NLA_TYPE_MASK)
                continue
            t = spec["type"]
            if t == "pad" or t == "unused":
                continue
            if t == "nest":
                v = self.decode_attrs(spec["nested-attributes"], payload)
            elif t in SCALARS:
                v = self.decode_scalar(spec, payload)
            elif t == "string":
                v = payload.split(b"\0", 1)[0].decode("utf-8", "replace")
            elif t == "flag":
                v = True
            elif t == "binary":
                if "struct" in spec:
                    v = self.decode_struct(spec["struct"], payload)
                elif spec.get("display-hint") == "ipv6" and len(payload) == 16:
                    v = str(ipaddress.IPv6Address(payload))
                elif spec.get("display-hint") == "ipv4" and len(payload) == 4:
                    v = str(ipaddress.IPv4Address(payload))
                else:
                    v = payload.hex()
            else:
                raise SpecError("set %s: attribute %s: type %s is not supported" % (set_name, spec["name"], t))
            if spec.get("multi-attr"):
                out.setdefault(spec["name"], []).append(v)
            else:
                out[spec["name"]] = v
        return out

    def decode_msg(self, op, payload):
        fh = self.op_fixed_header(op)
        n = self.struct_size(fh)
        out = {}
        if fh:
            out.update(self.decode_struct(fh, payload[:n]))
        out.update(self.decode_attrs(self.op_attr_set(op).name, payload[n:]))
        return out

    # Encoding of the fixed header, the only part of a request sent here.

    def encode_struct(self, name, values):
        b = b""
        for m in self.structs[name]["members"]:
            t = m["type"]
            if t in SCALARS:
                fmt = (">" if m.get("byte-order") == "big-endian" else "=") + SCALARS[t]
                b += struct.pack(fmt, int(values.get(m["name"], 0)))
            else:
                b += bytes(int(m["len"]))
        return b


def messages(buf):
    """Split a datagram into (type, flags, seq, payload) tuples."""
    off = 0
    while off + 16 <= len(buf):
        mlen, mtype, flags, seq, _ = struct.unpack_from("=IHHII", buf, off)
        if mlen < 16 or off + mlen > len(buf):
            raise ValueError("bad netlink message length %d" % mlen)
        yield mtype, flags, seq, buf[off + 16:off + mlen]
        off += (mlen + 3) & ~3


class Conn:
    """A netlink socket of the spec's protocol."""

    def __init__(self, fam):
        self.fam = fam
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, fam.protonum)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        self.sock.bind((0, 0))
        self.seq = int(time.time()) & 0xFFFF
        self.ntfs = []

    def request(self, name, dump, fixed):
        fam = self.fam
        op = fam.ops.get(name)
        if op is None or op.is_async:
            raise SpecError("no request operation %s" % name)
        fh = fam.op_fixed_header(op)
        payload = fam.encode_struct(fh, fixed) if fh else b""
        flags = NLM_F_REQUEST | NLM_F_ACK | (NLM_F_DUMP if dump else 0)
        self.seq += 1
        hdr = struct.pack("=IHHII", 16 + len(payload), op.req, flags, self.seq, 0)
        self.sock.send(hdr + payload)
        replies = []
        while True:
            buf = self.sock.recv(1 << 20)
            for mtype, mflags, seq, p in messages(buf):
                if seq != self.seq:
                    self.handle_ntf(mtype, mflags, p, None)
                    continue
                if mtype == NLMSG_ERROR:
                    err = struct.unpack_from("=i", p)[0]
                    if err:
                        raise OSError(-err, "%s: %s" % (name, os.strerror(-err)))
                    return replies
                if mtype == NLMSG_DONE:
                    err = struct.unpack_from("=i", p)[0] if len(p) >= 4 else 0
                    if err:
                        raise OSError(-err, "%s: %s" % (name, os.strerror(-err)))
                    if dump:
                        return replies
                    continue
                if mtype != op.rsp:
                    self.handle_ntf(mtype, mflags, p, None)
                    continue
                replies.append(fam.decode_msg(op, p))

    def subscribe(self, groups):
        for g in groups:
            if g not in self.fam.groups:
                raise SpecError("no multicast group %s" % g)
            self.sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, self.fam.groups[g])

    def handle_ntf(self, mtype, flags, payload, group):
        op = self.fam.rsp_by_value.get(mtype)
        if op is None or mtype not in self.fam.async_ids:
            print("ynlpy: unexpected message type %#x" % mtype, file=sys.stderr)
            return
        ntf = {"name": op.name, "flags": flags, "msg": self.fam.decode_msg(op, payload)}
        if group is not None:
            ntf["group"] = group
        self.ntfs.append(ntf)

    def poll(self, duration):
        end = time.monotonic() + duration
        names = {v: k for k, v in self.fam.groups.items()}
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                return
            buf, addr = self.sock.recvfrom(1 << 20)
            group = None
            if addr[1]:
                group = names.get(addr[1].bit_length())
            for mtype, flags, _, p in messages(buf):
                self.handle_ntf(mtype, flags, p, group)
            while self.ntfs:
                yield self.ntfs.pop(0)


def main(argv):
    ap = argparse.ArgumentParser(description="decode netlink messages with a YNL netlink-raw spec")
    ap.add_argument("--spec", required=True)
    ap.add_argument("--dump", metavar="OP")
    ap.add_argument("--do", metavar="OP")
    ap.add_argument("--subscribe", metavar="GROUPS", help="comma-separated multicast groups")
    ap.add_argument("--duration", type=float, default=5, help="seconds to listen (--subscribe)")
    ap.add_argument("--names", metavar="SET", help="print the value-to-name tables")
    ap.add_argument("--fixed", action="append", default=[], metavar="MEMBER=VALUE",
                    help="a member of the request's fixed header (default 0)")
    args = ap.parse_args(argv)
    fam = Family(args.spec)
    if args.names:
        json.dump({
            "attributes": {v: a["name"] for v, a in sorted(fam.sets[args.names].by_val.items())},
            "replies": {v: op.name for v, op in sorted(fam.rsp_by_value.items())},
            "requests": {op.req: op.name for op in fam.ops.values() if op.req is not None},
            "notifications": sorted(fam.async_ids),
        }, sys.stdout)
        print()
        return 0
    conn = Conn(fam)
    fixed = dict(kv.split("=", 1) for kv in args.fixed)
    if args.dump or args.do:
        out = conn.request(args.dump or args.do, bool(args.dump), fixed)
        json.dump(out, sys.stdout)
        print()
        return 0
    if args.subscribe:
        conn.subscribe(args.subscribe.split(","))
        print("# subscribed", flush=True)
        for ntf in conn.poll(args.duration):
            print(json.dumps(ntf), flush=True)
        return 0
    ap.error("give --dump, --do or --subscribe")
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except (SpecError, OSError, ValueError, KeyError) as e:
        print("ynlpy: %s" % e, file=sys.stderr)
        sys.exit(1)
