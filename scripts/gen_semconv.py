#!/usr/bin/env python3
"""Generate otel_llmcost/semconv.py from the registry in semconv/.

Usage:
    python scripts/gen_semconv.py          # rewrite otel_llmcost/semconv.py
    python scripts/gen_semconv.py --check  # exit 1 if the committed file is stale
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
REGISTRY_DIR = ROOT / "semconv"
TARGET = ROOT / "otel_llmcost" / "semconv.py"

HEADER = '''\
"""Attribute and metric names of otel-llmcost.

GENERATED FILE: do not edit. Regenerate with `python scripts/gen_semconv.py` from the registry in
semconv/; the test suite fails when this file and the registry drift.
"""

from typing import Final
'''


def _const(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z]+", "_", name).strip("_").upper()


def _doc(text: str, where: str) -> str:
    text = " ".join(str(text).split()).replace('"""', "'''").replace("\\", "\\\\")
    return f'"""{text} (registry: {where})"""'


def load_groups(registry_dir: Path = REGISTRY_DIR) -> list[dict[str, Any]]:
    """Return every group of every registry YAML file, in file order."""
    groups: list[dict[str, Any]] = []
    for path in sorted(registry_dir.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for group in data.get("groups", []):
            group["_file"] = f"semconv/{path.name}"
            groups.append(group)
    return groups


def render(registry_dir: Path = REGISTRY_DIR) -> str:
    """Render the Python module text for the registry in *registry_dir*."""
    out = [HEADER.rstrip("\n")]
    seen: set[str] = set()

    def emit(name: str, value: str, doc: str) -> None:
        if name in seen:
            raise SystemExit(f"semconv: constant {name} generated twice")
        seen.add(name)
        out.append(f'{name}: Final = "{value}"\n{doc}\n')

    for group in load_groups(registry_dir):
        where = f"{group['_file']}#{group['id']}"
        if group["type"] == "attribute_group":
            out.append(f"\n# --- {group['id']}: {group.get('brief', '').strip()}\n")
            # Other instrumentations' names can differ from ours only in '.' versus '_'
            # (gen_ai.usage.cache_read_input_tokens), so their constants carry a prefix.
            prefix = "VARIANT_" if group["id"] == "registry.llm.input_variants" else ""
            for attr in group.get("attributes", []):
                attr_id = attr["id"]
                emit(prefix + _const(attr_id), attr_id, _doc(attr.get("brief", ""), f"{group['_file']}#{attr_id}"))
                attr_type = attr.get("type")
                if isinstance(attr_type, dict):
                    for member in attr_type.get("members", []):
                        emit(
                            _const(f"{attr_id}_{member['id']}"),
                            member["value"],
                            _doc(member.get("brief", ""), f"{group['_file']}#{attr_id}.{member['id']}"),
                        )
        elif group["type"] == "metric":
            name = group["metric_name"]
            out.append(f"\n# --- {group['id']} ({group['instrument']})\n")
            emit("METRIC_" + _const(name), name, _doc(group.get("brief", ""), where))
            emit("METRIC_" + _const(name) + "_UNIT", group["unit"], _doc(f"Unit of {name}.", where))
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the generated file is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET.relative_to(ROOT)} is stale: run python scripts/gen_semconv.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
