"""Relevance factors beyond the words: what a query asks for, and what a package is.

Measured with the judged queries (``python -m bench.relevance``; ``bench/results/``): the
words alone ranked obscure packages whose summary happened to contain them above the
applications people mean ("3d modeling" never showed blender, "instant messenger" never
pidgin), and documentation, headers and data packages above the program.

* **What a query asks for** (:func:`intents`): documentation, development files or
  libraries (a programming language or "library", "dev", "bindings" ... in the query), data
  (fonts, themes, icons). A package of a kind the query does not ask for weighs less.
* **What a package is** (:func:`package_kind`, at indexing time): a program, a library, a
  development package, documentation, data, debug symbols, a transitional package.
* **Which language's packages** (:func:`ecosystem`, at indexing time, from the name): a
  query naming a language weighs the others' packages less ("perl http client" showed
  ruby-httpclient first), one asking for a library without naming one weighs every
  language's packages a little less ("xml parser library" showed r-cran-xml2 first).
* **How big it is** (:func:`size_score`, at indexing time): for a need of several words,
  bigger packages (whole applications) weigh a little more.
* **How much it is used** (:func:`prior`, at indexing time): a saturating mix of reverse
  depends and recommends across the archive, the size of its source package's family, how
  richly it is tagged, whether it is a program with an interface, and Debian's priority
  (what every system has: grep, cron, nano had almost no declared reverse depends). Bounded
  to [0, 1) and multiplied in as ``1 + PRIOR_WEIGHT * prior``, so it orders packages that
  match a need but can never lift a package over an exact name (that bonus is added
  outside).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

# -- what a package is -----------------------------------------------------------------

PROGRAM, LIBRARY, MODULE, DEV, DOC, DATA, DEBUG, TRANSITIONAL, META, PLUGIN, OTHER = (
    "program",
    "library",
    "module",
    "dev",
    "doc",
    "data",
    "debug",
    "transitional",
    "meta",
    "plugin",
    "other",
)
_DOC_NAME = re.compile(r"-(doc|docs|manual|manuals|help|handbook|examples)(-[a-z]+)?$")
_DEV_NAME = re.compile(r"-(dev|headers|devel)$")
_DEBUG_NAME = re.compile(r"-(dbg|dbgsym)$")
_DATA_NAME = re.compile(
    r"-(data|common|l10n|i18n|locale|locales|lang|langpack|theme|themes|icons|sounds|fonts?)"
    r"(-[a-z0-9@_.+-]+)?$"
)
# A plugin, add-on or extension of another program (cairo-dock-rssreader-plug-in,
# xfce4-battery-plugin, rhythmbox-plugins, abiword-plugin-grammar; by the naming of their
# ecosystems: Emacs's elpa-* and *-el, browsers' webext-* and xul-ext-*, audio plugins'
# *-lv2 and *-ladspa), or tagged role::plugin and not role::program: what people search for
# is the program, not its add-ons, unless they say so ("gimp plugins").
_PLUGIN_NAME = re.compile(
    r"(^|-)(plugins?|plug-ins?|addons?|add-ons?|extensions?)(-|$)"
    r"|^(elpa|webext|xul-ext)-|-el$|[-.]lv2$|-ladspa$"
)
_TRANSITIONAL = re.compile(r"\b(transitional|dummy) package\b", re.IGNORECASE)
# Modules of a language's ecosystem, named by Debian's policies for them: python3-yaml,
# libyaml-perl, node-yaml, ruby-yaml, r-cran-yaml, libghc-yaml-dev, php-yaml, golang-*,
# libyaml-java, gir1.2-*. Half of the catalog is untagged, and these are libraries a
# program query should not rank first ("qr code generator" is qrencode, not python3-qrcode).
_MODULE_NAME = re.compile(
    r"^(python3?-|pypy3?-|node-|libjs-|ruby-|r-cran-|r-bioc-|r-other-|libghc-|php-|golang-"
    r"|gir1\.2-|cl-|lua-|ocaml-|libocaml|haskell-|librust-)"
    r"|^lib.+-(perl|java|ocaml|ruby|cil|clojure)$"
)
# Sections of untagged packages that are most often things people run.
_PROGRAM_SECTIONS = frozenset(
    {
        "admin", "comm", "database", "editors", "electronics", "games", "gnome", "graphics",
        "hamradio", "httpd", "kde", "mail", "math", "misc", "net", "news", "science",
        "shells", "sound", "text", "utils", "vcs", "video", "web", "x11", "xfce",
    }
)  # fmt: skip


def package_kind(name: str, section: str, summary: str, tags: Iterable[str]) -> str:
    """What a package is, from its name, section, summary and debtags."""
    tags = set(tags)
    if _TRANSITIONAL.search(summary):
        return TRANSITIONAL
    if section == "metapackages" or "role::metapackage" in tags:
        return META  # a bundle of other packages (task-*, science-*, education-*)
    if _DEBUG_NAME.search(name) or section == "debug":
        return DEBUG
    if _DOC_NAME.search(name) or section == "doc" or "role::documentation" in tags:
        return DOC
    if _DEV_NAME.search(name) or section == "libdevel" or "role::devel-lib" in tags:
        return DEV
    if _PLUGIN_NAME.search(name) and not (
        _DATA_NAME.search(name) or _MODULE_NAME.search(name) or name.startswith("lib")
    ):
        return PLUGIN
    if "role::program" in tags:
        return PROGRAM
    return _not_tagged_a_program(name, section, tags)


def _not_tagged_a_program(name: str, section: str, tags: set[str]) -> str:
    """What a package is that the rules above left, and debtags do not call a program."""
    if _DATA_NAME.search(name) or "role::app-data" in tags or "role::data" in tags:
        return DATA
    if _MODULE_NAME.search(name):
        return MODULE
    if "role::plugin" in tags:  # and not a program: debtags tag some programs as both
        return PLUGIN
    if section in {"libs", "oldlibs"} or "role::shared-lib" in tags:
        return LIBRARY
    if not tags and section in _PROGRAM_SECTIONS and not name.startswith("lib"):
        return PROGRAM
    return OTHER


# -- which language's modules ---------------------------------------------------------------

# Debian names a language's modules after the language, by its policy for each (python3-yaml,
# libyaml-perl, librust-serde-dev, golang-github-*, libghc-*): the first that matches. A
# language's own tools named so count too (golang-go, ocaml-nox, php8.2-cli): a query naming
# another language does not want them either.
_ECOSYSTEMS = (
    ("python", re.compile(r"^(python3?|pypy3?)-")),
    ("javascript", re.compile(r"^(node|libjs)-")),
    ("ruby", re.compile(r"^ruby-|^lib.+-ruby$")),
    ("r", re.compile(r"^r-(cran|bioc|other)-")),
    ("haskell", re.compile(r"^(libghc|haskell)-")),
    ("php", re.compile(r"^php(\d[\d.]*)?-|^libphp-|^lib.+-php$")),
    ("go", re.compile(r"^golang-")),
    ("lua", re.compile(r"^lua-")),
    ("ocaml", re.compile(r"^(ocaml-|libocaml)|^lib.+-ocaml(-dev|-doc)?$")),
    ("rust", re.compile(r"^librust-")),
    ("lisp", re.compile(r"^cl-")),
    ("perl", re.compile(r"^lib.+-perl$")),
    ("java", re.compile(r"^lib.+-java(-doc)?$")),
    ("dotnet", re.compile(r"^lib.+-cil(-dev)?$")),
    ("clojure", re.compile(r"^lib.+-clojure$")),
    ("erlang", re.compile(r"^erlang-")),
)


def ecosystem(name: str) -> str | None:
    """The language whose modules Debian names like ``name`` (None for anything else,
    C and C++ libraries included)."""
    for language_name, pattern in _ECOSYSTEMS:
        if pattern.search(name):
            return language_name
    return None


# -- how much it is used ------------------------------------------------------------------

PRIOR_PIVOT = 6.0  # raw popularity at which the prior is 0.5
PRIOR_STEEPNESS = 2.0  # the Hill exponent: higher separates more around the pivot
PROGRAM_BONUS = 1.0
PRIMARY_BONUS = 0.5
# The size of a package's source family (raw units per e-fold). It was 0.6 before the size
# of a need's packages counted (``size_score``: big families are big projects, and the two
# overlap); measured on the dev half after it, all kinds: 0.6 0.703, 0.3 0.707, 0.1 0.710,
# 0 0.711 (names 0.801 -> 0.845 at 0.1: a family's -data and -common siblings rose with it).
FAMILY_WEIGHT = 0.1
# Debian's priorities above "optional" mark what every system has (required: the essential
# set, which no package needs to declare a dependency on, so grep and findutils had almost
# no reverse depends; important: cron, nano, less; standard: file, wget, openssh-client).
# Only 103 packages of the catalog have one.
PRIORITY_BONUS = {"required": 2.0, "important": 1.5, "standard": 1.0}


def prior(
    *,
    depends: int,
    recommends: int,
    family: int,
    tags: Sequence[str],
    kind: str = OTHER,
    primary: bool = False,
    priority: str = "optional",
) -> float:
    """A package's popularity prior in [0, 1): saturating, so no package runs away.
    ``kind`` is :func:`package_kind`'s: a program (tagged or not) weighs more; ``primary``:
    the package is named after its source (nmap, not nmap-common), the one the project
    is known by; ``priority``: Debian's (:data:`PRIORITY_BONUS`)."""
    tag_set = set(tags)
    raw = (
        math.log1p(depends)
        + 0.8 * math.log1p(recommends)
        + FAMILY_WEIGHT * math.log(max(family, 1))
        + 0.08 * len(tag_set)
        + (PROGRAM_BONUS if kind == PROGRAM or "role::program" in tag_set else 0.0)
        + (0.5 if any(t.startswith("interface::") for t in tag_set) else 0.0)
        + (PRIMARY_BONUS if primary else 0.0)
        + PRIORITY_BONUS.get(priority, 0.0)
    )
    shaped = raw**PRIOR_STEEPNESS
    return round(shaped / (shaped + PRIOR_PIVOT**PRIOR_STEEPNESS), 4)


# -- how big it is -------------------------------------------------------------------------

# A need of several words ("image editor", "backup my home folder") means a whole application
# more often than a small helper, and applications are bigger: over the judged needs of the
# dev half, the packages judged good in the top 10 had a median installed size of 1.5 MB
# against 0.5 MB for the others. Added to the prior's factor for queries of several words
# only (``search.query``): a name, a part of one or a typo is not a need, and the size
# weighed there too cost names (linux-image) and typos (maridb).
SIZE_WEIGHT = 0.3


SIZE_CAP_KB = 100_000  # bigger is not more of an application (a 5.6 GB -dbg package)


def size_score(installed_kb: int | None) -> float:
    """A package's size as a ranking signal: ln(1 + installed KB / 100), 0 when unknown
    (100 KB 0.69, 1.5 MB 2.8, 100 MB and more 6.9)."""
    return round(math.log1p(min(max(installed_kb or 0, 0), SIZE_CAP_KB) / 100), 4)


# -- what a query asks for -----------------------------------------------------------------

LANGUAGES = {
    "python", "python3", "perl", "ruby", "rust", "go", "golang", "java", "haskell", "php",
    "node", "nodejs", "node.js", "javascript", "js", "typescript", "lua", "ocaml", "scala",
    "erlang", "elixir", "tcl", "kotlin", "c", "c++", "cpp", "r", "julia", "fortran", "d", "nim",
    "clojure", "lisp", "scheme", "guile", "dotnet", "mono", "vala", "qt", "gtk",
}  # fmt: skip
# A language named in a query is a constraint, not a hint ("rust http client" is not
# php-symfony-http-client): the other ways packages spell it.
LANGUAGE_FORMS = {
    "go": ("go", "golang"),
    "golang": ("go", "golang"),
    "javascript": ("javascript", "js", "node", "nodejs"),
    "js": ("javascript", "js", "node", "nodejs"),
    "node": ("node", "nodejs", "node.js", "javascript"),
    "nodejs": ("node", "nodejs", "node.js", "javascript"),
    "node.js": ("node", "nodejs", "node.js", "javascript"),
    "python": ("python", "python3"),
    "python3": ("python", "python3"),
    "c++": ("c++", "cpp"),
    "cpp": ("c++", "cpp"),
    "dotnet": ("dotnet", "mono", ".net", "cli"),
    "mono": ("dotnet", "mono", ".net", "cli"),
}
DEV_WORDS = {
    "dev", "devel", "development", "header", "headers", "library", "libraries", "lib",
    "libs", "sdk", "binding", "bindings", "module", "modules", "api", "framework",
    "crate", "gem", "package", "parser", "driver", "wrapper", "toolkit", "widget",
    "widgets",
}  # fmt: skip
DOC_WORDS = {"doc", "docs", "documentation", "manual", "manuals", "handbook", "reference"}
PLUGIN_WORDS = {
    "plugin", "plugins", "plug-in", "plug-ins", "addon", "addons", "add-on", "add-ons",
    "extension", "extensions",
}  # fmt: skip
DATA_WORDS = {"data", "font", "fonts", "theme", "themes", "icon", "icons", "sound", "sounds"}


# The ecosystem (:func:`ecosystem`) of each language a query can name; C and C++ have none
# (their libraries are plain libraries). A language missing here constrains nothing.
LANGUAGE_ECOSYSTEMS: dict[str, str | None] = {
    "python": "python", "python3": "python", "perl": "perl", "ruby": "ruby", "rust": "rust",
    "go": "go", "golang": "go", "java": "java", "haskell": "haskell", "php": "php",
    "node": "javascript", "nodejs": "javascript", "node.js": "javascript",
    "javascript": "javascript", "js": "javascript", "typescript": "javascript", "lua": "lua",
    "ocaml": "ocaml", "r": "r", "lisp": "lisp", "erlang": "erlang", "dotnet": "dotnet",
    "mono": "dotnet", "clojure": "clojure", "c": None, "c++": None, "cpp": None,
}  # fmt: skip
# Words that name a language's package world as well as a library: "yaml gem", "json crate".
ECOSYSTEM_WORDS = {"gem": "ruby", "gems": "ruby", "crate": "rust", "crates": "rust"}
# A package of another language's ecosystem than the one a query names weighs this: "perl
# http client" is not ruby-httpclient (tagged a program, so not weighed as a module), "gui
# toolkit in c" not libwx-perl.
FOREIGN_ECOSYSTEM_WEIGHT = 0.3
# A query asking for a library without naming a language ("xml parser library", "gui
# toolkit") means a C or C++ library more often than one language's module: those weigh this.
ECOSYSTEM_WEIGHT = 0.6


def bare(word: str) -> str:
    """A word of a query as the word lists compare it: lower case, punctuation around it
    dropped."""
    return word.lower().strip(".,;:!?()[]{}'\"")


def ecosystem_weight(words: Sequence[str]) -> tuple[str | None, float] | None:
    """How a query weighs packages by their ecosystem: ``(spared, weight)``, every
    ecosystem's packages but ``spared``'s weigh ``weight``; None when it weighs none.

    * It names a language with modules (or says "gem", "crate"): the others' packages weigh
      :data:`FOREIGN_ECOSYSTEM_WEIGHT`, whatever the order of its words ("qt python
      bindings" spares python).
    * It names only C or C++: every language's packages weigh that.
    * It names no language known here (or one like Qt or Vala, whose packages follow no
      naming policy) and asks for a library: every language's packages weigh
      :data:`ECOSYSTEM_WEIGHT`.
    * A single word is a name, a part of one or a typo: nothing.
    """
    lowered = [bare(w) for w in words]
    if len(lowered) < 2:
        return None
    named = [LANGUAGE_ECOSYSTEMS[w] for w in lowered if w in LANGUAGE_ECOSYSTEMS]
    named += [ECOSYSTEM_WORDS[w] for w in lowered if w in ECOSYSTEM_WORDS]
    spared = next((e for e in named if e is not None), None)
    if named:
        return spared, FOREIGN_ECOSYSTEM_WEIGHT
    if set(lowered) & DEV_WORDS:
        return None, ECOSYSTEM_WEIGHT
    return None


def language(words: Sequence[str]) -> tuple[str, ...]:
    """The spellings of the programming language a query names (empty when it names none,
    or when the language is all it names)."""
    lowered = [w.lower() for w in words]
    for word in lowered:
        if word in LANGUAGES and len(lowered) > 1:
            return LANGUAGE_FORMS.get(word, (word,))
    return ()


def intents(words: Iterable[str]) -> set[str]:
    """The kinds of package a query asks for besides programs."""
    lowered = {w.lower() for w in words}
    asked = set()
    if lowered & (LANGUAGES | DEV_WORDS):
        asked |= {LIBRARY, MODULE, DEV}
    if lowered & DOC_WORDS:
        asked.add(DOC)
    if lowered & DATA_WORDS:
        asked.add(DATA)
    if lowered & PLUGIN_WORDS:
        asked.add(PLUGIN)
    return asked


# Weights of kinds the query does not ask for (programs and others weigh 1).
KIND_WEIGHTS = {
    LIBRARY: 0.6,
    MODULE: 0.6,
    DEV: 0.5,
    DOC: 0.3,
    DATA: 0.4,
    DEBUG: 0.1,
    TRANSITIONAL: 0.2,
    META: 0.5,
    PLUGIN: 0.5,
}
PRIOR_WEIGHT = 8.0


# A query asking for a library wants what a developer installs: the -dev package over the
# runtime one it depends on (libexpat1-dev over libexpat1).
RUNTIME_LIBRARY_WEIGHT = 0.6


def kind_weights(asked: set[str]) -> dict[str, float]:
    """The weight of each kind for a query asking for ``asked``."""
    weights = {kind: w for kind, w in KIND_WEIGHTS.items() if kind not in asked}
    if DEV in asked and RUNTIME_LIBRARY_WEIGHT != 1.0:
        weights[LIBRARY] = RUNTIME_LIBRARY_WEIGHT
    return weights
