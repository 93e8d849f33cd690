"""Which Debian packages the bundle's shared libraries need from the system.

PyInstaller copies most libraries into the bundle but leaves out the ones that must come
from the machine (glibc, the GL/EGL drivers, ...). This runs ``ldd`` on every ELF file of
the bundle, keeps the libraries that resolve outside it, and maps them to the packages that
own them (``dpkg -S``). It prints a Debian ``Depends`` value.

Usage: python3 shlibdeps.py BUNDLE_DIR   (exits 1, naming them, if a library is not found)
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

LDD_LINE = re.compile(r"^\s*(\S+)\s+=>\s+(not found|\S+)")
ELF_MAGIC = b"\x7fELF"
# Qt plugins (and the Qt libraries only they load) for platforms a given machine may not
# have: when the system lacks their libraries, Qt skips the plugin, so those libraries are
# not package dependencies. A Wayland desktop has libwayland-*; a bare X11 kiosk does not.
OPTIONAL_PARTS = ("/platformthemes/", "/wayland-", "/egldeviceintegrations/", "/xcbglintegrations/",
                  "/platforminputcontexts/", "/tls/", "/networkinformation/", "/platforms/libqwayland",
                  "/platforms/libqeglfs", "/libQt6Wayland", "/libQt6WlShell", "/libQt6EglFs")


class ShlibdepsError(Exception):
    pass


def elf_files(root: Path) -> list[Path]:
    out = []
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink():
            with p.open("rb") as f:
                if f.read(4) == ELF_MAGIC:
                    out.append(p)
    return out


def system_libraries(root: Path) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(resolved system path -> files needing it, missing soname -> files needing it)."""
    root = root.resolve()
    lib_dirs = sorted({str(p.parent) for p in root.rglob("*.so*")})
    env = dict(os.environ, LD_LIBRARY_PATH=":".join(lib_dirs), LC_ALL="C")
    found: dict[str, set[str]] = {}
    missing: dict[str, set[str]] = {}
    for f in elf_files(root):
        out = subprocess.run(["ldd", str(f)], capture_output=True, text=True, env=env).stdout
        rel = str(f.relative_to(root))
        for line in out.splitlines():
            m = LDD_LINE.match(line)
            if not m:
                continue
            name, where = m.groups()
            if where == "not found":
                missing.setdefault(name, set()).add(rel)
            elif not Path(where).resolve().is_relative_to(root):
                found.setdefault(where, set()).add(rel)
    return found, missing


def owning_package(path: str) -> str:
    candidates = [path, str(Path(path).resolve())]
    for c in list(candidates):  # merged /usr: dpkg may know either spelling
        if c.startswith("/usr/lib/"):
            candidates.append(c[len("/usr"):])
        elif c.startswith("/lib"):
            candidates.append("/usr" + c)
    for c in candidates:
        out = subprocess.run(["dpkg", "-S", c], capture_output=True, text=True)
        if out.returncode == 0:
            return out.stdout.split(":", 1)[0].split(",")[0].strip()
    raise ShlibdepsError(f"no Debian package owns {path}")


GLIBC_VERSION = re.compile(r"Name: GLIBC_([0-9]+(?:\.[0-9]+)+)")


def glibc_needed(root: Path) -> str:
    """The newest GLIBC_x.y symbol version any file of the bundle asks for (readelf -V)."""
    best: tuple[int, ...] = (2, 17)
    for f in elf_files(root):
        out = subprocess.run(["readelf", "-V", "--wide", str(f)], capture_output=True, text=True).stdout
        for v in GLIBC_VERSION.findall(out):
            best = max(best, tuple(int(x) for x in v.split(".")))
    return ".".join(map(str, best))


def is_optional(rel: str) -> bool:
    return any(part in "/" + rel for part in OPTIONAL_PARTS)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    root = Path(argv[0])
    found, missing = system_libraries(root)
    hard_missing = {n: fs for n, fs in missing.items() if not all(is_optional(f) for f in fs)}
    if hard_missing:
        for name, files in sorted(hard_missing.items()):
            print(f"shlibdeps: {name} not found (needed by {', '.join(sorted(files)[:3])})", file=sys.stderr)
        return 1
    required: set[str] = set()
    optional: set[str] = set()
    for path, files in found.items():
        try:
            pkg = owning_package(path).split(":")[0]
        except ShlibdepsError as e:
            print(f"shlibdeps: {e}", file=sys.stderr)
            return 1
        (optional if all(is_optional(f) for f in files) else required).add(pkg)
    deps = []
    for pkg in sorted(required):
        if pkg == "libc6":  # the newest glibc symbol version that the bundle's files use
            deps.append(f"libc6 (>= {glibc_needed(root)})")
        else:
            deps.append(pkg)
    print("Depends: " + ", ".join(deps))
    print("Suggests: " + ", ".join(sorted(optional - required)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
