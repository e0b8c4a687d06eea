"""The edge's check of request paths alone: its regular expressions timed in a loop against
the edge's own PCRE2 (Debian trixie's), interpreted and compiled (nginx's `pcre_jit`).

A throwaway container of `debian:trixie-slim` (named `pathregex-<random>`, removed at the
end) installs gcc and libpcre2-dev, compiles a small C loop and runs it: each expression of
the site's `$deployer_refused` map (core/site.py) against a few request targets, CPU time
per match. No network traffic but the package install.

    .venv/bin/python bench/path_regex.py
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import uuid
from pathlib import Path

import harness  # also puts the project on sys.path

from deployer.core import site

TARGETS = (
    "/api/version",
    "/api/items/2026/catalogue/b%20c/page-17?sort=price&q=%0d%0a",
    "/_next/static/chunks/pages/app-4f9c2b7a1e3d5f6a8b9c0d1e2f3a4b5c.js",
    "/api/ai;x=1/chat",
)

LOOP = r"""
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "cases.h"
static double cpu(void) { struct timespec t; clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t); return t.tv_sec + t.tv_nsec / 1e9; }
int main(void) {
  for (int r = 0; r < NREGEX; r++) {
    int err; PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)REGEX[r], PCRE2_ZERO_TERMINATED, 0, &err, &off, NULL);
    if (!re) { printf("expression %d does not compile at %zu\n", r, off); return 1; }
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    for (int jit = 0; jit < 2; jit++) {
      if (jit && pcre2_jit_compile(re, PCRE2_JIT_COMPLETE) != 0) { printf("no JIT\n"); return 1; }
      for (int t = 0; t < NTARGET; t++) {
        size_t len = strlen(TARGET[t]); int rc = 0; double start = cpu();
        for (int i = 0; i < LOOPS; i++) rc = pcre2_match(re, (PCRE2_SPTR)TARGET[t], len, 0, 0, md, NULL);
        printf("| %s | %s | %s | %s | %.0f |\n", NAME[r], jit ? "compiled" : "interpreted", TARGET[t] + 2,
               rc > 0 ? "yes" : "no", (cpu() - start) / LOOPS * 1e9);
      }
    }
  }
  return 0;
}
"""


def c_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def unquote(key: str) -> str:
    """An nginx map key as nginx reads it (site.quote's reverse), without its "~"."""
    return key[1:-1].replace('\\"', '"').replace("\\\\", "\\")[1:]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--loops", type=int, default=300000, help="matches per expression and target")
    args = p.parse_args(argv)
    regex = {"ambiguous": unquote(site.REFUSE_AMBIGUOUS), "path parameter": unquote(site.REFUSE_PATH_PARAM)}
    import docker

    client = docker.from_env(timeout=600)
    with tempfile.TemporaryDirectory(prefix="pathregex-") as tmp:
        folder = Path(tmp)
        (folder / "loop.c").write_text(LOOP)
        (folder / "cases.h").write_text(
            f"#define LOOPS {args.loops}\n#define NREGEX {len(regex)}\n#define NTARGET {len(TARGETS)}\n"
            f"static const char *NAME[] = {{{', '.join(c_string(n) for n in regex)}}};\n"
            f"static const char *REGEX[] = {{{', '.join(c_string(r) for r in regex.values())}}};\n"
            f"static const char *TARGET[] = {{{', '.join(c_string('0 ' + t) for t in TARGETS)}}};\n"
        )
        folder.chmod(0o755)
        script = (
            "apt-get update -qq >/dev/null && apt-get install -y -qq gcc libc6-dev libpcre2-dev >/dev/null 2>&1"
            " && dpkg-query -W -f='PCRE2 ${Version}\\n' libpcre2-8-0 && gcc -O2 -o /tmp/loop loop.c -lpcre2-8"
            " && /tmp/loop"
        )
        container = client.containers.run(
            harness.BASE_IMAGE, ["sh", "-c", script], name=f"pathregex-{uuid.uuid4().hex[:8]}",
            volumes={tmp: {"bind": "/w", "mode": "ro"}}, working_dir="/w", detach=True,
        )  # fmt: skip
        try:
            code = container.wait(timeout=900)["StatusCode"]
            out = container.logs().decode()
        finally:
            container.remove(force=True)
    rows = [line for line in out.splitlines() if line.startswith("|")]
    print("\n".join(line for line in out.splitlines() if not line.startswith("|")))
    print("| expression | PCRE | target | refused | ns per match |\n|---|---|---|---|--:|")
    print("\n".join(rows))
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
