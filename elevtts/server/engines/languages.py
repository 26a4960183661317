"""The languages espeak-ng speaks, read from its voice files, and `language_code` -> language.

    espeak_languages()              every espeak-ng language voice (cached; no library is loaded)
    pick_language(languages, code)  the language a `language_code` selects, or None

Light: stdlib only. The voice files are the source of truth (`espeak-ng-data/lang/**`): each names
the voice and the language tags it answers to, with a priority (lower is better), e.g.

    name French (Belgium)
    language fr-be 5
    language fr 8
"""

from __future__ import annotations

import ctypes.util
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

DEFAULT_ESPEAK_LANGUAGE = "en-us"  # the `espeak` voice speaks this without a language_code
_DEFAULT_PRIORITY = 5  # espeak's own default for a `language` line without one
# Where Debian/Ubuntu and most distributions put the data of their espeak-ng package.
_SYSTEM_DATA_PATHS = (
    "/usr/lib/x86_64-linux-gnu/espeak-ng-data",
    "/usr/lib/aarch64-linux-gnu/espeak-ng-data",
    "/usr/share/espeak-ng-data",
    "/usr/local/share/espeak-ng-data",
)


@dataclass(frozen=True)
class EspeakLanguage:
    """One espeak-ng language voice.

    `tag` is the voice file's name ("fr-BE"), which is also what `espeak-ng -v` takes; the voice id
    is `espeak-<tag in lower case>`. `identifier` is the file's path under `lang/`, which selects it
    exactly. `aliases` are the language tags the file declares, best first (lower case).
    """

    tag: str
    identifier: str
    name: str
    aliases: tuple[tuple[str, int], ...]

    @property
    def voice_id(self) -> str:
        return f"espeak-{self.tag.lower()}"

    @property
    def iso_language(self) -> str:
        """ISO 639-1 where one exists (the first two-letter code the voice declares), else the tag."""
        for alias, _ in self.aliases:
            primary = alias.split("-")[0]
            if len(primary) == 2:
                return primary
        return self.tag.lower()


def espeak_library() -> tuple[str, str | None]:
    """(library path, data path or None) of espeak-ng: the pip-bundled one first, else the system's."""
    try:
        import espeakng_loader
    except ImportError:
        path = ctypes.util.find_library("espeak-ng")
        if path is None:
            raise OSError("espeak-ng not found: pip install espeakng-loader") from None
        return path, None
    return espeakng_loader.get_library_path(), espeakng_loader.get_data_path()


def espeak_data_path() -> Path | None:
    """The espeak-ng-data folder the engine uses, or None when there is none."""
    try:
        _, data = espeak_library()
    except OSError:
        return None
    candidates = [data] if data else list(_SYSTEM_DATA_PATHS)
    for candidate in candidates:
        if candidate and (Path(candidate) / "lang").is_dir():
            return Path(candidate)
    return None


@functools.cache
def espeak_languages() -> tuple[EspeakLanguage, ...]:
    """Every language voice of the installed espeak-ng, sorted by tag (empty without espeak-ng)."""
    data = espeak_data_path()
    if data is None:
        return ()
    root = data / "lang"
    found = [_read_voice_file(path, root) for path in root.rglob("*") if path.is_file()]
    return tuple(sorted((v for v in found if v is not None), key=lambda v: v.tag.lower()))


def _read_voice_file(path: Path, root: Path) -> EspeakLanguage | None:
    name = ""
    aliases: list[tuple[str, int]] = []
    # Comments may be in any encoding (cmn's are GBK): only the ASCII keywords and UTF-8 names matter.
    for line in path.read_bytes().decode("utf-8", "replace").splitlines():
        words = line.split("//")[0].split()
        if len(words) >= 2 and words[0] == "name":
            name = " ".join(words[1:])
        elif len(words) >= 2 and words[0] == "language":
            priority = int(words[2]) if len(words) > 2 and words[2].isdigit() else _DEFAULT_PRIORITY
            aliases.append((words[1].lower(), priority))
    if not aliases:
        return None  # not a language voice
    identifier = path.relative_to(root).as_posix()
    return EspeakLanguage(path.name, identifier, name or path.name, tuple(aliases))


def normalize_code(code: str) -> str:
    """ "pt_BR" / "PT-br" -> "pt-br"."""
    return code.strip().replace("_", "-").lower()


def pick_language(
    languages: Sequence[EspeakLanguage], code: str, *, default: str = DEFAULT_ESPEAK_LANGUAGE
) -> EspeakLanguage | None:
    """The language a `language_code` selects: the default voice if it declares the code (so "en"
    stays American English), a voice file's own tag ("fr-BE"), a tag a voice declares (best
    priority: "zh" -> cmn), else the same for the primary language of a regional code ("de-AT" ->
    de). None when espeak has no such language."""
    wanted = normalize_code(code)
    by_tag = {language.tag.lower(): language for language in languages}
    own = by_tag.get(default)
    if own is not None and any(alias == wanted for alias, _ in own.aliases):
        return own  # "en" is the default voice's English, not the voice file named "en" (British)
    if wanted in by_tag:
        return by_tag[wanted]
    for candidate in (wanted, wanted.split("-")[0]):
        if own is not None and any(alias == candidate for alias, _ in own.aliases):
            return own
        declared = [
            (priority, language.tag.lower(), language)
            for language in languages
            for alias, priority in language.aliases
            if alias == candidate
        ]
        if declared:
            return min(declared, key=lambda item: item[:2])[2]
        if candidate in by_tag:
            return by_tag[candidate]
    return None
