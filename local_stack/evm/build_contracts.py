"""Rebuilds DemoToken.json ({"abi": [...], "bytecode": "0x..."}) from DemoToken.sol with the pinned solcjs.

    make local_stack/evm/node_modules/.bin/anvil      # installs anvil and solc from package-lock.json
    .venv/bin/python local_stack/evm/build_contracts.py

The JSON is checked in beside the source, so tests and `make dev` need no compiler; run this after
changing the contract and commit both files.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOLCJS = HERE / "node_modules" / ".bin" / "solcjs"
CONTRACTS = ("DemoToken",)


def build(contract: str) -> Path:
    """Compiles `<contract>.sol` (optimizer on) and writes `<contract>.json`; returns its path."""
    source = HERE / f"{contract}.sol"
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(  # noqa: S603 - the pinned compiler on a fixed argument list, no shell
            [str(SOLCJS), "--bin", "--abi", "--optimize", "--base-path", str(HERE), "-o", out, source.name],
            cwd=HERE,
            check=True,
        )
        # solcjs names its output <source file with _ for .>_<contract>.{abi,bin}.
        stem = f"{source.name.replace('.', '_')}_{contract}"
        abi = json.loads((Path(out) / f"{stem}.abi").read_text())
        bytecode = (Path(out) / f"{stem}.bin").read_text().strip()
    target = HERE / f"{contract}.json"
    target.write_text(json.dumps({"abi": abi, "bytecode": "0x" + bytecode}, indent=2) + "\n")
    return target


def main() -> int:
    if not SOLCJS.exists():
        print(f"{SOLCJS.relative_to(HERE)} is missing: run `make local_stack/evm/node_modules/.bin/anvil` first")
        return 1
    for contract in CONTRACTS:
        print(f"wrote {build(contract).relative_to(HERE)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
