"""What a package is, how popular, and what a query asks for (search.ranking)."""

from __future__ import annotations

import pytest

from search import ranking


@pytest.mark.parametrize(
    ("name", "section", "summary", "tags", "kind"),
    [
        ("gimp", "graphics", "GNU Image Manipulation Program", ["role::program"], "program"),
        ("gimp-data", "graphics", "Data files for GIMP", ["role::app-data"], "data"),
        ("gimp-help-en", "doc", "Documentation for GIMP", [], "doc"),
        ("python-django-doc", "doc", "docs", ["role::documentation"], "doc"),
        ("libgtk-3-dev", "libdevel", "development files", [], "dev"),
        ("libgtk-3-0", "libs", "GTK graphical user interface library", [], "library"),
        ("vlc-dbgsym", "debug", "debug symbols", [], "debug"),
        (
            "gnupg2",
            "utils",
            "GNU privacy guard - a free PGP replacement (dummy transitional package)",
            [],
            "transitional",
        ),
        ("firefox-esr-l10n-de", "localization", "German language package", [], "data"),
        # Modules of a language's ecosystem, by Debian's naming policies, tagged or not.
        (
            "python3-yaml",
            "python",
            "YAML parser and emitter for Python3",
            ["role::shared-lib"],
            "module",
        ),
        ("python3-qrcode", "python", "QR Code image generator library", [], "module"),
        ("libyaml-libyaml-perl", "perl", "Perl interface to libyaml", [], "module"),
        ("node-yaml", "javascript", "YAML parser and stringifier", [], "module"),
        ("libjackson2-core-java", "java", "fast JSON processor", [], "module"),
        # Untagged packages of sections of things people run are programs; not libraries.
        ("bash", "shells", "GNU Bourne Again SHell", [], "program"),
        ("qrencode", "graphics", "QR Code encoder into PNG image", [], "program"),
        ("libqrencode4", "libs", "QR Code encoding library", [], "library"),
        ("libfoo-utils", "utils", "utilities for libfoo", [], "other"),
        ("texlive-base", "tex", "TeX Live: Essential programs and files", [], "other"),
        # Plugins, add-ons and extensions of another program, by name or debtags.
        ("cairo-dock-rssreader-plug-in", "x11", "RSS Reader applet", [], "plugin"),
        ("xfce4-battery-plugin", "xfce", "battery monitor plugin", ["role::program"], "plugin"),
        ("rhythmbox-plugins", "gnome", "plugins for rhythmbox", [], "plugin"),
        ("elpa-ement", "editors", "Matrix client for Emacs", [], "plugin"),
        ("webext-ublock-origin", "web", "lightweight blocker", [], "plugin"),
        ("gkrellm-bfm", "x11", "system load plugin", ["role::plugin"], "plugin"),
        # ... but a language's module, or the development files, stay what they are.
        ("python3-pytest-xdist", "python", "xdist plugin for pytest", [], "module"),
        ("libcaja-extension-dev", "libdevel", "Caja extension library (dev)", [], "dev"),
    ],
)
def test_package_kind(name, section, summary, tags, kind):
    assert ranking.package_kind(name, section, summary, tags) == kind


def test_the_prior_saturates_and_favours_used_programs():
    nothing = ranking.prior(depends=0, recommends=0, family=1, tags=[])
    program = ranking.prior(
        depends=0, recommends=3, family=6, tags=["role::program", "interface::x11", "use::editing"]
    )
    libc = ranking.prior(depends=20_000, recommends=50, family=10, tags=["role::shared-lib"])
    assert nothing == 0.0
    assert 0 < program < libc < 1  # bounded: even libc6 stays below 1
    assert ranking.prior(depends=10**9, recommends=10**9, family=10**6, tags=[]) < 1
    # An untagged program (half the catalog has no tags) counts as one.
    untagged = ranking.prior(depends=0, recommends=1, family=1, tags=[], kind="program")
    assert untagged > ranking.prior(depends=0, recommends=1, family=1, tags=[])
    # What every Debian system has: the essential set's grep has 2 declared reverse depends.
    grep = dict(depends=2, recommends=0, family=1, tags=["role::program"], kind="program")
    assert ranking.prior(**grep, priority="required") > ranking.prior(**grep)
    assert ranking.prior(**grep, priority="standard") > ranking.prior(**grep, priority="extra")


def test_a_language_named_in_a_query_and_its_spellings():
    assert ranking.language(["rust", "http", "client"]) == ("rust",)
    assert set(ranking.language(["node.js", "test", "framework"])) >= {"node", "nodejs"}
    assert ranking.language(["python"]) == ()  # alone, it is what is searched for
    assert ranking.language(["image", "viewer"]) == ()


def test_intents():
    assert ranking.intents(["image", "viewer"]) == set()
    assert ranking.intents(["python", "yaml", "parser"]) == {"library", "module", "dev"}
    assert ranking.intents(["git", "documentation"]) == {"doc"}
    assert ranking.intents(["monospace", "font"]) == {"data"}
    assert ranking.intents(["gimp", "plugins"]) == {"plugin"}
    assert "plugin" in ranking.kind_weights(set())
    assert set(ranking.kind_weights({"doc"})) == {
        "library",
        "module",
        "dev",
        "data",
        "debug",
        "transitional",
        "meta",
        "plugin",
    }


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("python3-yaml", "python"),
        ("pypy3-lib", "python"),
        ("libyaml-perl", "perl"),
        ("ruby-httpclient", "ruby"),
        ("librust-serde-dev", "rust"),
        ("golang-github-spf13-cobra-dev", "go"),
        ("libghc-http-dev", "haskell"),
        ("node-axios", "javascript"),
        ("libjs-jquery", "javascript"),
        ("r-cran-xml2", "r"),
        ("libcommons-httpclient-java", "java"),
        ("libgtk3.0-cil-dev", "dotnet"),
        ("php8.2-yaml", "php"),
        ("libfoo-ocaml-doc", "ocaml"),
        ("golang-go", "go"),  # a language's own tools are its world too
        ("libcurl4-openssl-dev", None),  # C libraries belong to no language's modules
        ("libgtk-3-dev", None),
        ("perl", None),
        ("python3", None),
    ],
)
def test_the_ecosystem_a_package_name_belongs_to(name, expected):
    assert ranking.ecosystem(name) == expected


def test_packages_of_another_language_than_the_one_named_weigh_less():
    assert ranking.ecosystem_weight(["perl", "http", "client"]) == (
        "perl",
        ranking.FOREIGN_ECOSYSTEM_WEIGHT,
    )
    assert ranking.ecosystem_weight(["golang", "web", "framework"])[0] == "go"
    # C and C++ spare no ecosystem: their libraries are plain libraries.
    assert ranking.ecosystem_weight(["c", "unit", "testing"]) == (
        None,
        ranking.FOREIGN_ECOSYSTEM_WEIGHT,
    )
    # A library with no language named: any language's modules weigh a little less.
    assert ranking.ecosystem_weight(["xml", "parser", "library"]) == (
        None,
        ranking.ECOSYSTEM_WEIGHT,
    )
    assert ranking.ecosystem_weight(["image", "viewer"]) is None
    assert ranking.ecosystem_weight(["python"]) is None  # alone, it is what is searched for
    # A language whose packages follow no naming policy: only the library rule applies.
    assert ranking.ecosystem_weight(["scala", "json", "library"]) == (
        None,
        ranking.ECOSYSTEM_WEIGHT,
    )
    # The language with modules is spared wherever it stands, punctuation aside.
    assert ranking.ecosystem_weight(["qt", "python", "bindings"])[0] == "python"
    assert ranking.ecosystem_weight(["c", "python", "bindings"])[0] == "python"
    assert ranking.ecosystem_weight(["perl:", "http", "client"])[0] == "perl"
    # Words that name a language's package world.
    assert ranking.ecosystem_weight(["json", "crate"])[0] == "rust"
    assert ranking.ecosystem_weight(["yaml", "gem"])[0] == "ruby"
    assert ranking.ecosystem_weight(["library"]) is None  # one word is a name
    assert 0 < ranking.FOREIGN_ECOSYSTEM_WEIGHT < ranking.ECOSYSTEM_WEIGHT < 1


def test_the_size_score_grows_slowly_with_the_installed_size():
    assert ranking.size_score(None) == 0 == ranking.size_score(0)
    assert 2.7 < ranking.size_score(1500) < 2.8
    # Bigger than 100 MB is not more of an application (a 5.6 GB debug package).
    assert ranking.size_score(5_600_000) == ranking.size_score(100_000) < 7
    assert ranking.size_score(100_000) < 3 * ranking.size_score(1500)
