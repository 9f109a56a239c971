"""The deploy benches' Go and PHP sample apps: the same contract as ``_common.SampleApp``
(``init(version)``, ``commit(version)`` changing one line, ``GET /`` answering
``version vN``), built by the Go and PHP buildpacks.

- Go: ``go.mod`` (stdlib only) and ``main.go`` (net/http on ``$PORT``); the default web
  process is its binary. A cold build compiles the standard library for CGO_ENABLED=0,
  a cached one only ``main``.
- PHP: ``composer.json`` (no packages: composer writes the autoloader offline) and
  ``public/index.php``; php-fpm behind nginx.
"""

from __future__ import annotations

from _common import SampleApp

GO_MOD = "module example.com/bench\n\ngo 1.19\n"
GO_MAIN = """\
// The deploy benches' Go sample app.
package main

import (
	"net/http"
	"os"
)

const version = "{version}"

func main() {{
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {{
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("version " + version + "\\n"))
	}})
	if err := http.ListenAndServe(":"+os.Getenv("PORT"), nil); err != nil {{
		panic(err)
	}}
}}
"""
PHP_COMPOSER = '{"name": "paas/bench", "require": {"php": ">=8.1"}}\n'
PHP_INDEX = """\
<?php
// The deploy benches' PHP sample app.
header('Content-Type: text/plain');
echo "version {version}\\n";
"""


class GoSampleApp(SampleApp):
    """``go.mod`` + ``main.go``; ``commit(version)`` changes its ``version`` constant."""

    def init(self, version: str) -> None:
        self.path.mkdir(parents=True)
        (self.path / "go.mod").write_text(GO_MOD)
        self.git("init", "-q", "-b", "main")
        self.commit(version)

    def commit(self, version: str) -> None:
        (self.path / "main.go").write_text(GO_MAIN.format(version=version))
        self.git("add", "-A")
        self.git("commit", "-q", "-m", f"version {version}")


class PhpSampleApp(SampleApp):
    """``composer.json`` + ``public/index.php``; ``commit(version)`` changes its echo."""

    def init(self, version: str) -> None:
        (self.path / "public").mkdir(parents=True)
        (self.path / "composer.json").write_text(PHP_COMPOSER)
        self.git("init", "-q", "-b", "main")
        self.commit(version)

    def commit(self, version: str) -> None:
        (self.path / "public" / "index.php").write_text(PHP_INDEX.replace("{version}", version))
        self.git("add", "-A")
        self.git("commit", "-q", "-m", f"version {version}")


# language -> sample app class (python is _common's SampleApp)
LANGUAGES: dict[str, type[SampleApp]] = {"python": SampleApp, "go": GoSampleApp,
                                         "php": PhpSampleApp}
