#!/usr/bin/env python3
# SPDX-License-Identifier: ((GPL-2.0 WITH Linux-syscall-note) OR BSD-3-Clause)
"""Validate netlink-raw specs against the schema, as YNL does on load.

  validate.py SCHEMA SPEC...

Prints "ok SPEC" or "invalid SPEC: reason" per spec and exits 1 if any spec
is invalid. Needs PyYAML and jsonschema (Debian: python3-yaml,
python3-jsonschema).
"""

import sys

import jsonschema
import yaml


def main(argv):
    if len(argv) < 2:
        print("usage: validate.py SCHEMA SPEC...", file=sys.stderr)
        return 2
    with open(argv[0], encoding="utf-8") as f:
        schema = yaml.safe_load(f)
    bad = 0
    for path in argv[1:]:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
        try:
            jsonschema.validate(doc, schema)
        except jsonschema.ValidationError as e:
            where = "/".join(str(p) for p in e.absolute_path)
            print("invalid %s: at %s: %s" % (path, where or "top level", e.message))
            bad += 1
            continue
        print("ok %s" % path)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
