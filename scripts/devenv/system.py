"""Debian packages that pip cannot bring: installed when missing, as root with apt-get.

`./dev stack` needs nginx and PgBouncer. `./dev test` and `./dev setup` want them too, for the
tests that run the production topology, and chromium for the browser tests; a new Debian machine
gets them from the launcher without a step by hand. Where apt-get or root is lacking, the launcher
says in one line what to install.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from scripts.devenv import LauncherError, say
from scripts.harness.stack import binary

# The binary each package brings (Debian's names are the same).
STACK = ("nginx", "pgbouncer")
TESTS = ("chromium", *STACK)


def debian_packages_ensure(packages: tuple[str, ...], *, needed_by: str, required: bool) -> None:
    """Install the packages of `packages` whose binary is missing, when this is Debian and we are root.

    Otherwise a missing package stops the launcher (`required`) or is named in a warning.
    """
    missing = [package for package in packages if binary(package) is None]
    if not missing:
        return
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        hint = f"{needed_by} needs {' and '.join(missing)}: apt-get install {' '.join(missing)}"
        if required:
            raise LauncherError(hint)
        say(f"{hint} (carrying on without)")
        return
    say(f"installing {' '.join(missing)} (Debian packages, for {needed_by})")
    quiet = {"stdout": subprocess.DEVNULL, "env": {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}}
    subprocess.run([apt, "update", "-qq"], check=False, **quiet)
    if subprocess.run([apt, "install", "-y", "-qq", *missing], check=False, **quiet).returncode:
        raise LauncherError(f"apt-get install {' '.join(missing)} failed")
