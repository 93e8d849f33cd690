#!/usr/bin/env python3
"""Find (and optionally wrap) user-visible string literals in ``app/ui`` that are not translatable.

    python scripts/i18n_wrap.py            # list them: file:line  call  text
    python scripts/i18n_wrap.py --write F  # wrap them in file F (review the diff!)

A string counts as user-visible when it is the text argument of a Qt text
setter or widget constructor (``setText``, ``setToolTip``, ``QLabel(...)``,
``addTab(..., "Title")``, ``QMessageBox.question(parent, title, text)`` ...).
Wrapping turns ``"Text"`` into ``self.tr("Text")`` inside methods of QObject
classes and into ``QCoreApplication.translate("Context", "Text")`` elsewhere;
an f-string becomes ``self.tr("Exported {n} cameras").format(n=n)`` (named
after simple names, numbered after expressions, format specs kept), so the
English output is unchanged.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# method name -> argument positions holding text ("*" = every str argument, "last" = the last str one)
METHODS: dict[str, tuple] = {
    "setText": (0,), "setWindowTitle": (0,), "setToolTip": (0,), "setStatusTip": (0,),
    "setPlaceholderText": (0,), "showMessage": (0,), "setSpecialValueText": (0,), "setSuffix": (0,),
    "setPrefix": (0,), "setTitle": (0,), "setLabelText": (0,), "setWhatsThis": (0,),
    "setTabText": (1,), "setTabToolTip": (1,), "setCancelButtonText": (0,), "setInformativeText": (0,),
    "setWindowIconText": (0,), "setFormat": (0,), "setNameFilter": (0,),
    "addTab": ("last",), "insertTab": ("last",), "addItem": ("first",), "addItems": ("list0",),
    "insertItem": ("last",), "addRow": ("first0",), "addAction": ("first",), "addMenu": ("first",),
    "setHeaderLabels": ("list0",), "setHorizontalHeaderLabels": ("list0",), "setVerticalHeaderLabels": ("list0",),
    "question": (1, 2), "information": (1, 2), "warning": (1, 2), "critical": (1, 2), "about": (1, 2),
    "getSaveFileName": (1, 3), "getOpenFileName": (1, 3), "getExistingDirectory": (1,),
    "getText": (1, 2), "getInt": (1, 2), "getItem": (1, 2), "getDouble": (1, 2),
    "notify": (0, 1), "set_tooltip": (0,), "show_message": (0, 1), "_action": (1,),
    "run_operation": (0,),
}
CONSTRUCTORS: dict[str, tuple] = {
    "QLabel": (0,), "QPushButton": ("first",), "QToolButton": (), "QCheckBox": (0,), "QRadioButton": (0,),
    "QGroupBox": (0,), "QAction": ("first",), "QMessageBox": (1, 2), "QProgressDialog": (0, 1),
    "QMenu": ("first0",), "QToolBar": ("first0",), "QCommandLinkButton": (0, 1), "QDockWidget": (0,),
}
KEYWORDS = {"tip", "toolTip", "text", "title", "label", "placeholder", "message"}


@dataclass
class Hit:
    node: ast.expr
    call: str
    context: str
    use_self: bool
    line: int
    text: str


def _texts(node: ast.expr) -> list[ast.expr]:
    """The text literals that ``node`` may evaluate to (both arms of ``a if c else b``, the ``or`` fallbacks)."""
    if isinstance(node, ast.IfExp):
        return _texts(node.body) + _texts(node.orelse)
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
        return [t for v in node.values for t in _texts(v)]
    return [node] if _is_text(node) else []


def _is_text(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return any(ch.isalpha() for ch in node.value)
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.Constant) and any(ch.isalpha() for ch in str(v.value)) for v in node.values)
    return False


def _wrapped(node: ast.expr) -> bool:
    return False


class Scanner(ast.NodeVisitor):
    def __init__(self, source: str, module_context: str, qobject_classes: set[str]):
        self.source = source
        self.module_context = module_context
        self.qobject_classes = qobject_classes
        self.class_stack: list[str] = []
        self.func_stack: list[ast.FunctionDef | ast.AsyncFunctionDef] = []
        self.hits: list[Hit] = []

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.class_stack.append(node.name)
        self.generic_visit(node)
        self.class_stack.pop()

    def visit_FunctionDef(self, node) -> None:
        self.func_stack.append(node)
        self.generic_visit(node)
        self.func_stack.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def _context(self) -> tuple[str, bool]:
        cls = self.class_stack[-1] if self.class_stack else None
        # a method of the class, or a closure inside one: ``self`` is in scope either way
        method = next((f for f in self.func_stack if f.args.args and f.args.args[0].arg == "self"), None)
        inner_rebinds = any(a.arg == "self" for f in self.func_stack if f is not method
                            for a in f.args.args + f.args.kwonlyargs)
        if cls and cls in self.qobject_classes and method is not None and not inner_rebinds and not any(
                isinstance(d, ast.Name) and d.id == "staticmethod" for d in method.decorator_list):
            return cls, True
        return (cls or self.module_context), False

    def visit_Call(self, node: ast.Call) -> None:
        name = None
        table = None
        if isinstance(node.func, ast.Attribute) and node.func.attr in METHODS:
            name, table = node.func.attr, METHODS
        elif isinstance(node.func, ast.Name) and node.func.id in CONSTRUCTORS:
            name, table = node.func.id, CONSTRUCTORS
        if name is not None:
            positions = table[name]
            args = node.args
            picked: list[ast.expr] = []
            for pos in positions:
                if pos == "last":
                    texts = [a for a in args if _is_text(a)]
                    picked += texts[-1:]
                elif pos == "first":
                    texts = [a for a in args if _is_text(a)]
                    picked += texts[:1]
                elif pos == "first0":
                    picked += [a for a in args[:1] if _is_text(a)]
                elif pos == "list0":
                    if args and isinstance(args[0], ast.List | ast.Tuple):
                        picked += [e for e in args[0].elts if _is_text(e)]
                elif isinstance(pos, int) and pos < len(args) and _is_text(args[pos]):
                    picked.append(args[pos])
            for kw in node.keywords:
                if kw.arg in KEYWORDS:
                    picked += _texts(kw.value)
            # positions were matched on whole arguments; expand conditional ones into their literals
            for pos in positions:
                if isinstance(pos, int) and pos < len(args) and not _is_text(args[pos]):
                    picked += _texts(args[pos])
                if pos == "first0" and args and not _is_text(args[0]):
                    picked += _texts(args[0])
            ctx, use_self = self._context()
            for p in picked:
                seg = ast.get_source_segment(self.source, p) or ""
                self.hits.append(Hit(p, name, ctx, use_self, p.lineno, seg))
        self.generic_visit(node)


def qobject_classes(files: list[Path]) -> set[str]:
    bases: dict[str, list[str]] = {}
    for f in files:
        tree = ast.parse(f.read_text(encoding="utf-8"))
        for n in ast.walk(tree):
            if isinstance(n, ast.ClassDef):
                names = []
                for b in n.bases:
                    if isinstance(b, ast.Name):
                        names.append(b.id)
                    elif isinstance(b, ast.Attribute):
                        names.append(b.attr)
                bases[n.name] = names
    q = {c for c, bs in bases.items() if any(b.startswith("Q") for b in bs)}
    changed = True
    while changed:
        changed = False
        for c, bs in bases.items():
            if c not in q and any(b in q for b in bs):
                q.add(c)
                changed = True
    return q


def scan(path: Path, qclasses: set[str]) -> list[Hit]:
    src = path.read_text(encoding="utf-8")
    sc = Scanner(src, path.stem, qclasses)
    sc.visit(ast.parse(src))
    return sc.hits


def _fstring_to_format(node: ast.JoinedStr, source: str) -> tuple[str, str]:
    """(template literal source, '.format(...)' args source)."""
    parts: list[str] = []
    args: list[str] = []
    kwargs: dict[str, str] = {}
    pos = 0
    for v in node.values:
        if isinstance(v, ast.Constant):
            parts.append(str(v.value).replace("{", "{{").replace("}", "}}"))
            continue
        assert isinstance(v, ast.FormattedValue)
        expr = ast.get_source_segment(source, v.value) or ast.unparse(v.value)
        conv = {-1: "", 115: "!s", 114: "!r", 97: "!a"}[v.conversion]
        spec = ""
        if v.format_spec is not None:
            spec_parts = []
            for sv in v.format_spec.values:  # type: ignore[union-attr]
                if isinstance(sv, ast.Constant):
                    spec_parts.append(str(sv.value))
                else:
                    raise ValueError("nested format spec")
            spec = ":" + "".join(spec_parts)
        if isinstance(v.value, ast.Name):
            key = v.value.id
            kwargs[key] = expr
        elif isinstance(v.value, ast.Attribute) and isinstance(v.value.value, ast.Name) and \
                v.value.attr not in kwargs:
            key = v.value.attr
            kwargs[key] = expr
        else:
            key = str(pos)
            pos += 1
            args.append(expr)
        parts.append("{" + key + conv + spec + "}")
    template = "".join(parts)
    call_args = args + [f"{k}={e}" for k, e in kwargs.items()]
    return _literal(template), f".format({', '.join(call_args)})"


def _literal(text: str) -> str:
    """A double-quoted Python literal of ``text`` (newlines escaped, non-ASCII kept)."""
    return json.dumps(text, ensure_ascii=False)


def wrap_file(path: Path, qclasses: set[str]) -> int:
    src = path.read_text(encoding="utf-8")
    hits = scan(path, qclasses)
    lines = src.splitlines(keepends=True)
    offsets = [0]
    for ln in lines:
        offsets.append(offsets[-1] + len(ln))

    def abs_pos(lineno: int, col: int) -> int:  # col is a UTF-8 byte offset
        line = lines[lineno - 1]
        return offsets[lineno - 1] + len(line.encode("utf-8")[:col].decode("utf-8"))

    edits = []
    need_qca = False
    for h in hits:
        n = h.node
        start, end = abs_pos(n.lineno, n.col_offset), abs_pos(n.end_lineno, n.end_col_offset)
        if isinstance(n, ast.JoinedStr):
            try:
                lit, fmt = _fstring_to_format(n, src)
            except ValueError:
                print(f"{path}:{n.lineno}: skipped (nested format spec): {h.text}", file=sys.stderr)
                continue
        else:
            seg = src[start:end]
            lit = seg if "\n" not in seg and not seg.startswith(("'", '"""')) else _literal(n.value)
            fmt = ""
        if h.use_self:
            new = f"self.tr({lit}){fmt}"
        else:
            need_qca = True
            new = f'QCoreApplication.translate("{h.context}", {lit}){fmt}'
        edits.append((start, end, new))
    for start, end, new in sorted(edits, reverse=True):
        src = src[:start] + new + src[end:]
    if need_qca and "QCoreApplication" not in src.split("\nclass ")[0]:
        print(f"{path}: add 'QCoreApplication' to the PySide6.QtCore import", file=sys.stderr)
    path.write_text(src, encoding="utf-8")
    return len(edits)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--write", nargs="*", type=Path, help="wrap the strings in these files")
    a = ap.parse_args(argv)
    files = sorted((ROOT / "app" / "ui").rglob("*.py"))
    qclasses = qobject_classes(files)
    if a.write:
        for f in a.write:
            print(f"{f}: wrapped {wrap_file(f.resolve(), qclasses)} strings")
        return 0
    total = 0
    for f in files:
        for h in scan(f, qclasses):
            total += 1
            print(f"{f.relative_to(ROOT)}:{h.line}\t{h.call}\t{h.text}")
    print(f"{total} user-visible strings are not translatable", file=sys.stderr)
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
