"""s5cmd with an age filter added by hand: `s5cmd ls`, keep what is older, then `s5cmd run`."""

from __future__ import annotations

import argparse
import json
import subprocess
from datetime import datetime
from pathlib import Path

from devtools.processes import BIN

KEYS_PER_RM = 1000


def write_rm_commands(path: Path, bucket: str, keys: list[str]) -> None:
    """An `s5cmd run` file: one `rm` line per 1000 keys (s5cmd sends each as DeleteObjects)."""
    with path.open("w", encoding="utf-8") as out:
        for start in range(0, len(keys), KEYS_PER_RM):
            urls = " ".join(f"s3://{bucket}/{key}" for key in keys[start : start + KEYS_PER_RM])
            out.write(f"rm {urls}\n")


def main() -> None:
    """List the prefix with s5cmd, select by LastModified, delete with s5cmd."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint-url", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--cutoff", required=True, type=datetime.fromisoformat)
    parser.add_argument("--commands", required=True, type=Path, help="the run file to write")
    args = parser.parse_args()
    s5cmd = [str(BIN / "s5cmd"), "--endpoint-url", args.endpoint_url]
    listing = subprocess.run(
        [*s5cmd, "--json", "ls", f"s3://{args.bucket}/{args.prefix}*"],
        capture_output=True,
        check=True,
        text=True,
    )
    old: list[str] = []
    uri_prefix = f"s3://{args.bucket}/"
    for line in listing.stdout.splitlines():
        entry = json.loads(line)
        modified = datetime.fromisoformat(entry["last_modified"])
        if entry.get("type") == "file" and modified < args.cutoff:
            old.append(entry["key"].removeprefix(uri_prefix))
    write_rm_commands(args.commands, args.bucket, old)
    subprocess.run([*s5cmd, "run", str(args.commands)], check=True, stdout=subprocess.DEVNULL)
    print(f"deleted {len(old)}")


if __name__ == "__main__":
    main()
