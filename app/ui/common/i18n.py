"""Languages of the window: English (the source strings) and Simplified Chinese.

Every user-visible string in ``app/ui`` goes through ``self.tr()`` or
``QCoreApplication.translate(context, text)``; ``pyside6-lupdate`` collects them
into ``resources/translations/edge_station_<lang>.ts`` and ``make translations``
(``pyside6-lrelease``) compiles the ``.qm`` files that ship.

Which language: the station setting ``ui.language`` (``en``, ``zh_CN``; empty or
``system`` = follow the system) when set, else the system locale (Simplified
Chinese locales get ``zh_CN``, everything else English). Qt's own strings
(standard buttons, file dialogs) come from Qt's ``qtbase_<lang>.qm`` when Qt
ships it. A missing ``.qm`` is logged and the window shows English.

Install the translators before building any widget: texts are looked up when
they are set.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, QLibraryInfo, QLocale, QTranslator

from app.kiosk.settings import K_LANGUAGE, normalize_language, read_startup_settings
from app.kiosk.settings import LanguageError as LanguageError  # re-exported for callers
from app.ui.common.resources import resources_dir

log = logging.getLogger("edge_station.ui.i18n")

SETTING_KEY = K_LANGUAGE
SOURCE_LANGUAGE = "en"
#: language code -> its own name (what a language chooser shows)
LANGUAGES: dict[str, str] = {"en": "English", "zh_CN": "简体中文"}
CATALOG = "edge_station"


def translations_dir() -> Path:
    """``resources/translations`` (next to the package or inside the frozen bundle)."""
    return resources_dir() / "translations"


def ts_path(language: str) -> Path:
    return translations_dir() / f"{CATALOG}_{language}.ts"


def qm_path(language: str) -> Path:
    return translations_dir() / f"{CATALOG}_{language}.qm"


def normalize(code: object) -> str | None:
    """``'zh-CN'``, ``'zh_cn'``, ``'zh'`` -> ``'zh_CN'``; ``''``/``'system'``/None -> None (follow the system)."""
    return normalize_language(code)


def system_language(locale: QLocale | None = None) -> str:
    """The shipped language closest to the system locale (Chinese in Simplified script -> zh_CN)."""
    loc = locale if locale is not None else QLocale.system()
    if loc.language() == QLocale.Language.Chinese:
        script = loc.script()
        if script in (QLocale.Script.SimplifiedChineseScript, QLocale.Script.AnyScript):
            return "zh_CN"
        if loc.territory() in (QLocale.Country.China, QLocale.Country.Singapore):
            return "zh_CN"
    return SOURCE_LANGUAGE


def choose_language(setting: object = None, locale: QLocale | None = None) -> str:
    """The language to show: the ``ui.language`` setting when it names one, else the system's."""
    try:
        chosen = normalize(None if setting is None else str(setting))
    except LanguageError as e:
        log.warning("setting %s ignored: %s", SETTING_KEY, e)
        chosen = None
    return chosen or system_language(locale)


def read_language_setting(db_url: str, data_dir: Path | None = None) -> object:
    """``ui.language`` from the station's settings before any window exists (None when unset)."""
    return read_startup_settings(db_url, data_dir).get(SETTING_KEY)


def install_for_station(paths: Any) -> Translation:
    """Install the language that the station's ``ui.language`` setting or the system asks for.

    Call it after creating the QApplication and before building any window.
    """
    return install_translation(choose_language(read_language_setting(paths.db_url, paths.data_dir)))


@dataclass
class Translation:
    """What :func:`install_translation` did: keep it alive as long as the window."""

    language: str
    translators: list[QTranslator] = field(default_factory=list)
    loaded: list[Path] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def remove(self) -> None:
        app = QCoreApplication.instance()
        for t in self.translators:
            if app is not None:
                QCoreApplication.removeTranslator(t)
        self.translators.clear()


def install_translation(language: str, *, directory: Path | None = None) -> Translation:
    """Install the app's and Qt's translators for ``language`` on the running application.

    English needs no catalogue. For another language a missing app catalogue is
    logged as a warning (``make translations`` builds it) and the window stays English.
    """
    if QCoreApplication.instance() is None:
        raise RuntimeError("create the QApplication before installing translations")
    lang = normalize(language) or system_language()
    result = Translation(lang)
    QLocale.setDefault(QLocale(lang))
    if lang == SOURCE_LANGUAGE:
        return result
    folder = directory if directory is not None else translations_dir()
    app_qm = folder / f"{CATALOG}_{lang}.qm"
    t = QTranslator()
    if app_qm.is_file() and t.load(str(app_qm)):
        QCoreApplication.installTranslator(t)
        result.translators.append(t)
        result.loaded.append(app_qm)
    else:
        result.missing.append(str(app_qm))
        log.warning("no %s translation at %s (build it with 'make translations'); the window shows English",
                    LANGUAGES.get(lang, lang), app_qm)
    for qt_dir in _qt_translation_dirs(folder):
        qt_t = QTranslator()
        if qt_t.load(f"qtbase_{lang}", str(qt_dir)):
            QCoreApplication.installTranslator(qt_t)
            result.translators.append(qt_t)
            result.loaded.append(qt_dir / f"qtbase_{lang}.qm")
            break
    else:
        result.missing.append(f"qtbase_{lang}.qm")
        log.info("Qt's own %s strings are not shipped; standard buttons stay English", lang)
    log.info("language %s (%s)", lang, ", ".join(p.name for p in result.loaded) or "source strings")
    return result


def _qt_translation_dirs(app_dir: Path) -> list[Path]:
    return [app_dir, Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.TranslationsPath))]
