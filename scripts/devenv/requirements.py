"""What each command installs into .venv: serving needs requirements.txt, the tests requirements-dev.txt.

The embedded PostgreSQL and Redis (requirements-embedded.txt) come only when a command needs them.
A stamp per requirements file (its digest, with the files it includes) says it is installed;
installing a file stamps the files it includes too, so `./dev test` then `./dev serve` installs once.
"""

from __future__ import annotations

import hashlib
import importlib
import re
import subprocess
import sys
from pathlib import Path

from scripts.devenv import LauncherError, say
from scripts.harness import ROOT

RUNTIME = ROOT / "requirements.txt"
EMBEDDED = ROOT / "requirements-embedded.txt"
DEVELOPMENT = ROOT / "requirements-dev.txt"
INCLUDE = re.compile(r"^\s*-r\s+(\S+)", re.MULTILINE)


def closure(path: Path) -> list[Path]:
    """Return the file and every requirements file it includes (-r), once each."""
    found: list[Path] = []
    pending = [path]
    while pending:
        current = pending.pop()
        if current in found:
            continue
        found.append(current)
        pending += [(current.parent / name).resolve() for name in INCLUDE.findall(current.read_text())]
    return found


def digest(path: Path) -> str:
    files = sorted(closure(path))
    return hashlib.sha256(b"".join(f.name.encode() + b"\0" + f.read_bytes() for f in files)).hexdigest()


def _venv() -> Path | None:
    return Path(sys.prefix) if sys.prefix != sys.base_prefix else None


def _stamp(venv: Path, path: Path) -> Path:
    return venv / f".{path.name}.sha256"


def installed(path: Path) -> bool:
    venv = _venv()
    if venv is None:
        return True  # not ours to manage: whoever runs outside a virtualenv installs for themselves
    stamp = _stamp(venv, path)
    return stamp.is_file() and stamp.read_text().strip() == digest(path)


def ensure(path: Path) -> None:
    """Install `path` into this virtualenv unless its stamp says it is there and unchanged."""
    if installed(path):
        return
    venv = _venv()
    say(f"installing {path.name} into {venv.relative_to(ROOT) if venv.is_relative_to(ROOT) else venv}")
    command = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--quiet", "-r", str(path)]
    if subprocess.run(command, cwd=ROOT, check=False).returncode != 0:
        raise LauncherError(f"pip could not install {path.name} (see above)")
    for included in closure(path):
        _stamp(venv, included).write_text(digest(included) + "\n")
    importlib.invalidate_caches()
