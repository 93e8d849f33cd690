#!/usr/bin/env python3
"""Fill translations into a Qt Linguist ``.ts`` file from a JSON mapping ``{source text: translation}``.

    python scripts/ts_fill.py resources/translations/edge_station_zh_CN.ts zh_CN.json

For plural entries (``%n``) the translation may be a list (one per numerus
form; Chinese has one). Filled entries lose ``type="unfinished"``; entries
without a translation in the mapping are listed and left unfinished.
Obsolete/vanished entries are dropped.
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def fill(ts: Path, mapping: dict[str, object]) -> list[str]:
    tree = ET.parse(ts)
    root = tree.getroot()
    missing: list[str] = []
    for context in root.findall("context"):
        for msg in list(context.findall("message")):
            tr = msg.find("translation")
            src = msg.findtext("source") or ""
            if tr is None:
                continue
            if tr.get("type") in ("obsolete", "vanished"):
                context.remove(msg)
                continue
            value = mapping.get(src)
            if value is None:
                if tr.get("type") == "unfinished":
                    missing.append(src)
                continue
            if msg.get("numerus") == "yes":
                forms = value if isinstance(value, list) else [value]
                for child in list(tr):
                    tr.remove(child)
                tr.text = None
                for f in forms:
                    ET.SubElement(tr, "numerusform").text = str(f)
            else:
                tr.text = str(value)
            tr.attrib.pop("type", None)
        if not context.findall("message"):
            root.remove(context)
    ET.indent(tree, space="    ")
    body = ET.tostring(root, encoding="unicode")
    ts.write_text('<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE TS>\n' + body + "\n", encoding="utf-8")
    return missing


def main(argv: list[str]) -> int:
    ts, mapping_file = Path(argv[0]), Path(argv[1])
    missing = fill(ts, json.loads(mapping_file.read_text(encoding="utf-8")))
    for m in missing:
        print(f"untranslated: {m!r}", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
