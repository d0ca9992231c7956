#!/usr/bin/env bash
# Set up everything the project needs, idempotently (a second run takes seconds):
#   1. TeX from Debian's packages, when latexmk or a needed LaTeX package is missing
#      (apt-get, through sudo when not root; about 470 MiB, 1-2 minutes);
#   2. a virtual environment .venv with the Python packages of pyproject.toml: dependencies, the dev
#      group and every optional extra (dask.distributed, which the tests' local cluster needs);
#      reinstalled only when pyproject.toml changes.
set -euo pipefail
cd "$(dirname "$0")"

TEX_PACKAGES=(latexmk texlive-latex-base texlive-latex-recommended texlive-fonts-recommended
  texlive-latex-extra texlive-pictures texlive-science lmodern cm-super-minimal
  poppler-utils)  # pdftotext and pdftoppm: the tests read the PDFs' text and render their pages
# One file per package that matters, so a partial TeX installation is noticed too.
TEX_PROBES=(siunitx.sty cleveref.sty tikz.sty lmodern.sty booktabs.sty microtype.sty enumitem.sty placeins.sty)

tex_ready() {
  for tool in latexmk pdflatex pdftotext pdftoppm; do command -v "$tool" >/dev/null || return 1; done
  for f in "${TEX_PROBES[@]}"; do kpsewhich "$f" >/dev/null || return 1; done
}

if ! tex_ready && ! command -v apt-get >/dev/null; then
  echo "setup: latexmk, pdflatex or one of the LaTeX packages ${TEX_PROBES[*]%.sty} is missing," >&2
  echo "  and this system has no apt-get. Install a TeX distribution with latexmk and these packages" >&2
  echo "  (TeX Live: 'tlmgr install latexmk siunitx cleveref pgf lm booktabs microtype enumitem placeins';" >&2
  echo "  macOS: 'brew install --cask mactex-no-gui'), then run ./setup.sh again." >&2
  exit 1
fi
if ! tex_ready; then
  echo "setup: installing TeX (${TEX_PACKAGES[*]})"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${TEX_PACKAGES[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=".venv/.pyproject.sha256"
if ! sha256sum --status -c "$stamp" 2>/dev/null; then
  echo "setup: installing Python packages into .venv"
  # The project's dependencies and its dependency groups, read from pyproject.toml.
  .venv/bin/python - > .venv/requirements.txt <<'PY'
import tomllib

data = tomllib.load(open("pyproject.toml", "rb"))
groups = data.get("dependency-groups", {})


def expand(items):
    for item in items:
        if isinstance(item, dict):
            yield from expand(groups[item["include-group"]])
        else:
            yield item


extras = [item for items in data["project"].get("optional-dependencies", {}).values() for item in items]
print("\n".join([*data["project"]["dependencies"], *extras, *expand(groups.get("dev", []))]))
PY
  .venv/bin/python -m pip install -q -r .venv/requirements.txt
  sha256sum pyproject.toml > "$stamp"
fi
echo "setup: ready (.venv and TeX are in place)"
