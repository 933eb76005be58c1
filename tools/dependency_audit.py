"""Known vulnerabilities in the pinned versions of the dependency locks (`make audit`).

    python -m tools.dependency_audit layers/shared/requirements.txt requirements/dev.lock

Which database answers, in this order:

1. VULN_DB_SNAPSHOT names an OSV snapshot: the pins are matched here, offline, against its advisories.
   It may be a folder of OSV JSON advisories (searched recursively), osv.dev's per-ecosystem export
   (``PyPI/all.zip``) as is, or one JSON file holding an advisory, a list of them or an OSV API answer.
2. pip-audit is installed (on PATH, or PIP_AUDIT=/path/to/pip-audit) and PyPI's vulnerability API
   answers: pip-audit audits the locks' pins as written (no resolution, hashes required, every pin must
   be audited).
3. Neither: the audit says it was skipped, and succeeds unless AUDIT_REQUIRED=1.

Exit status: 0 nothing known (or skipped), 1 a pin is affected (or the required audit could not run),
2 the snapshot or a lock cannot be read.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

SNAPSHOT_VARIABLE = "VULN_DB_SNAPSHOT"
REQUIRED_VARIABLE = "AUDIT_REQUIRED"
# pip-audit's default service is PyPI's JSON API; a release page there carries its "vulnerabilities".
# Some networks reach PyPI's simple index but not this API: pip-audit then audits nothing.
PYPI_VULNERABILITY_PROBE = "https://pypi.org/pypi/six/1.17.0/json"


class AuditInputError(Exception):
    """A lock or the snapshot cannot be read as one."""


@dataclass(frozen=True)
class Pin:
    """One `name==version` line of a lock, with the hashes it allows."""

    name: str
    version: Version
    hashes: tuple[str, ...]
    lock: str


@dataclass(frozen=True)
class Finding:
    pin: Pin
    advisory_id: str
    aliases: tuple[str, ...]
    fixed_in: tuple[str, ...]

    def __str__(self) -> str:
        aliases = f" ({', '.join(self.aliases)})" if self.aliases else ""
        fixed = f"; fixed in {', '.join(self.fixed_in)}" if self.fixed_in else "; no fixed version known"
        return f"{self.pin.lock}: {self.pin.name} {self.pin.version} is affected by {self.advisory_id}{aliases}{fixed}"


def read_lock(path: Path) -> list[Pin]:
    """Every pin of a requirements lock (continuation lines joined, comments and options skipped)."""
    pins = []
    for line in path.read_text().replace("\\\n", " ").splitlines():
        words = line.split(" #", 1)[0].split()
        if not words or words[0].startswith(("#", "-")):
            continue
        hashes = tuple(word.removeprefix("--hash=") for word in words if word.startswith("--hash="))
        text = " ".join(word for word in words if not word.startswith("--hash="))
        try:
            requirement = Requirement(text)
        except InvalidRequirement as error:
            raise AuditInputError(f"{path}: cannot read {text!r}: {error}") from error
        versions = [spec.version for spec in requirement.specifier if spec.operator in ("==", "===")]
        if len(versions) != 1 or len(requirement.specifier) != 1:
            raise AuditInputError(f"{path}: {text!r} is not pinned to one version (run `make lock`)")
        pins.append(Pin(canonicalize_name(requirement.name), Version(versions[0]), hashes, str(path)))
    return pins


def load_snapshot(path: Path) -> list[dict[str, Any]]:
    """The advisories of an OSV snapshot: a folder of JSON files, an OSV export zip, or one JSON file."""
    if path.is_dir():
        documents: Iterable[bytes] = (file.read_bytes() for file in sorted(path.rglob("*.json")))
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as export:
            documents = [export.read(name) for name in export.namelist() if name.endswith(".json")]
    elif path.is_file():
        documents = [path.read_bytes()]
    else:
        raise AuditInputError(f"{SNAPSHOT_VARIABLE}={path}: no such file or folder")
    advisories = []
    for document in documents:
        try:
            data = json.loads(document)
        except ValueError as error:
            raise AuditInputError(f"{path}: a document is not JSON: {error}") from error
        if isinstance(data, dict) and "vulns" in data:
            data = data["vulns"]
        advisories.extend(data if isinstance(data, list) else [data])
    if not advisories:
        raise AuditInputError(f"{SNAPSHOT_VARIABLE}={path}: the snapshot holds no advisory")
    return advisories


def find_vulnerabilities(pins: Iterable[Pin], advisories: Sequence[dict[str, Any]]) -> list[Finding]:
    by_package: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for advisory in advisories:
        if advisory.get("withdrawn"):
            continue
        for affected in advisory.get("affected", []):
            package = affected.get("package", {})
            if package.get("ecosystem") == "PyPI" and package.get("name"):
                by_package.setdefault(canonicalize_name(package["name"]), []).append((advisory, affected))
    findings = []
    for pin in pins:
        for advisory, affected in by_package.get(pin.name, []):
            if _affects(affected, pin.version):
                fixed = sorted({bound for ranges in _version_ranges(affected) for bound in _fixes(ranges)})
                findings.append(
                    Finding(
                        pin, str(advisory.get("id", "?")), tuple(advisory.get("aliases", [])), tuple(map(str, fixed))
                    )
                )
    return findings


def _version_ranges(affected: dict[str, Any]) -> Iterator[list[dict[str, str]]]:
    """The events of each range in release versions (GIT ranges, in commits, are left out)."""
    for version_range in affected.get("ranges", []):
        if version_range.get("type") in ("ECOSYSTEM", "SEMVER"):
            yield version_range.get("events", [])


def _fixes(events: list[dict[str, str]]) -> Iterator[Version]:
    for event in events:
        if (fixed := _version(event.get("fixed", ""))) is not None:
            yield fixed


def _affects(affected: dict[str, Any], version: Version) -> bool:
    if any(_version(listed) == version for listed in affected.get("versions", [])):
        return True
    return any(_in_range(version, events) for events in _version_ranges(affected))


def _in_range(version: Version, events: list[dict[str, str]]) -> bool:
    """OSV's evaluation: walk the events in version order; the last one that applies decides."""
    bounds: list[tuple[str, Version | None]] = []
    for event in events:
        for kind, raw in event.items():
            bound = None if raw == "0" else _version(raw)
            if bound is not None or raw == "0":
                bounds.append((kind, bound))
    if any(kind == "limit" and bound is not None and version >= bound for kind, bound in bounds):
        return False
    affected = False
    for kind, bound in sorted(bounds, key=lambda event: (event[1] is not None, event[1] or Version("0"))):
        if _reached(kind, bound, version):
            affected = kind == "introduced"
    return affected


def _reached(kind: str, bound: Version | None, version: Version) -> bool:
    if bound is None:  # "0": before the first release
        return kind == "introduced"
    if kind == "last_affected":
        return version > bound
    return kind in ("introduced", "fixed") and version >= bound


def _version(raw: str) -> Version | None:
    try:
        return Version(raw)
    except InvalidVersion:
        return None


def audit_offline(locks: Sequence[Path], snapshot: Path) -> int:
    pins = [pin for lock in locks for pin in read_lock(lock)]
    advisories = load_snapshot(snapshot)
    findings = find_vulnerabilities(pins, advisories)
    newest = max((str(advisory.get("modified", "")) for advisory in advisories), default="") or "unknown"
    source = f"{len(advisories)} advisories of the OSV snapshot {snapshot} (newest change {newest})"
    for finding in findings:
        _say(str(finding))
    if findings:
        _say(f"{len(findings)} known vulnerabilities in the locked versions, according to {source}.")
        return 1
    _say(f"No known vulnerability in the {len(pins)} pins of {', '.join(map(str, locks))}, according to {source}.")
    return 0


def audit_online(locks: Sequence[Path], pip_audit: str) -> int:
    command = [pip_audit, "--require-hashes", "--disable-pip", "--strict", "--progress-spinner", "off"]
    for lock in locks:
        command += ["--requirement", str(lock)]
    _say(f"pip-audit against PyPI's vulnerability data: {' '.join(command)}")
    return subprocess.run(command, check=False).returncode  # noqa: S603 - a fixed argument list, no shell


def vulnerability_service_answers(timeout_seconds: float = 5) -> bool:
    try:
        with urllib.request.urlopen(PYPI_VULNERABILITY_PROBE, timeout=timeout_seconds) as response:
            return response.status == 200 and "vulnerabilities" in json.load(response)
    except (OSError, ValueError):
        return False


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] = os.environ) -> int:
    locks = [Path(arg) for arg in (sys.argv[1:] if argv is None else argv)]
    if not locks:
        _say("usage: python -m tools.dependency_audit LOCK [LOCK ...]")
        return 2
    try:
        if snapshot := environ.get(SNAPSHOT_VARIABLE):
            return audit_offline(locks, Path(snapshot))
        for lock in locks:
            read_lock(lock)
    except (AuditInputError, OSError) as error:
        _say(f"Dependency audit failed: {error}")
        return 2
    pip_audit = environ.get("PIP_AUDIT") or shutil.which("pip-audit", path=environ.get("PATH"))
    if pip_audit and vulnerability_service_answers():
        return audit_online(locks, pip_audit)
    why = "pip-audit is not installed" if not pip_audit else "PyPI's vulnerability API does not answer"
    _say(
        f"Dependency audit SKIPPED: {why}, and {SNAPSHOT_VARIABLE} names no OSV snapshot. "
        "Nothing was checked (docs/deploy.md, 'Builds and dependency audit')."
    )
    return 1 if environ.get(REQUIRED_VARIABLE) == "1" else 0


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
