"""The committed Simplified Chinese catalogue covers every translatable string of the window, and nothing else.

``pyside6-lupdate`` re-extracts the strings of ``app/ui`` into a copy of the
committed ``.ts``: a new string comes back ``unfinished``, a removed or changed
one ``vanished``/``obsolete``. Either fails, so a string added without its
translation (or a translation left behind) breaks ``make test``. The
translations must keep the source's placeholders, and ``pyside6-lrelease`` must
compile them all.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TS = ROOT / "resources" / "translations" / "edge_station_zh_CN.ts"
BIN = Path(sys.executable).parent
PLACEHOLDER = re.compile(r"\{[A-Za-z0-9_]*(?:![rsa])?(?::[^{}]*)?\}|%n|%\d")


def tool(name: str) -> str:
    exe = BIN / name
    found = str(exe) if exe.exists() else shutil.which(name)
    assert found, f"{name} not found (it ships with PySide6)"
    return found


def messages(ts: Path) -> list[tuple[str, str, ET.Element]]:
    root = ET.parse(ts).getroot()
    return [(ctx.findtext("name") or "", msg.findtext("source") or "", msg)
            for ctx in root.findall("context") for msg in ctx.findall("message")]


def translation_texts(msg: ET.Element) -> list[str]:
    tr = msg.find("translation")
    if tr is None:
        return []
    forms = tr.findall("numerusform")
    return [f.text or "" for f in forms] if forms else [tr.text or ""]


def test_catalogue_is_complete_and_current(tmp_path: Path) -> None:
    fresh = tmp_path / TS.name
    shutil.copy(TS, fresh)
    run = subprocess.run([tool("pyside6-lupdate"), "-locations", "none", "-extensions", "py",
                          str(ROOT / "app" / "ui"), "-ts", str(fresh)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    problems = []
    for context, source, msg in messages(fresh):
        kind = msg.find("translation").get("type") if msg.find("translation") is not None else "missing"
        if kind in ("unfinished", "missing"):
            problems.append(f"untranslated  {context}: {source!r}")
        elif kind in ("vanished", "obsolete"):
            problems.append(f"obsolete      {context}: {source!r}")
        elif not all(t.strip() for t in translation_texts(msg)):
            problems.append(f"empty         {context}: {source!r}")
    assert not problems, (
        f"{TS.relative_to(ROOT)} is out of date with app/ui ({len(problems)} entries). Regenerate it with\n"
        "  pyside6-lupdate -locations none -extensions py app/ui -ts resources/translations/edge_station_zh_CN.ts\n"
        "then translate the unfinished entries and drop the obsolete ones (pyside6-linguist, or "
        "scripts/ts_fill.py):\n  " + "\n  ".join(problems))


def test_translations_keep_the_placeholders() -> None:
    wrong = []
    for context, source, msg in messages(TS):
        want = sorted(PLACEHOLDER.findall(source))
        for text in translation_texts(msg):
            if sorted(PLACEHOLDER.findall(text)) != want:
                wrong.append(f"{context}: {source!r} -> {text!r}")
    assert not wrong, "translations must keep the placeholders of their source:\n  " + "\n  ".join(wrong)


def test_catalogue_compiles(tmp_path: Path) -> None:
    qm = tmp_path / "out.qm"
    run = subprocess.run([tool("pyside6-lrelease"), str(TS), "-qm", str(qm)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert qm.stat().st_size > 0
    m = re.search(r"Generated (\d+) translation\(s\) \((\d+) finished and (\d+) unfinished\)", run.stdout)
    assert m, run.stdout
    total, finished, unfinished = map(int, m.groups())
    assert total == len(messages(TS)) and finished == total and unfinished == 0, run.stdout


@pytest.mark.parametrize("language", ["zh_CN"])
def test_catalogue_declares_its_language(language: str) -> None:
    root = ET.parse(TS).getroot()
    assert root.get("language") == language and root.get("sourcelanguage") == "en"


def _literal(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _noop_contexts(tree: ast.AST) -> set[str]:
    """Contexts whose strings the module marks with QT_TRANSLATE_NOOP (looked up later by value)."""
    return {n.args[0].value for n in ast.walk(tree)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "QT_TRANSLATE_NOOP"
            and n.args and _literal(n.args[0])}


def test_translated_texts_are_literals_lupdate_can_see() -> None:
    """``self.tr(text)`` or a ``_tr(text)`` helper hides the string from lupdate: it is never translated.

    Allowed: ``self.tr("literal")``, ``QCoreApplication.translate("Context", "literal")``, and
    ``QCoreApplication.translate("Context", value)`` where the module marks that context's
    values with ``QT_TRANSLATE_NOOP("Context", "literal")``.
    """
    hidden = []
    for path in sorted((ROOT / "app" / "ui").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        marked = _noop_contexts(tree)
        for n in ast.walk(tree):
            if not (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)):
                continue
            where = f"{path.relative_to(ROOT)}:{n.lineno}"
            if n.func.attr == "tr" and not (n.args and _literal(n.args[0])):
                hidden.append(f"{where}: tr() of a non-literal")
            elif n.func.attr == "translate" and len(n.args) >= 2:
                ctx, text = n.args[0], n.args[1]
                if not _literal(ctx):
                    hidden.append(f"{where}: translate() with a non-literal context")
                elif not _literal(text) and ctx.value not in marked:  # type: ignore[union-attr]
                    hidden.append(f"{where}: translate({ctx.value!r}, <non-literal>) without "  # type: ignore[union-attr]
                                  f"QT_TRANSLATE_NOOP({ctx.value!r}, ...) markers in the module")
    assert not hidden, ("pyside6-lupdate only extracts literal strings; write the literal at the call "
                        "(self.tr(\"...\") / QCoreApplication.translate(\"Context\", \"...\")) or mark "
                        "the values with QT_TRANSLATE_NOOP:\n  " + "\n  ".join(hidden))
